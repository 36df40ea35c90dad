"""The API reference (DESIGN §15): docs/api.md is the schema rendered, kept in step by a
test, and the schema itself is served to any caller with a key."""

import json
from pathlib import Path

from fastapi.testclient import TestClient

from border import api_reference
from border.app import create_app
from core.auth import ROLES
from core.errors import BorderError
from core.settings import Settings
from tests.test_roles import ALLOWED, audit_count

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
APP = create_app(Settings())
SCHEMA = APP.openapi()
ROLES_BY_ROUTE = api_reference.route_roles(APP)


def v1_routes() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in SCHEMA["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    )


def test_docs_api_md_is_the_schema_rendered() -> None:
    fresh = api_reference.render_markdown(SCHEMA, ROLES_BY_ROUTE)
    assert DOCS.is_file(), f"docs/api.md is missing: run `{api_reference.REGENERATE}`"
    assert DOCS.read_text(encoding="utf-8") == fresh, (
        f"docs/api.md is out of step with the API: run `{api_reference.REGENERATE}`"
    )


def test_the_rendering_is_deterministic() -> None:
    again = create_app(Settings())
    assert api_reference.reference(again) == api_reference.render_markdown(SCHEMA, ROLES_BY_ROUTE)


def test_every_v1_route_is_documented_with_its_roles() -> None:
    text = DOCS.read_text(encoding="utf-8")
    routes = v1_routes()
    assert ("GET", "/v1/openapi.json") in routes
    for method, path in routes:
        roles = ROLES_BY_ROUTE[(method, path)]
        assert roles, f"{method} {path} has no role check"
        assert f"\n### {method} {path}\n" in text, f"{method} {path} is not in docs/api.md"
        section = text.split(f"\n### {method} {path}\n", 1)[1].split("\n### ", 1)[0]
        assert f"Roles: {', '.join(roles)}." in section, f"{method} {path}: roles missing"


def test_route_roles_agree_with_the_role_matrix() -> None:
    for route in v1_routes():
        assert set(ROLES_BY_ROUTE[route]) == ALLOWED[route], route


def test_every_error_code_is_in_the_table() -> None:
    documented = {code: set(statuses) for code, statuses, _ in api_reference.ERROR_CODES}
    # BorderError and its subclasses, as loaded with the app (create_app above).
    pending: list[type[BorderError]] = [BorderError]
    seen: set[type[BorderError]] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        if cls is BorderError or cls.__module__.startswith("tests"):
            continue
        assert cls.code in documented, f"{cls.__name__}: code {cls.code} is not documented"
        assert cls.status in documented[cls.code], f"{cls.__name__}: status {cls.status}"
    text = DOCS.read_text(encoding="utf-8")
    for code, _, _ in api_reference.ERROR_CODES:
        assert f"| `{code}` |" in text


def test_render_json_is_the_schema() -> None:
    rendered = api_reference.render_json(SCHEMA)
    assert rendered.endswith("\n")
    assert json.loads(rendered) == SCHEMA


def test_references_are_resolved_for_request_bodies() -> None:
    text = api_reference.render_markdown(SCHEMA, ROLES_BY_ROUTE)
    section = text.split("\n### POST /v1/clients\n", 1)[1].split("\n### ", 1)[0]
    assert "| `name` |" in section
    assert "| `role` |" in section
    assert "$ref" not in text


def test_the_schema_is_served_to_a_kiosk(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    before = audit_count(client)
    response = client.get("/v1/openapi.json", headers=headers["kiosk"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    served = response.json()
    assert served["info"]["title"] == "Border"
    assert "/v1/openapi.json" in served["paths"]
    assert served == json.loads(json.dumps(SCHEMA))
    assert audit_count(client) == before + 1


def test_the_schema_is_served_to_every_role(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    for role in ROLES:
        assert client.get("/v1/openapi.json", headers=headers[role]).status_code == 200, role


def test_the_schema_needs_a_key(client: TestClient) -> None:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    bad = client.get("/v1/openapi.json", headers={"Authorization": "Bearer border_nope"})
    assert bad.status_code == 401
