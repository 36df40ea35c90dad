"""Back-dated crossings (DESIGN §14): a kiosk may date a crossing at most
BORDER_KIOSK_MAX_BACKDATE_H (72) hours back, one more than 10 minutes back is recorded
``late``; an officer records older crossings, marked late and audited; officers list the
late ones with ``GET /v1/crossings?late=true``.

Real face model, real photos: obama*.jpg are one person, biden.jpg another."""

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.border.crossing_helpers import (
    AIRPORT,
    LAND,
    Clock,
    Headers,
    codes,
    counts,
    cross,
    new_client_key,
    post_crossing,
    traveller,
    with_officer_record,
)
from tests.conftest import runtime_of

USA = traveller("USA", "US0000001")
GBR = traveller("GBR", "GB0000001")


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def overstayers(client: TestClient, headers: Headers, clock: Clock) -> list[str]:
    response = client.get(
        "/v1/overstayers", headers=headers["officer"], params={"on": clock.today.isoformat()}
    )
    assert response.status_code == 200, response.json()
    return [o["person_id"] for o in response.json()]


def late_list(client: TestClient, headers: Headers, **params: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/v1/crossings", headers=headers["officer"], params={"late": True, **params}
    )
    assert response.status_code == 200, response.json()
    listed: list[dict[str, Any]] = response.json()
    return listed


def audit_detail(client: TestClient, crossing_id: str) -> dict[str, Any]:
    """The detail of the crossing's crossings.create event."""
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT detail FROM audit_events WHERE action = 'crossings.create'"
            " AND resource_id = %(id)s",
            {"id": crossing_id},
        ).fetchone()
    assert row is not None
    detail: dict[str, Any] = row[0]
    return detail


class TestKioskBackdatingWindow:
    def test_a_kiosk_cannot_erase_an_overstay_with_a_backdated_exit(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """In 100 days ago (recorded by an officer), 10 days past the allowance. The kiosk
        posts the exit dated on day -89, inside the allowance: refused, nothing recorded,
        the traveller is still an overstayer."""
        entry = cross(client, headers["officer"], mrz=USA, at=clock.ago(100))
        assert overstayers(client, headers, clock) == [entry["person_id"]]
        before = counts(client)

        response = post_crossing(
            client, headers["kiosk"], mrz=USA, picture="obama2.jpg", direction="exit",
            at=clock.ago(89),
        )  # fmt: skip

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == ("invalid_request", "at")
        assert "72 h" in response.json()["detail"]
        assert counts(client) == before
        assert overstayers(client, headers, clock) == [entry["person_id"]]

    @pytest.mark.parametrize(
        "at", ["2000-01-01T00:00:00+00:00", "2000-01-01T00:00:00Z", "2001-06-30T23:59:59-12:00"]
    )
    def test_a_kiosk_crossing_dated_years_back_is_refused(
        self, client: TestClient, headers: Headers, at: str
    ) -> None:
        before = counts(client)
        response = post_crossing(client, headers["kiosk"], mrz=USA, at=at)

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == ("invalid_request", "at")
        assert counts(client) == before

    def test_the_window_ends_72_hours_back(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        beyond = post_crossing(
            client, headers["kiosk"], mrz=USA, at=clock.now - timedelta(hours=72, minutes=1)
        )
        inside = post_crossing(
            client, headers["kiosk"], mrz=USA, at=clock.now - timedelta(hours=71, minutes=59)
        )

        assert (beyond.status_code, beyond.json()["field"]) == (422, "at")
        assert inside.status_code == 201, inside.json()
        assert with_officer_record(client, inside.json())["late"] is True

    def test_the_other_faults_of_at_name_the_field_too(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        for at in ("yesterday", "2026-01-01T10:00:00", "1999-12-31T23:59:59+00:00",
                   (clock.now + timedelta(minutes=10)).isoformat()):  # fmt: skip
            response = post_crossing(client, headers["kiosk"], mrz=USA, at=at)
            assert (response.status_code, response.json()["field"]) == (422, "at"), at


class TestConfiguredWindow:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"kiosk_max_backdate_h": 1.0})

    def test_the_window_follows_the_setting(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        beyond = post_crossing(client, headers["kiosk"], mrz=USA, at=clock.now - timedelta(hours=2))
        officer = post_crossing(
            client, headers["officer"], mrz=USA, at=clock.now - timedelta(hours=2)
        )

        assert (beyond.status_code, beyond.json()["field"]) == (422, "at")
        assert "1 h" in beyond.json()["detail"]
        assert officer.status_code == 201, officer.json()


class TestLateMark:
    def test_a_kiosk_crossing_synced_an_hour_late_is_recorded_late(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        body = cross(client, headers["kiosk"], mrz=USA, at=clock.now - timedelta(hours=1))

        assert (body["decision"], body["late"]) == ("admit", True)
        assert audit_detail(client, body["crossing_id"])["late"] is True
        assert [c["crossing_id"] for c in late_list(client, headers)] == [body["crossing_id"]]

    def test_a_crossing_within_ten_minutes_is_not_late(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        now = cross(client, headers["kiosk"], mrz=USA, at=clock.now)
        nine = cross(
            client, headers["kiosk"], mrz=GBR, picture="biden.jpg",
            at=clock.now - timedelta(minutes=9),
        )  # fmt: skip
        unstated = cross(client, headers["kiosk"], mrz=USA, picture="obama2.jpg", direction="exit")

        assert (now["late"], nine["late"], unstated["late"]) == (False, False, False)
        assert audit_detail(client, nine["crossing_id"])["late"] is False
        assert late_list(client, headers) == []

    def test_an_officer_records_an_older_crossing_marked_late_and_audited(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        body = cross(client, headers["officer"], mrz=USA, at=clock.ago(400))

        assert (body["decision"], body["late"]) == ("admit", True)
        assert datetime.fromisoformat(body["at"]) == clock.ago(400)
        detail = audit_detail(client, body["crossing_id"])
        assert (detail["late"], detail["person_id"]) == (True, body["person_id"])
        assert [c["crossing_id"] for c in late_list(client, headers)] == [body["crossing_id"]]

    def test_an_officer_still_may_not_go_before_2000(
        self, client: TestClient, headers: Headers
    ) -> None:
        response = post_crossing(client, headers["officer"], mrz=USA, at="1999-12-31T23:00:00Z")

        assert (response.status_code, response.json()["field"]) == (422, "at")

    def test_the_late_mark_stays_with_the_crossing(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """Read back as the person's crossings, and in the officer's queue when referred."""
        entry = cross(client, headers["kiosk"], mrz=USA, at=clock.now - timedelta(hours=30))
        again = cross(client, headers["kiosk"], mrz=USA, picture="obama2.jpg", at=clock.now)
        assert codes(again) == ["ENTRY_WITHOUT_EXIT"]

        history = client.get(
            "/v1/crossings", headers=headers["officer"], params={"person_id": entry["person_id"]}
        ).json()
        queue = client.get("/v1/crossings", headers=headers["officer"]).json()

        assert [(c["crossing_id"], c["late"]) for c in history] == [
            (entry["crossing_id"], True), (again["crossing_id"], False),
        ]  # fmt: skip
        assert [(c["crossing_id"], c["late"]) for c in queue] == [(again["crossing_id"], False)]


class TestLateList:
    def test_newest_recorded_first_and_by_border_point(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        first = cross(client, headers["officer"], mrz=USA, at=clock.ago(100))
        land_kiosk = new_client_key(client, headers, "kiosk L", "kiosk", LAND)
        second = cross(
            client, land_kiosk, mrz=GBR, picture="biden.jpg", border_point=LAND, at=clock.ago(2)
        )
        third = cross(
            client, headers["kiosk"], mrz=USA, picture="obama2.jpg", direction="exit",
            at=clock.now - timedelta(hours=1),
        )  # fmt: skip

        listed = late_list(client, headers)
        assert [c["crossing_id"] for c in listed] == [
            third["crossing_id"], second["crossing_id"], first["crossing_id"],
        ]  # fmt: skip
        assert all(c["late"] for c in listed)
        assert [c["crossing_id"] for c in late_list(client, headers, border_point=LAND)] == [
            second["crossing_id"]
        ]
        assert [c["crossing_id"] for c in late_list(client, headers, limit=1)] == [
            third["crossing_id"]
        ]

    def test_reading_the_late_list_is_audited(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        cross(client, headers["officer"], mrz=USA, at=clock.ago(10))
        late_list(client, headers, border_point=AIRPORT)

        with runtime_of(client).pool.connection() as conn:
            row = conn.execute(
                "SELECT detail FROM audit_events WHERE action = 'crossings.read'"
                " ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        assert row[0] == {"late": 1, "border_point": AIRPORT}

    @pytest.mark.parametrize("role", ["kiosk", "consular", "auditor", "admin"])
    def test_only_officers_read_the_late_list(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        response = client.get("/v1/crossings", headers=headers[role], params={"late": True})

        assert response.status_code == 403

    def test_late_with_a_person_is_refused(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        body = cross(client, headers["officer"], mrz=USA, at=clock.ago(10))
        response = client.get(
            "/v1/crossings",
            headers=headers["officer"],
            params={"late": True, "person_id": body["person_id"]},
        )

        assert (response.status_code, response.json()["field"]) == (422, "late")


class TestBeforeTheMigration:
    def test_crossings_recorded_before_the_column_are_not_late(
        self, client: TestClient, headers: Headers, clock: Clock, database_url: str
    ) -> None:
        """A row written without the column, as every row before migration 0009 was."""
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO crossings (id, direction, border_point, at, day, decision, reasons,"
                " figures, rule_set, recorded_by, recorded_at) VALUES"
                " ('00000000-0000-4000-8000-000000000001', 'entry', %(bp)s, %(at)s, %(day)s,"
                " 'refer', '[]', '{}', '2026.1', 'old', %(now)s)",
                {
                    "bp": AIRPORT,
                    "at": clock.ago(300),
                    "day": clock.day(300),
                    "now": datetime.now(UTC),
                },
            )
        queue = client.get("/v1/crossings", headers=headers["officer"]).json()

        assert [(c["crossing_id"], c["late"]) for c in queue] == [
            ("00000000-0000-4000-8000-000000000001", False)
        ]
        assert late_list(client, headers) == []
