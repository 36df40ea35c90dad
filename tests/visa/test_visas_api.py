"""POST /v1/visas and POST /v1/visas/{id}/revoke through HTTP, and the visa facts other
packages read."""

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from tests.conftest import new_key, runtime_of
from tests.factories import enroll, td3
from visa import rules
from visa import service as visa_service

Headers = dict[str, dict[str, str]]


@pytest.fixture
def person(client: TestClient, headers: Headers) -> UUID:
    return enroll(client, headers["consular"], "obama.jpg", td3(number="VISA00001"))


def visa_body(person_id: UUID, /, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "person_id": str(person_id),
        "visa_type": "C",
        "issuing_state": "UTO",
        "valid_from": "2026-01-01",
        "valid_until": "2026-06-30",
        "entries": "MULT",
        "duration_of_stay_days": 90,
    }
    return {**body, **changes}


def visa_count(client: TestClient) -> int:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM visas").fetchone()
    assert row is not None
    return int(row[0])


def last_audit(client: TestClient) -> tuple[str, str, str | None, dict[str, Any]]:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT action, outcome, resource_id, detail FROM audit_events"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2], row[3]


def issue(client: TestClient, headers: Headers, person_id: UUID, /, **changes: object) -> UUID:
    response = client.post(
        "/v1/visas", headers=headers["consular"], json=visa_body(person_id, **changes)
    )
    assert response.status_code == 201, response.json()
    return UUID(response.json()["visa_id"])


class TestIssueVisa:
    def test_issue_returns_the_visa_and_audits_it(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        response = client.post("/v1/visas", headers=headers["consular"], json=visa_body(person))
        assert response.status_code == 201
        body = response.json()
        assert re.fullmatch(r"[A-Z0-9]{9}", body["number"])
        assert {k: body[k] for k in ("person_id", "visa_type", "status", "entries")} == {
            "person_id": str(person),
            "visa_type": "C",
            "status": "issued",
            "entries": "MULT",
        }
        assert (body["valid_from"], body["valid_until"]) == ("2026-01-01", "2026-06-30")
        assert (body["revoked_at"], body["revoked_by"]) == (None, None)
        action, outcome, resource_id, detail = last_audit(client)
        assert (action, outcome, resource_id) == ("visas.issue", "ok", body["visa_id"])
        assert detail["person_id"] == str(person)
        assert body["number"] not in str(detail)
        assert visa_count(client) == 1

    def test_numbers_are_unique(self, client: TestClient, headers: Headers, person: UUID) -> None:
        for _ in range(5):
            issue(client, headers, person)
        with runtime_of(client).pool.connection() as conn:
            numbers = [r[0] for r in conn.execute("SELECT number FROM visas")]
        assert len(set(numbers)) == 5

    @pytest.mark.parametrize(("sent", "stored"), [(1, "1"), (2, "2"), ("1", "1"), ("MULT", "MULT")])
    def test_entries_as_numbers_are_normalised(
        self, client: TestClient, headers: Headers, person: UUID, sent: object, stored: str
    ) -> None:
        response = client.post(
            "/v1/visas", headers=headers["consular"], json=visa_body(person, entries=sent)
        )
        assert response.status_code == 201
        assert response.json()["entries"] == stored

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param(
                {
                    "valid_from": "2026-03-01",
                    "valid_until": "2026-03-01",
                    "duration_of_stay_days": 1,
                },
                id="one-day visa",
            ),
            pytest.param(
                {"valid_from": "2026-01-01", "valid_until": "2026-03-31"}, id="90 days in 90"
            ),
            pytest.param(
                {"visa_type": "D", "valid_until": "2026-12-31", "duration_of_stay_days": 365},
                id="long stay",
            ),
            pytest.param({"visa_type": "A", "duration_of_stay_days": 1}, id="airport transit"),
            pytest.param({"issuing_state": "D"}, id="one-letter state"),
        ],
    )
    def test_boundaries_that_are_allowed(
        self, client: TestClient, headers: Headers, person: UUID, changes: dict[str, object]
    ) -> None:
        issue(client, headers, person, **changes)

    @pytest.mark.parametrize(
        ("changes", "problem"),
        [
            pytest.param(
                {"valid_from": "2026-06-30", "valid_until": "2026-01-01"},
                "valid_until (2026-01-01) is before valid_from",
                id="inverted range",
            ),
            pytest.param({"duration_of_stay_days": 0}, "greater than 0", id="zero duration"),
            pytest.param({"duration_of_stay_days": -5}, "greater than 0", id="negative duration"),
            pytest.param(
                {"duration_of_stay_days": "30"}, "valid integer", id="duration as a string"
            ),
            pytest.param(
                {"duration_of_stay_days": 30.5}, "valid integer", id="fractional duration"
            ),
            pytest.param(
                {
                    "valid_from": "2026-01-01",
                    "valid_until": "2026-01-10",
                    "duration_of_stay_days": 11,
                },
                "longer than the 10 day(s)",
                id="duration longer than validity",
            ),
            pytest.param(
                {"valid_until": "2026-12-31", "duration_of_stay_days": 91},
                "at most 90 days",
                id="short stay over 90 days",
            ),
            pytest.param({"visa_type": "B"}, "visa_type", id="unknown type"),
            pytest.param({"visa_type": "c"}, "visa_type", id="lowercase type"),
            pytest.param({"entries": 3}, "entries", id="three entries"),
            pytest.param({"entries": 0}, "entries", id="zero entries"),
            pytest.param({"entries": "multiple"}, "entries", id="entries spelt out"),
            pytest.param({"entries": True}, "entries", id="entries as a boolean"),
            pytest.param({"issuing_state": "uto"}, "ICAO", id="lowercase state"),
            pytest.param({"issuing_state": "UTOP"}, "ICAO", id="state too long"),
            pytest.param({"issuing_state": ""}, "ICAO", id="empty state"),
            pytest.param({"valid_from": "2026-02-30"}, "valid_from", id="impossible date"),
            pytest.param({"valid_from": "01/02/2026"}, "valid_from", id="not ISO"),
            pytest.param({"valid_until": "2026-06-30T00:00:00"}, "valid_until", id="a datetime"),
            pytest.param({"valid_until": 1767225600}, "valid_until", id="a timestamp"),
            pytest.param({"person_id": "not-a-uuid"}, "person_id", id="bad person id"),
            pytest.param({"number": "ABC123456"}, "number", id="unknown field"),
            pytest.param({"valid_until": None}, "valid_until", id="null date"),
        ],
    )
    def test_bad_bodies_are_refused_and_nothing_is_written(
        self,
        client: TestClient,
        headers: Headers,
        person: UUID,
        changes: dict[str, object],
        problem: str,
    ) -> None:
        response = client.post(
            "/v1/visas", headers=headers["consular"], json=visa_body(person, **changes)
        )
        assert response.status_code == 422
        body = response.json()
        assert body["error"] == "invalid_request"
        assert problem in body["detail"]
        assert visa_count(client) == 0
        assert last_audit(client)[:2] == ("visas.issue", "invalid_request")

    @pytest.mark.parametrize("missing", list(visa_body(uuid4())))
    def test_every_field_is_required(
        self, client: TestClient, headers: Headers, person: UUID, missing: str
    ) -> None:
        body = visa_body(person)
        del body[missing]
        response = client.post("/v1/visas", headers=headers["consular"], json=body)
        assert response.status_code == 422
        assert ["body", missing] in [p["loc"] for p in response.json()["problems"]]
        assert visa_count(client) == 0
        assert last_audit(client)[:2] == ("visas.issue", "invalid_request")

    def test_not_json_is_refused(self, client: TestClient, headers: Headers) -> None:
        response = client.post(
            "/v1/visas",
            headers={**headers["consular"], "content-type": "application/json"},
            content=b"{",
        )
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert visa_count(client) == 0

    def test_unknown_person_is_404(self, client: TestClient, headers: Headers) -> None:
        response = client.post("/v1/visas", headers=headers["consular"], json=visa_body(uuid4()))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert visa_count(client) == 0
        assert last_audit(client)[:2] == ("visas.issue", "not_found")

    def test_erased_person_is_404(self, client: TestClient, headers: Headers, person: UUID) -> None:
        assert client.delete(f"/v1/persons/{person}", headers=headers["admin"]).status_code == 204
        response = client.post("/v1/visas", headers=headers["consular"], json=visa_body(person))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert visa_count(client) == 0

    @pytest.mark.parametrize("role", ["kiosk", "officer", "auditor", "admin"])
    def test_only_consular_staff_issue(
        self, client: TestClient, headers: Headers, person: UUID, role: str
    ) -> None:
        response = client.post("/v1/visas", headers=headers[role], json=visa_body(person))
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert visa_count(client) == 0
        assert last_audit(client)[:2] == ("visas.issue", "forbidden")


class TestRevokeVisa:
    def test_revoke_then_revoke_again(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        visa_id = issue(client, headers, person)
        first = client.post(f"/v1/visas/{visa_id}/revoke", headers=headers["consular"])
        assert first.status_code == 200
        body = first.json()
        assert (body["visa_id"], body["status"]) == (str(visa_id), "revoked")
        assert body["revoked_at"] is not None
        assert body["revoked_by"] == body["issued_by"]
        action, outcome, resource_id, detail = last_audit(client)
        assert (action, outcome, resource_id) == ("visas.revoke", "ok", str(visa_id))
        assert detail == {"person_id": str(person), "already_revoked": False}

        other = {"Authorization": f"Bearer {new_key(runtime_of(client), 'consular')}"}
        again = client.post(f"/v1/visas/{visa_id}/revoke", headers=other)
        assert again.status_code == 200
        assert again.json() == body, "the first revocation's time and author are kept"
        assert last_audit(client)[3] == {"person_id": str(person), "already_revoked": True}

    def test_unknown_visa_is_404(self, client: TestClient, headers: Headers) -> None:
        response = client.post(f"/v1/visas/{uuid4()}/revoke", headers=headers["consular"])
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert last_audit(client)[:2] == ("visas.revoke", "not_found")

    def test_a_bad_id_is_422(self, client: TestClient, headers: Headers) -> None:
        response = client.post("/v1/visas/123/revoke", headers=headers["consular"])
        assert response.status_code == 422

    @pytest.mark.parametrize("role", ["kiosk", "officer", "auditor", "admin"])
    def test_only_consular_staff_revoke(
        self, client: TestClient, headers: Headers, person: UUID, role: str
    ) -> None:
        visa_id = issue(client, headers, person)
        response = client.post(f"/v1/visas/{visa_id}/revoke", headers=headers[role])
        assert response.status_code == 403
        with runtime_of(client).pool.connection() as conn:
            assert conn.execute("SELECT status FROM visas").fetchone() == ("issued",)


class TestVisaFacts:
    def test_visas_of_and_visa_facts(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        first = issue(client, headers, person, entries=1, duration_of_stay_days=30)
        second = issue(
            client,
            headers,
            person,
            visa_type="D",
            valid_until="2026-12-31",
            duration_of_stay_days=300,
        )
        client.post(f"/v1/visas/{first}/revoke", headers=headers["consular"])
        rt = runtime_of(client)
        with rt.pool.connection() as conn:
            listed = visa_service.visas_of(conn, person)
            facts = visa_service.visa_facts(conn, person)
            assert visa_service.visas_of(conn, uuid4()) == []
        assert [(v.visa_id, v.status, v.entries) for v in listed] == [
            (first, "revoked", "1"),
            (second, "issued", "MULT"),
        ]
        assert listed[0].revoked_at is not None
        assert set(listed[0].model_dump()) == {
            "visa_id", "number", "visa_type", "issuing_state", "valid_from", "valid_until",
            "entries", "duration_of_stay_days", "status", "issued_at", "revoked_at",
        }  # fmt: skip
        assert facts[1] == rules.Visa(
            visa_id=second,
            visa_type="D",
            valid_from=listed[1].valid_from,
            valid_until=listed[1].valid_until,
            entries="MULT",
            duration_of_stay_days=300,
            status="issued",
        )
        assert facts[0].status == "revoked"

    def test_a_visa_revoked_after_the_moment_counts_as_issued_then(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        revoked = issue(client, headers, person)
        kept = issue(client, headers, person, visa_type="D", duration_of_stay_days=90)
        response = client.post(f"/v1/visas/{revoked}/revoke", headers=headers["consular"])
        revoked_at = datetime.fromisoformat(response.json()["revoked_at"])
        second = timedelta(seconds=1)

        def statuses(at: datetime | None = None) -> dict[UUID, str]:
            with runtime_of(client).pool.connection() as conn:
                return {v.visa_id: v.status for v in visa_service.visa_facts(conn, person, at=at)}

        assert statuses(at=revoked_at - second) == {revoked: "issued", kept: "issued"}
        # The same moment in another zone is the same moment.
        assert statuses(at=(revoked_at - second).astimezone(timezone(timedelta(hours=-5)))) == {
            revoked: "issued",
            kept: "issued",
        }
        assert statuses(at=revoked_at) == {revoked: "revoked", kept: "issued"}
        assert statuses(at=revoked_at + second) == {revoked: "revoked", kept: "issued"}
        assert statuses() == {revoked: "revoked", kept: "issued"}, "as stored without at"

    def test_a_naive_moment_is_refused(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        issue(client, headers, person)
        with (
            runtime_of(client).pool.connection() as conn,
            pytest.raises(ValueError, match="aware"),
        ):
            visa_service.visa_facts(conn, person, at=datetime(2026, 6, 15, 12, 0))

    def test_reading_facts_is_not_audited(
        self, client: TestClient, headers: Headers, person: UUID
    ) -> None:
        issue(client, headers, person)
        before = last_audit(client)
        with runtime_of(client).pool.connection() as conn:
            visa_service.visa_facts(conn, person)
            visa_service.visas_of(conn, person)
        assert last_audit(client) == before
