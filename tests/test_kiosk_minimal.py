"""DESIGN §12: a kiosk's crossing response holds the crossing id, the decision and the
reasons only; the person's id, stay figures, match, visa and the rest are for officers,
who read them through the crossing routes."""

from uuid import UUID

from fastapi.testclient import TestClient

from tests.border.crossing_helpers import (
    KIOSK_KEYS,
    Body,
    Clock,
    Headers,
    born_years_ago,
    post_crossing,
    traveller,
)
from tests.factories import enroll

USA = traveller("USA", "US0000001")
REASON_KEYS = {"code", "detail", "grounds_for_refusal"}


def kiosk_crossing(client: TestClient, headers: Headers, mrz: str, picture: str) -> Body:
    """The kiosk's answer, checked to hold exactly the kiosk's keys."""
    response = post_crossing(
        client, headers["kiosk"], mrz=mrz, picture=picture, at=Clock.start().now
    )
    assert response.status_code == 201, response.json()
    body: Body = response.json()
    assert set(body) == KIOSK_KEYS
    assert all(set(r) == REASON_KEYS for r in body["reasons"])
    return body


def officer_view(client: TestClient, headers: Headers, person_id: UUID, crossing_id: str) -> Body:
    crossings = client.get(f"/v1/crossings?person_id={person_id}", headers=headers["officer"])
    assert crossings.status_code == 200
    found: list[Body] = [c for c in crossings.json() if c["crossing_id"] == crossing_id]
    assert len(found) == 1
    return found[0]


def codes(body: Body) -> list[str]:
    return [r["code"] for r in body["reasons"]]


class TestKioskResponse:
    def test_an_admitted_traveller_learns_the_decision_only(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        body = kiosk_crossing(client, headers, USA, "obama2.jpg")

        assert (body["decision"], body["reasons"]) == ("admit", [])
        # The officer reads the rest of the same crossing.
        full = officer_view(client, headers, person_id, body["crossing_id"])
        assert full["person_id"] == str(person_id)
        assert full["match"]["matched"] is True
        assert full["stay"] is not None

    def test_a_first_time_traveller_enrolled_at_the_kiosk_learns_no_person_id(
        self, client: TestClient, headers: Headers
    ) -> None:
        body = kiosk_crossing(client, headers, USA, "obama.jpg")

        assert body["decision"] == "admit"
        assert "person_id" not in body

    def test_a_referral_shows_its_reasons_and_nothing_of_the_match(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        body = kiosk_crossing(client, headers, USA, "biden.jpg")

        assert (body["decision"], codes(body)) == ("refer", ["FACE_MISMATCH"])
        full = officer_view(client, headers, person_id, body["crossing_id"])
        assert full["match"]["matched"] is False

    def test_a_document_change_names_no_candidate(
        self, client: TestClient, headers: Headers
    ) -> None:
        enroll(client, headers["consular"], "obama.jpg", USA)
        body = kiosk_crossing(client, headers, traveller("GBR", "GB0000001"), "obama2.jpg")

        assert (body["decision"], codes(body)) == ("refer", ["DOCUMENT_CHANGED"])
        assert "on record" in body["reasons"][0]["detail"]

    def test_a_watchlist_hit_is_see_an_officer(self, client: TestClient, headers: Headers) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        added = client.post(
            "/v1/watchlist",
            headers=headers["officer"],
            json={"person_id": str(person_id), "reason": "wanted for questioning"},
        )
        assert added.status_code == 201
        body = kiosk_crossing(client, headers, USA, "obama2.jpg")

        assert (body["decision"], codes(body)) == ("refer", ["SEE_OFFICER"])
        full = officer_view(client, headers, person_id, body["crossing_id"])
        assert codes(full) == ["WATCHLIST_HIT"]

    def test_an_unaccompanied_minor_learns_the_reason_only(
        self, client: TestClient, headers: Headers
    ) -> None:
        minor = traveller("USA", "US0000010", birth_date=born_years_ago(Clock.start(), 10))
        body = kiosk_crossing(client, headers, minor, "obama.jpg")

        assert (body["decision"], codes(body)) == ("refer", ["MINOR_UNACCOMPANIED"])

    def test_an_officer_posting_a_crossing_gets_the_whole_record(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        response = post_crossing(
            client, headers["officer"], mrz=USA, picture="obama2.jpg", at=Clock.start().now
        )

        assert response.status_code == 201
        body = response.json()
        assert body["person_id"] == str(person_id)
        assert {"stay", "match", "visa_id", "rule_set"} <= set(body)
