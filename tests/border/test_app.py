import io
import json
import logging
import time
from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from border.app import create_app
from core import logs
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import runtime_of

Headers = dict[str, dict[str, str]]


def audit_rows(client: TestClient) -> list[tuple[str, str | None, str, str, str | None]]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor, role, action, outcome, purpose FROM audit_events ORDER BY seq"
        ).fetchall()
    return [tuple(r) for r in rows]


class TestOpenRoutes:
    def test_health(self, client: TestClient) -> None:
        response = client.get("/health")
        assert response.json() == {"status": "ok"}
        assert len(response.headers["x-request-id"]) == 32

    def test_metrics_count_requests_per_route_template_and_status(
        self, client: TestClient, headers: Headers
    ) -> None:
        client.get("/v1/audit/verify", headers=headers["auditor"])
        client.get("/v1/audit/verify", headers=headers["kiosk"])
        expected = (
            'border_http_requests_total{method="GET",path="/v1/audit/verify",status="200"} 1.0',
            'border_http_requests_total{method="GET",path="/v1/audit/verify",status="403"} 1.0',
            'border_http_request_duration_seconds_bucket{le="0.15",method="GET",path="/v1/audit/verify"}',
        )
        # A request is counted once its answer is sent: the last may take a moment to show.
        deadline = time.monotonic() + 5
        while not all(line in (text := client.get("/metrics").text) for line in expected):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)

    def test_the_schema_and_docs_are_not_open(self, client: TestClient) -> None:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 404


class TestAccessLines:
    @pytest.fixture
    def lines(self) -> Iterator[io.StringIO]:
        """The access lines, formatted as the service writes them (JSON)."""
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(logs.JsonFormatter())
        access = logging.getLogger("border.access")
        access.addHandler(handler)
        level, access.level = access.level, logging.DEBUG
        yield buffer
        access.removeHandler(handler)
        access.setLevel(level)

    def test_one_json_line_per_request_naming_the_route_not_the_query(
        self, client: TestClient, headers: Headers, lines: io.StringIO
    ) -> None:
        response = client.get(
            "/v1/persons",
            headers={**headers["officer"], "X-Request-ID": "desk-4.query-1"},
            params={"surname": "SMITH", "given_names": "JOHN", "birth_date": "1980-01-01"},
        )
        assert response.status_code == 200
        client.get("/health/live")
        access = [json.loads(line) for line in lines.getvalue().splitlines()]
        search = next(line for line in access if line.get("request_id") == "desk-4.query-1")
        assert search["logger"] == "border.access"
        assert search["level"] == "INFO"
        assert search["msg"] == "GET /v1/persons 200"
        assert (search["method"], search["route"], search["status"]) == ("GET", "/v1/persons", 200)
        with runtime_of(client).pool.connection() as conn:
            actors = conn.execute(
                "SELECT DISTINCT actor FROM audit_events WHERE request_id = 'desk-4.query-1'"
            ).fetchall()
        assert actors == [(search["actor"],)]
        assert search["duration_ms"] > 0
        assert "SMITH" not in lines.getvalue()
        # Probes are logged for debugging only.
        probe = next(line for line in access if line["route"] == "/health/live")
        assert probe["level"] == "DEBUG"
        assert len(probe["request_id"]) == 32

    def test_an_unauthenticated_request_has_no_actor(
        self, client: TestClient, lines: io.StringIO
    ) -> None:
        assert client.get("/v1/persons/nowhere").status_code == 401
        (line,) = (json.loads(text) for text in lines.getvalue().splitlines())
        assert line["status"] == 401
        assert "actor" not in line


class TestErrors:
    def test_unknown_route_is_a_404_with_a_code(self, client: TestClient, headers: Headers) -> None:
        for response in (
            client.get("/v1/nowhere", headers=headers["auditor"]),
            client.get("/nowhere"),
        ):
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"

    def test_under_v1_the_key_comes_before_the_route(self, client: TestClient) -> None:
        """Without a valid key nothing under /v1 is told apart, not even a route that does
        not exist."""
        for method, path in (("GET", "/v1/nowhere"), ("PUT", "/v1/audit/verify")):
            response = client.request(method, path)
            assert response.status_code == 401
            assert response.json()["error"] == "unauthorized"

    def test_wrong_method_is_a_405_with_a_code(self, client: TestClient, headers: Headers) -> None:
        response = client.put("/v1/audit/verify", headers=headers["auditor"])
        assert response.status_code == 405
        assert response.json()["error"] == "invalid_request"

    def test_validation_errors_carry_fields_not_input(
        self, client: TestClient, headers: Headers
    ) -> None:
        response = client.post(
            "/v1/clients", headers=headers["admin"], json={"name": "x", "role": "JOHN SMITH 1970"}
        )
        body = response.json()
        assert response.status_code == 422
        assert body["error"] == "invalid_request"
        assert ["body", "role"] in [p["loc"] for p in body["problems"]]
        assert "JOHN SMITH" not in response.text

    def test_unexpected_errors_give_a_request_id_and_log_no_message(
        self, settings: Settings, face_model: FaceModel, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = create_app(settings, face_model)

        def boom() -> None:
            raise ValueError("surname SMITH passport L898902C3")

        app.add_api_route("/boom", boom)
        with (
            TestClient(app, raise_server_exceptions=False) as client,
            caplog.at_level(logging.ERROR),
        ):
            response = client.get("/boom")
        body = response.json()
        assert response.status_code == 500
        assert body["error"] == "internal"
        assert body["request_id"] == response.headers["x-request-id"]
        assert "SMITH" not in response.text
        assert body["request_id"] in caplog.text
        assert "ValueError" in caplog.text
        assert "SMITH" not in caplog.text
        assert "L898902C3" not in caplog.text


class TestStoreOutage:
    @pytest.fixture
    def quick(self, settings: Settings, face_model: FaceModel) -> Iterator[TestClient]:
        fast = Settings(**{**settings.model_dump(), "pool_timeout_s": 1.0})
        app = create_app(fast, face_model)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    def test_503_while_the_store_is_down_then_recovers(
        self, quick: TestClient, headers: Headers, pg_admin_url: str, database_url: str
    ) -> None:
        auditor = headers["auditor"]
        name = conninfo_to_dict(database_url)["dbname"]
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'.encode())
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            response = quick.get("/v1/audit/verify", headers=auditor)
            assert response.status_code == 503
            assert response.json()["error"] == "unavailable"
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'.encode())
        # The pool reconnects in the background with backoff; no restart is needed.
        deadline = time.monotonic() + 20
        while (response := quick.get("/v1/audit/verify", headers=auditor)).status_code == 503:
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["ok"] is True


class TestClients:
    def test_create_use_and_revoke_a_key(self, client: TestClient, headers: Headers) -> None:
        created = client.post(
            "/v1/clients",
            headers=headers["admin"],
            json={"name": "kiosk 7", "role": "kiosk", "border_point": "UTO-AIR-1"},
        )
        assert created.status_code == 201
        body = created.json()
        assert body["api_key"].startswith("border_")
        assert len(body["api_key"]) > 40
        listed = client.get("/v1/clients", headers=headers["admin"]).json()
        assert body["client_id"] in {c["client_id"] for c in listed}
        assert "api_key" not in listed[0]
        kiosk = {"Authorization": f"Bearer {body['api_key']}"}
        assert client.get("/v1/audit/verify", headers=kiosk).status_code == 403
        revoked = client.delete(f"/v1/clients/{body['client_id']}", headers=headers["admin"])
        assert revoked.status_code == 204
        assert client.get("/v1/audit/verify", headers=kiosk).status_code == 401

    def test_only_the_hash_of_a_key_is_stored(self, client: TestClient, headers: Headers) -> None:
        key = client.post(
            "/v1/clients", headers=headers["admin"], json={"name": "a", "role": "officer"}
        ).json()["api_key"]
        with runtime_of(client).pool.connection() as conn:
            stored = [bytes(r[0]) for r in conn.execute("SELECT key_sha256 FROM api_clients")]
        assert all(key.encode() not in s and len(s) == 32 for s in stored)

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "x", "role": "root"},
            {"name": "", "role": "kiosk"},
            {"name": "x", "role": "kiosk", "border_point": "../etc"},
            {"name": "x", "role": "kiosk", "extra": 1},
            {"role": "kiosk"},
        ],
    )
    def test_bad_clients_are_refused_and_nothing_is_written(
        self, client: TestClient, headers: Headers, body: dict[str, object]
    ) -> None:
        with runtime_of(client).pool.connection() as conn:
            before = conn.execute("SELECT count(*) FROM api_clients").fetchone()
        response = client.post("/v1/clients", headers=headers["admin"], json=body)
        assert response.status_code == 422
        with runtime_of(client).pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM api_clients").fetchone() == before
        assert audit_rows(client)[-1][2:4] == ("clients.create", "invalid_request")

    def test_revoking_an_unknown_client_is_404(self, client: TestClient, headers: Headers) -> None:
        response = client.delete(f"/v1/clients/{uuid4()}", headers=headers["admin"])
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


class TestAuditTrail:
    def test_purpose_is_recorded_and_checked(self, client: TestClient, headers: Headers) -> None:
        ok = client.get(
            "/v1/audit/verify", headers={**headers["auditor"], "X-Purpose": "quarterly review"}
        )
        assert ok.status_code == 200
        assert audit_rows(client)[-1][2:] == ("audit.verify", "ok", "quarterly review")
        bad = client.get(
            "/v1/audit/verify", headers={**headers["auditor"], "X-Purpose": "<script>"}
        )
        assert bad.status_code == 422
        actor, role, action, outcome, _ = audit_rows(client)[-1]
        assert (role, action, outcome) == ("auditor", "audit.verify", "invalid_request")
        assert actor != "anonymous"

    def test_refusals_are_audited_under_the_caller(
        self, client: TestClient, headers: Headers
    ) -> None:
        client.get("/v1/audit/events", headers=headers["kiosk"])
        client.get("/v1/audit/events", headers={"Authorization": "Bearer nope"})
        rows = audit_rows(client)
        assert rows[-2][1:4] == ("kiosk", "audit.events.read", "forbidden")
        assert rows[-1][:4] == ("anonymous", None, "audit.events.read", "unauthorized")


class TestAuthThrottling:
    def test_repeated_bad_keys_are_throttled_without_filling_the_log(
        self, client: TestClient, headers: Headers
    ) -> None:
        limit = runtime_of(client).settings.auth_max_failures
        events = len(audit_rows(client))
        for _ in range(limit):
            bad = client.get("/v1/audit/verify", headers={"Authorization": "Bearer guess"})
            assert bad.status_code == 401
        for _ in range(3):
            blocked = client.get("/v1/audit/verify", headers={"Authorization": "Bearer guess"})
            assert blocked.status_code == 429
            assert blocked.json()["error"] == "rate_limited"
            assert int(blocked.headers["retry-after"]) >= 1
        # The failures are one event of the address, whose count tells them (DESIGN §14).
        assert [r[:4] for r in audit_rows(client)[events:]] == [
            ("anonymous", None, "audit.verify", "unauthorized")
        ]
        # A valid key is never held back, even from that address.
        assert client.get("/v1/audit/verify", headers=headers["auditor"]).status_code == 200
