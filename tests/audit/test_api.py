import itertools
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

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
        assert first["events"] == 5  # the five clients made by the fixture
        # As the superuser: the service's own role cannot switch the trigger off.
        with psycopg.connect(database_url) as conn, conn.transaction():
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute("UPDATE audit_events SET resource_id = 'another' WHERE seq = 4")
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        verdict = client.get("/v1/audit/verify", headers=auditor).json()
        assert verdict["ok"] is False
        assert verdict["first_bad_seq"] == 4
        assert verdict["reason"] == "altered"
