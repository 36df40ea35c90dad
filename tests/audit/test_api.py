import itertools
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.auth import ROLES

Headers = dict[str, dict[str, str]]


class TestEvents:
    def test_filters_and_paging_by_seq(self, client: TestClient, headers: Headers) -> None:
        auditor = headers["auditor"]
        for _ in range(3):
            client.get("/v1/audit/verify", headers=auditor)
        client.get("/v1/audit/verify", headers=headers["kiosk"])

        page = client.get(
            "/v1/audit/events", headers=auditor, params={"action": "audit.verify", "limit": 2}
        ).json()
        assert [e["action"] for e in page["events"]] == ["audit.verify"] * 2
        rest = client.get(
            "/v1/audit/events",
            headers=auditor,
            params={"action": "audit.verify", "after_seq": page["next_after_seq"]},
        ).json()
        assert len(rest["events"]) == 2
        assert rest["next_after_seq"] is None
        assert rest["events"][-1]["outcome"] == "forbidden"

        kiosk_id = rest["events"][-1]["actor"]
        by_actor = client.get(
            "/v1/audit/events", headers=auditor, params={"actor": kiosk_id}
        ).json()["events"]
        assert [(e["role"], e["outcome"]) for e in by_actor] == [("kiosk", "forbidden")]

    def test_time_window(self, client: TestClient, headers: Headers) -> None:
        now = datetime.now(UTC)
        events = client.get(
            "/v1/audit/events",
            headers=headers["auditor"],
            params={"since": (now + timedelta(hours=1)).isoformat()},
        ).json()["events"]
        assert events == []
        events = client.get(
            "/v1/audit/events",
            headers=headers["auditor"],
            params={"since": (now - timedelta(hours=1)).isoformat(), "until": now.isoformat()},
        ).json()["events"]
        assert {e["action"] for e in events} == {"clients.create"}

    def test_events_hold_ids_and_hashes(self, client: TestClient, headers: Headers) -> None:
        events = client.get("/v1/audit/events", headers=headers["auditor"]).json()["events"]
        assert events[0]["prev_hash"] == "00" * 32
        assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))

    def test_bad_filters_are_422(self, client: TestClient, headers: Headers) -> None:
        for params in ({"limit": 0}, {"limit": 5000}, {"after_seq": -1}, {"since": "yesterday"}):
            response = client.get("/v1/audit/events", headers=headers["auditor"], params=params)
            assert response.status_code == 422, params
            assert response.json()["error"] == "invalid_request"


class TestVerify:
    def test_intact_then_tampered(
        self, client: TestClient, headers: Headers, database_url: str
    ) -> None:
        auditor = headers["auditor"]
        first = client.get("/v1/audit/verify", headers=auditor).json()
        assert first["ok"] is True
        assert first["first_bad_seq"] is None
        assert first["events"] == len(ROLES)  # a client per role, made by the fixture
        # As the superuser: the service's own role cannot switch the trigger off.
        with psycopg.connect(database_url) as conn, conn.transaction():
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute("UPDATE audit_events SET resource_id = 'another' WHERE seq = 4")
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        verdict = client.get("/v1/audit/verify", headers=auditor).json()
        assert verdict["ok"] is False
        assert verdict["first_bad_seq"] == 4
        assert verdict["reason"] == "altered"


class TestRequestIds:
    def test_events_carry_the_request_id_the_caller_gave(
        self, client: TestClient, headers: Headers
    ) -> None:
        auditor = headers["auditor"]
        given = {**auditor, "X-Request-ID": "audit-run.2026-11-30_1"}
        response = client.get("/v1/audit/verify", headers=given)
        assert response.headers["x-request-id"] == "audit-run.2026-11-30_1"
        found = client.get(
            "/v1/audit/events", headers=auditor, params={"request_id": "audit-run.2026-11-30_1"}
        ).json()["events"]
        assert [(e["action"], e["request_id"]) for e in found] == [
            ("audit.verify", "audit-run.2026-11-30_1")
        ]
        # The fixture's clients were made from the command line: no request.
        everything = client.get("/v1/audit/events", headers=auditor).json()["events"]
        assert everything[0]["request_id"] is None
        # The read of the events is itself an event, with the id made for that request.
        made = client.get("/v1/audit/events", headers=auditor)
        reads = {"action": "audit.events.read"}
        last = client.get("/v1/audit/events", headers=auditor, params=reads)
        assert made.headers["x-request-id"] in [e["request_id"] for e in last.json()["events"]]
        assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True

    @pytest.mark.parametrize("given", ["has space", "x" * 65, "semi;colon", "a/b", "<script>"])
    def test_an_id_the_service_does_not_keep_is_replaced(
        self, client: TestClient, headers: Headers, given: str
    ) -> None:
        response = client.get(
            "/v1/audit/verify", headers={**headers["auditor"], "X-Request-ID": given}
        )
        assert response.status_code == 200
        made = response.headers["x-request-id"]
        assert made != given
        assert re.fullmatch("[0-9a-f]{32}", made)

    def test_a_refused_request_is_audited_with_its_id(
        self, client: TestClient, headers: Headers
    ) -> None:
        kiosk = {**headers["kiosk"], "X-Request-ID": "kiosk-refused-1"}
        assert client.get("/v1/audit/verify", headers=kiosk).status_code == 403
        found = client.get(
            "/v1/audit/events",
            headers=headers["auditor"],
            params={"request_id": "kiosk-refused-1"},
        ).json()["events"]
        assert [e["outcome"] for e in found] == ["forbidden"]
