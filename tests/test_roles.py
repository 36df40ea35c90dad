"""Every /v1 route against every role: deny by default, and every request audited."""

import re
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from border.app import create_app
from core.auth import ROLES
from core.settings import Settings
from tests.conftest import runtime_of

# DESIGN §4-§5: who may call what. Routes of later issues are listed already; every route
# the app serves must appear here, so a new route cannot slip in without its roles.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/persons"): {"consular", "officer"},
    ("GET", "/v1/persons"): {"consular", "officer"},
    ("GET", "/v1/persons/{person_id}"): {"consular", "officer"},
    ("POST", "/v1/persons/{person_id}/documents"): {"consular", "officer"},
    ("POST", "/v1/persons/{person_id}/guardians"): {"consular", "officer"},
    ("POST", "/v1/persons/{person_id}/captures"): {"consular", "officer"},
    ("DELETE", "/v1/persons/{person_id}"): {"admin"},
    ("PATCH", "/v1/persons/{person_id}"): {"consular", "dpo"},
    ("GET", "/v1/persons/{person_id}/rectifications"): {"dpo"},
    ("GET", "/v1/persons/{person_id}/export"): {"dpo"},
    ("POST", "/v1/identify"): {"officer"},
    ("POST", "/v1/verify"): {"kiosk", "officer"},
    ("POST", "/v1/watchlist"): {"officer"},
    ("GET", "/v1/watchlist"): {"officer"},
    ("DELETE", "/v1/watchlist/{entry_id}"): {"officer"},
    ("POST", "/v1/alerts"): {"officer"},
    ("GET", "/v1/alerts"): {"officer"},
    ("DELETE", "/v1/alerts/{alert_id}"): {"officer"},
    ("POST", "/v1/mrz/parse"): {"consular", "officer"},
    ("POST", "/v1/visas"): {"consular"},
    ("POST", "/v1/visas/{visa_id}/revoke"): {"consular"},
    ("GET", "/v1/persons/{person_id}/stay"): {"consular", "officer"},
    ("POST", "/v1/crossings"): {"kiosk", "officer"},
    ("POST", "/v1/crossings/{crossing_id}/resolution"): {"officer"},
    ("GET", "/v1/crossings"): {"officer"},
    ("GET", "/v1/overstayers"): {"officer"},
    ("GET", "/v1/statistics"): {"statistician", "officer", "auditor"},
    ("GET", "/v1/retention/due"): {"dpo"},
    ("GET", "/v1/audit/events"): {"auditor"},
    ("GET", "/v1/audit/verify"): {"auditor"},
    ("GET", "/v1/dedup-overrides"): {"auditor"},
    ("POST", "/v1/clients"): {"admin"},
    ("GET", "/v1/clients"): {"admin"},
    ("DELETE", "/v1/clients/{client_id}"): {"admin"},
    ("POST", "/v1/keys/rotate"): {"admin"},
    ("GET", "/v1/pki"): {"admin"},
    ("GET", "/v1/openapi.json"): set(ROLES),
}


def served_routes() -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /v1, read from its OpenAPI schema."""
    paths = create_app(Settings()).openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    )


ROUTES = served_routes()


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid4()), path)


def audit_count(client: TestClient) -> int:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    assert row is not None
    return int(row[0])


def test_every_served_route_has_its_roles_declared() -> None:
    assert ROUTES, "no /v1 routes found"
    assert [r for r in ROUTES if r not in ALLOWED] == []


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_role_matrix(
    client: TestClient, headers: dict[str, dict[str, str]], method: str, path: str
) -> None:
    url = concrete(path)
    for role in ROLES:
        before = audit_count(client)
        response = client.request(method, url, headers=headers[role], json={})
        if role in ALLOWED[(method, path)]:
            assert response.status_code not in (401, 403), (role, response.json())
        else:
            assert response.status_code == 403, (role, response.status_code)
            assert response.json()["error"] == "forbidden"
        assert audit_count(client) == before + 1, f"{method} {path} as {role} left no audit event"


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer border_not-a-real-key", "Basic dXNlcjpwYXNz", "Bearer "]
)
def test_without_a_valid_key_every_route_is_401(
    client: TestClient, method: str, path: str, authorization: str | None
) -> None:
    sent = {} if authorization is None else {"Authorization": authorization}
    before = audit_count(client)
    # A malformed body must not hide the missing key behind a 422.
    response = client.request(
        method, concrete(path), headers={**sent, "content-type": "application/json"}, content=b"{"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert audit_count(client) == before + 1


# Routes some role may not call (GET /v1/openapi.json admits every role).
RESTRICTED = [r for r in ROUTES if set(ROLES) - ALLOWED.get(r, set(ROLES))]


@pytest.mark.parametrize(("method", "path"), RESTRICTED)
def test_a_malformed_body_from_a_wrong_role_is_still_403(
    client: TestClient, headers: dict[str, dict[str, str]], method: str, path: str
) -> None:
    role = next(r for r in ROLES if r not in ALLOWED[(method, path)])
    response = client.request(
        method,
        concrete(path),
        headers={**headers[role], "content-type": "application/json"},
        content=b"{",
    )
    assert response.status_code == 403


def test_open_routes_need_no_key(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 200
