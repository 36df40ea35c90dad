"""The HTTP edge under abuse (DESIGN §14): unauthenticated floods reach the audit chain as
one event per address per minute, made-up methods and paths make no metric series, bodies
are limited before they are read and never read for a caller without a valid key, and
every response carries the security headers."""

import random
import re
import string
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Scope

from border.app import create_app
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import in_parallel, new_key, runtime_of

Headers = dict[str, str]
LIMIT: int = Settings.model_fields["body_max_bytes"].default
MIB = 1 << 20
TWENTY_MB = 20 * MIB
Event = tuple[str, str | None, str, str, str | None, dict[str, Any]]


class Clock:
    """A monotonic clock the test moves: the tally's windows pass at will."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bearer(client: TestClient, role: str) -> Headers:
    rt = runtime_of(client)
    key = new_key(rt, role, "BP-1" if role == "kiosk" else None)
    return {"Authorization": f"Bearer {key}"}


def last_seq(client: TestClient) -> int:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_events").fetchone()
    assert row is not None
    return int(row[0])


def events_after(conn_or_client: TestClient | psycopg.Connection[Any], seq: int) -> list[Event]:
    query = (
        "SELECT actor, role, action, outcome, resource_id, detail FROM audit_events"
        " WHERE seq > %(seq)s ORDER BY seq"
    )
    if isinstance(conn_or_client, TestClient):
        with runtime_of(conn_or_client).pool.connection() as conn:
            rows = conn.execute(query, {"seq": seq}).fetchall()
    else:
        rows = conn_or_client.execute(query, {"seq": seq}).fetchall()
    return [tuple(r) for r in rows]


def refused(events: Iterable[Event]) -> int:
    return sum(int(e[5]["refused"]) for e in events if e[0] == "anonymous")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int


def raw_call(
    client: TestClient,
    method: str,
    path: str,
    *,
    headers: Headers | None = None,
    chunks: Iterable[bytes] = (),
    address: str = "203.0.113.50",
) -> Answer:
    """One request straight into the app's ASGI interface (the test client reads a body
    whole before the app sees it): ``chunks`` are handed over one at a time, each only
    when the app asks, and ``consumed`` says how many bytes it asked for."""
    pending = iter(chunks)
    consumed, ended = 0, False
    sent: list[dict[str, Any]] = []

    async def receive() -> Message:
        nonlocal consumed, ended
        if ended:
            return {"type": "http.disconnect"}
        chunk = next(pending, None)
        if chunk is None:
            ended = True
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(dict(message))

    async def run() -> None:
        await client.app(scope, receive, send)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": (address, 40000),
        "server": ("testserver", 80),
        "state": dict(client.app_state),
    }
    assert client.portal is not None, "use the client as a context manager"
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], answer_headers, body, consumed)


@pytest.fixture
def tolerant(settings: Settings, face_model: FaceModel) -> Iterator[TestClient]:
    """An app whose throttle lets a flood of bad keys through as 401s, not 429s, so that
    each is a refusal to count (a 429 is not audited at all)."""
    app = create_app(settings.model_copy(update={"auth_max_failures": 100_000}), face_model)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def anonymous_flood(client: TestClient, times: int) -> None:
    """Requests with no key, a bad key, or to routes that do not exist: 404s and 401s."""
    for i in range(times):
        match i % 4:
            case 0:
                client.get(f"/nowhere/{i}")
            case 1:
                client.get(f"/v1/nowhere/{i}")
            case 2:
                client.get("/v1/audit/verify")
            case _:
                client.get("/v1/audit/verify", headers={"Authorization": f"Bearer guess{i}"})


class TestUnauthenticatedRefusalsAreAggregated:
    def test_a_flood_is_one_event_then_one_with_its_count(self, tolerant: TestClient) -> None:
        seq = last_seq(tolerant)
        anonymous_flood(tolerant, 60)
        events = events_after(tolerant, seq)
        assert [e[:5] for e in events] == [
            ("anonymous", None, "unmatched", "not_found", "testclient")
        ]
        assert events[0][5]["refused"] == 1
        # A minute on, the next refusal's event carries the 59 refused meanwhile.
        clock = Clock()
        clock.now = time.monotonic() + 60
        tolerant.app_state["refusals"].clock = clock
        assert tolerant.get("/v1/audit/verify").status_code == 401
        events = events_after(tolerant, seq)
        assert [e[2:4] for e in events] == [
            ("unmatched", "not_found"),
            ("audit.verify", "unauthorized"),
        ]
        assert events[1][5]["refused"] == 60
        assert events[1][5]["codes"] == {"401 unauthorized": 46, "404 not_found": 14}

    def test_what_is_left_is_written_at_shutdown(
        self, settings: Settings, face_model: FaceModel, database_url: str
    ) -> None:
        with TestClient(create_app(settings, face_model)) as client:
            seq = last_seq(client)
            for i in range(25):
                client.get(f"/nowhere/{i}")
            assert len(events_after(client, seq)) == 1
        with psycopg.connect(database_url) as conn:
            events = events_after(conn, seq)
        assert [e[2:4] for e in events] == [
            ("unmatched", "not_found"),
            ("refusals.unauthenticated", "refused"),
        ]
        summary = events[1][5]
        assert (summary["refused"], summary["addresses"]) == (24, 1)
        assert summary["codes"] == {"404 not_found": 24}
        assert summary["top"] == {"testclient": 24}

    def test_threads_lose_no_count(
        self, settings: Settings, face_model: FaceModel, database_url: str
    ) -> None:
        with TestClient(create_app(settings, face_model)) as client:
            seq = last_seq(client)

            def flood() -> None:
                for i in range(25):
                    assert client.get(f"/nowhere/{i}").status_code == 404

            in_parallel(flood, 8)
            assert len(events_after(client, seq)) == 1
        with psycopg.connect(database_url) as conn:
            assert refused(events_after(conn, seq)) == 200

    def test_many_addresses_stay_bounded_and_counted(
        self, settings: Settings, face_model: FaceModel, database_url: str
    ) -> None:
        with TestClient(create_app(settings, face_model)) as client:
            tally = client.app_state["refusals"]
            tally.max_addresses = 50
            seq = last_seq(client)
            for i in range(300):
                for _ in range(2):
                    answer = raw_call(client, "GET", "/nowhere", address=f"198.18.{i // 200}.{i}")
                    assert answer.status == 404
                assert len(tally) <= 50
            during = events_after(client, seq)
            # One event per address, and a summary each time the cap was reached.
            assert 300 <= len(during) <= 300 + 300 // 50
        with psycopg.connect(database_url) as conn:
            assert refused(events_after(conn, seq)) == 600

    def test_an_ipv6_host_counts_as_its_64(self, client: TestClient) -> None:
        seq = last_seq(client)
        for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa::9"):
            assert raw_call(client, "GET", "/nowhere", address=host).status == 404
        events = events_after(client, seq)
        assert [e[4] for e in events] == ["2001:db8:1:2::/64"]

    def test_a_caller_with_a_valid_key_keeps_one_event_per_refusal(
        self, client: TestClient
    ) -> None:
        kiosk, admin = bearer(client, "kiosk"), bearer(client, "admin")
        actors = {}
        with runtime_of(client).pool.connection() as conn:
            for role, actor in conn.execute("SELECT role, id::text FROM api_clients"):
                actors[role] = actor
        seq = last_seq(client)
        for i in range(5):
            assert client.get("/v1/audit/verify", headers=kiosk).status_code == 403
            assert client.get(f"/v1/nowhere/{i}", headers=admin).status_code == 404
        events = events_after(client, seq)
        assert [e[:4] for e in events] == [
            (actors["kiosk"], "kiosk", "audit.verify", "forbidden"),
            (actors["admin"], "admin", "unmatched", "not_found"),
        ] * 5


def series(client: TestClient) -> list[str]:
    text = client.get("/metrics").text
    return sorted(
        line.rsplit(" ", 1)[0]
        for line in text.splitlines()
        if line.startswith(
            ("border_http_requests_total{", "border_http_request_duration_seconds_count{")
        )
    )


class TestMetricLabelsAreBounded:
    def test_made_up_methods_and_paths_make_no_new_series(self, tolerant: TestClient) -> None:
        client = tolerant
        rng = random.Random(20260301)
        standard = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

        def word(low: int, high: int) -> str:
            return "".join(
                rng.choices(string.ascii_letters + string.digits, k=rng.randint(low, high))
            )

        def request(method: str, path: str) -> None:
            assert client.request(method, path).status_code in (401, 404, 405)

        # Every label value a random request can produce, once.
        for method in [*standard, "MADEUP"]:
            request(method, "/warm")
            request(method, "/v1/warm")
        # A request is counted once its answer is sent, so the last may not show yet (nor
        # the first /metrics): read until two readings agree.
        before, again = series(client), series(client)
        while again != before:
            before, again = again, series(client)
        sent = []
        for _ in range(150):
            method = rng.choice([word(3, 12).upper(), rng.choice(standard)])
            path = (
                rng.choice(["", "/v1"])
                + "/"
                + "/".join(word(1, 20) for _ in range(rng.randint(1, 4)))
            )
            request(method, path)
            sent.append((method, path))
        after = series(client)
        assert after == before
        text = client.get("/metrics").text
        assert 'method="other"' in text
        assert 'path="unmatched"' in text
        assert all(m not in text for m, _ in sent if m not in standard)
        assert all(p not in text for _, p in sent)

    def test_paths_are_route_templates(self, client: TestClient) -> None:
        officer = bearer(client, "officer")
        client.get("/v1/persons/7a1c8a3e-5b2d-4c6f-9e01-b0f1a2c3d4e5", headers=officer)
        client.get("/v1/persons/3d9f6b2e-8c41-4a7d-b5e0-6f1a2b3c4d5e", headers=officer)
        line = (
            'border_http_requests_total{method="GET",path="/v1/persons/{person_id}",status="404"}'
            " 2.0"
        )
        # A request is counted once its answer is sent: the last may take a moment to show.
        deadline = time.monotonic() + 5
        while line not in (text := client.get("/metrics").text):
            assert time.monotonic() < deadline, text
            time.sleep(0.05)
        assert "7a1c8a3e" not in text


class TestBodies:
    def test_an_oversize_body_with_a_valid_key_is_413_and_changes_nothing(
        self, client: TestClient
    ) -> None:
        admin = bearer(client, "admin")
        with runtime_of(client).pool.connection() as conn:
            before = conn.execute("SELECT count(*) FROM api_clients").fetchone()
        seq = last_seq(client)
        response = client.post(
            "/v1/clients",
            headers={**admin, "content-type": "application/json"},
            content=b'{"name": "x", "role": "admin", "pad": "' + b"a" * TWENTY_MB + b'"}',
        )
        assert response.status_code == 413
        body = response.json()
        assert body["error"] == "body_too_large"
        assert body["limit_bytes"] == LIMIT
        with runtime_of(client).pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM api_clients").fetchone() == before
        events = events_after(client, seq)
        assert [(e[1], e[2], e[3]) for e in events] == [
            ("admin", "clients.create", "body_too_large")
        ]

    def test_a_chunked_body_is_refused_once_past_the_limit_and_no_further_read(
        self, client: TestClient
    ) -> None:
        admin = bearer(client, "admin")
        answer = raw_call(
            client,
            "POST",
            "/v1/clients",
            headers={**admin, "content-type": "application/json"},
            chunks=[b" " * MIB] * 20,
        )
        assert answer.status == 413, answer.body
        assert b'"body_too_large"' in answer.body
        assert LIMIT < answer.consumed <= LIMIT + MIB

    @pytest.mark.parametrize(
        "authorization", [None, "Bearer border_not-a-real-key", "Basic dXNlcjpwYXNz"]
    )
    @pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
    def test_a_body_without_a_valid_key_is_never_read(
        self, client: TestClient, authorization: str | None, declared: bool
    ) -> None:
        headers = {"content-type": "multipart/form-data; boundary=x"}
        if authorization is not None:
            headers["authorization"] = authorization
        if declared:
            headers["content-length"] = str(TWENTY_MB)
        for path in ("/v1/persons", "/v1/nowhere"):
            answer = raw_call(client, "POST", path, headers=headers, chunks=[bytes(MIB)] * 20)
            assert answer.status == 401, answer.body
            assert b'"unauthorized"' in answer.body
            assert answer.consumed == 0

    def test_a_20_mb_body_without_a_key_is_401(self, client: TestClient) -> None:
        response = client.post(
            "/v1/mrz/parse", content=bytes(TWENTY_MB), headers={"content-type": "application/json"}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"

    def test_an_oversize_body_outside_v1_is_413(self, client: TestClient) -> None:
        response = client.post("/nowhere", content=bytes(LIMIT + 1))
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"

    def test_the_limit_is_a_setting(self, settings: Settings, face_model: FaceModel) -> None:
        small = settings.model_copy(update={"body_max_bytes": 1000})
        with TestClient(create_app(small, face_model)) as client:
            officer = {**bearer(client, "officer"), "content-type": "application/json"}
            over = client.post("/v1/mrz/parse", headers=officer, content=b" " * 1001)
            assert over.status_code == 413
            assert over.json()["limit_bytes"] == 1000
            within = client.post("/v1/mrz/parse", headers=officer, content=b" " * 1000)
            assert within.status_code == 422


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "strict-transport-security": "max-age=31536000",
}


class TestSecurityHeaders:
    def test_every_response_carries_them_and_v1_is_never_stored(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        app = create_app(settings, face_model)

        def boom() -> None:
            raise ValueError("boom")

        app.add_api_route("/boom", boom)
        with TestClient(app, raise_server_exceptions=False) as client:
            auditor = bearer(client, "auditor")
            responses = {
                "health": client.get("/health"),
                "metrics": client.get("/metrics"),
                "read": client.get("/v1/audit/verify", headers=auditor),
                "no key": client.get("/v1/audit/verify"),
                "unknown": client.get("/nowhere"),
                "too large": client.post("/nowhere", content=bytes(LIMIT + 1)),
                "internal": client.get("/boom"),
            }
        statuses = {name: r.status_code for name, r in responses.items()}
        assert statuses == {
            "health": 200,
            "metrics": 200,
            "read": 200,
            "no key": 401,
            "unknown": 404,
            "too large": 413,
            "internal": 500,
        }
        for name, response in responses.items():
            for header, value in SECURITY_HEADERS.items():
                assert response.headers.get(header) == value, (name, header)
            csp = response.headers["content-security-policy"]
            assert re.search(r"frame-ancestors 'none'", csp), name
            assert response.headers["cache-control"] == "no-store", name
