"""Guardians of minors (DESIGN §10): recording a guardian, and when an accompanying adult
clears MINOR_UNACCOMPANIED at a crossing: named by person id (officers) only when they are
a recorded guardian of full age on the day, or by a kiosk through the adult's own admitted
crossing at the same border point, in the same direction, within the last 30 minutes.

Real face model, real photos: obama*.jpg are one person (the minor here), biden.jpg and
lin-manuel-miranda.png two others (adults). The default policy applies: visa-exempt USA,
adults from 18."""

from datetime import date, datetime, timedelta
from typing import Any, Final
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.border.crossing_helpers import (
    AIRPORT,
    LAND,
    Body,
    Clock,
    Headers,
    born_years_ago,
    codes,
    cross,
    recorded,
    traveller,
)
from tests.conftest import runtime_of
from tests.factories import enroll, new_key_headers, photo

ADULT_BIRTH: Final = date(1980, 5, 17)


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def minor_mrz(clock: Clock) -> str:
    return traveller("USA", "US0000010", birth_date=born_years_ago(clock, 10))


GUARDIAN_MRZ: Final = traveller("USA", "US0000020", birth_date=ADULT_BIRTH, surname="PARENT")
STRANGER_MRZ: Final = traveller("USA", "US0000030", birth_date=ADULT_BIRTH, surname="STRANGER")


@pytest.fixture
def minor(client: TestClient, headers: Headers, clock: Clock) -> UUID:
    """A visa-exempt traveller of ten, enrolled with obama.jpg."""
    return enroll(client, headers["consular"], "obama.jpg", minor_mrz(clock))


@pytest.fixture
def guardian(client: TestClient, headers: Headers) -> UUID:
    """An adult enrolled with biden.jpg (a guardian once a link is recorded)."""
    return enroll(client, headers["consular"], "biden.jpg", GUARDIAN_MRZ)


@pytest.fixture
def stranger(client: TestClient, headers: Headers) -> UUID:
    """An adult enrolled with lin-manuel-miranda.png, nobody's guardian."""
    return enroll(client, headers["consular"], "lin-manuel-miranda.png", STRANGER_MRZ)


def post_guardian(
    client: TestClient, headers: dict[str, str], minor_id: UUID | str, **body: Any
) -> Response:
    payload = {"relationship": "parent", "evidence": "birth certificate 12/2016"} | body
    payload = {k: str(v) if isinstance(v, UUID | date) else v for k, v in payload.items()}
    response: Response = client.post(
        f"/v1/persons/{minor_id}/guardians", headers=headers, json=payload
    )
    return response


def link(client: TestClient, headers: Headers, minor_id: UUID, adult: UUID, **body: Any) -> None:
    response = post_guardian(
        client, headers["consular"], minor_id, guardian_person_id=adult, **body
    )
    assert response.status_code == 201, response.json()


def guardian_rows(client: TestClient) -> int:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM guardians").fetchone()
    assert row is not None
    return int(row[0])


def kiosk_cross(
    client: TestClient,
    headers: dict[str, str],
    *,
    mrz: str,
    picture: str,
    at: datetime,
    direction: str = "entry",
    border_point: str = AIRPORT,
    accompanied_by_crossing: UUID | str | None = None,
) -> Body:
    data = {"mrz": mrz, "direction": direction, "border_point": border_point,
            "at": at.isoformat()}  # fmt: skip
    if accompanied_by_crossing is not None:
        data["accompanied_by_crossing"] = str(accompanied_by_crossing)
    response = client.post(
        "/v1/crossings",
        headers=headers,
        files={"image": ("live.jpg", photo(picture), "image/jpeg")},
        data=data,
    )
    assert response.status_code == 201, response.json()
    body: Body = response.json()
    return body


class TestRecordGuardian:
    @pytest.mark.parametrize("role", ["consular", "officer"])
    def test_a_parent_is_recorded(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, role: str
    ) -> None:
        response = post_guardian(
            client, headers[role], minor, guardian_person_id=guardian, relationship="parent"
        )

        assert response.status_code == 201, response.json()
        body = response.json()
        UUID(body["guardian_link_id"])
        assert (body["minor_id"], body["guardian_person_id"]) == (str(minor), str(guardian))
        assert (body["relationship"], body["valid_until"]) == ("parent", None)
        person = client.get(f"/v1/persons/{minor}", headers=headers["officer"]).json()
        assert [(g["guardian_person_id"], g["relationship"]) for g in person["guardians"]] == [
            (str(guardian), "parent")
        ]
        assert guardian_rows(client) == 1

    def test_an_authorised_adult_needs_valid_until(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID
    ) -> None:
        response = post_guardian(
            client, headers["consular"], minor, guardian_person_id=guardian,
            relationship="authorised_adult",
        )  # fmt: skip

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == (
            "invalid_request", "valid_until",
        )  # fmt: skip
        assert guardian_rows(client) == 0

    def test_an_authorised_adult_with_valid_until_is_recorded(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        until = clock.day(-14)
        response = post_guardian(
            client, headers["consular"], minor, guardian_person_id=guardian,
            relationship="authorised_adult", valid_until=until,
        )  # fmt: skip

        assert response.status_code == 201, response.json()
        assert response.json()["valid_until"] == until.isoformat()

    def test_an_unknown_guardian_is_404(
        self, client: TestClient, headers: Headers, minor: UUID
    ) -> None:
        response = post_guardian(client, headers["consular"], minor, guardian_person_id=uuid4())

        assert response.status_code == 404, response.json()
        assert response.json()["error"] == "not_found"
        assert guardian_rows(client) == 0

    def test_an_unknown_minor_is_404(
        self, client: TestClient, headers: Headers, guardian: UUID
    ) -> None:
        response = post_guardian(client, headers["consular"], uuid4(), guardian_person_id=guardian)

        assert response.status_code == 404, response.json()
        assert guardian_rows(client) == 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"relationship": "uncle"}, "relationship"),
            ({"evidence": ""}, "evidence"),
            ({"valid_until": "next week"}, "valid_until"),
            ({"colour": "blue"}, "colour"),
        ],
    )
    def test_bad_bodies_name_the_field(
        self,
        client: TestClient,
        headers: Headers,
        minor: UUID,
        guardian: UUID,
        change: dict[str, str],
        field: str,
    ) -> None:
        response = post_guardian(
            client, headers["consular"], minor, guardian_person_id=guardian, **change
        )

        assert response.status_code == 422, response.json()
        assert response.json()["field"] == field
        assert guardian_rows(client) == 0

    def test_a_person_is_not_their_own_guardian(
        self, client: TestClient, headers: Headers, minor: UUID
    ) -> None:
        response = post_guardian(client, headers["consular"], minor, guardian_person_id=minor)

        assert response.status_code == 422, response.json()
        assert guardian_rows(client) == 0

    @pytest.mark.parametrize("role", ["kiosk", "auditor", "admin"])
    def test_other_roles_may_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, role: str
    ) -> None:
        response = post_guardian(client, headers[role], minor, guardian_person_id=guardian)

        assert response.status_code == 403
        assert guardian_rows(client) == 0


class TestAccompaniedByPersonId:
    def test_a_recorded_guardian_of_full_age_clears_it(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        body = cross(client, headers["officer"], mrz=minor_mrz(clock), picture="obama2.jpg",
                     at=clock.now, accompanied_by=guardian)  # fmt: skip

        assert body["person_id"] == str(minor)
        assert (body["decision"], body["reasons"]) == ("admit", [])
        assert body["accompanied_by"] == str(guardian)
        assert recorded(client, minor) == [("entry", "admit", None)]

    def test_without_anyone_it_is_minor_unaccompanied(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        body = cross(client, headers["officer"], mrz=minor_mrz(clock), picture="obama2.jpg",
                     at=clock.now)  # fmt: skip

        assert (body["decision"], codes(body)) == ("refer", ["MINOR_UNACCOMPANIED"])

    def test_a_non_guardian_and_an_unknown_id_look_the_same(
        self,
        client: TestClient,
        headers: Headers,
        minor: UUID,
        guardian: UUID,
        stranger: UUID,
        clock: Clock,
    ) -> None:
        link(client, headers, minor, guardian)
        by_stranger = cross(client, headers["officer"], mrz=minor_mrz(clock),
                            picture="obama2.jpg", at=clock.now - timedelta(minutes=1),
                            accompanied_by=stranger)  # fmt: skip
        by_nobody = cross(client, headers["officer"], mrz=minor_mrz(clock),
                          picture="obama2.jpg", at=clock.now, accompanied_by=uuid4())  # fmt: skip

        for body in (by_stranger, by_nobody):
            assert (body["decision"], codes(body)) == ("refer", ["MINOR_UNACCOMPANIED"])
            assert body["accompanied_by"] is None

        def shape(body: Body) -> Body:
            return {k: v for k, v in body.items() if k not in ("crossing_id", "at")}

        assert shape(by_stranger) == shape(by_nobody)
        assert by_stranger["reasons"] == by_nobody["reasons"]
        assert recorded(client, minor) == [("entry", "refer", None), ("entry", "refer", None)]

    def test_the_guardian_of_another_minor_does_not_clear_it(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        other_minor = enroll(
            client,
            headers["consular"],
            "lin-manuel-miranda.png",
            traveller("USA", "US0000040", birth_date=born_years_ago(clock, 8)),
        )
        link(client, headers, other_minor, guardian)
        body = cross(client, headers["officer"], mrz=minor_mrz(clock), picture="obama2.jpg",
                     at=clock.now, accompanied_by=guardian)  # fmt: skip

        assert codes(body) == ["MINOR_UNACCOMPANIED"]
        assert body["accompanied_by"] is None

    def test_a_guardian_who_is_a_minor_does_not_clear_it(
        self, client: TestClient, headers: Headers, minor: UUID, clock: Clock
    ) -> None:
        sibling = enroll(
            client,
            headers["consular"],
            "biden.jpg",
            traveller("USA", "US0000050", birth_date=born_years_ago(clock, 16)),
        )
        link(client, headers, minor, sibling, relationship="legal_guardian")
        body = cross(client, headers["officer"], mrz=minor_mrz(clock), picture="obama2.jpg",
                     at=clock.now, accompanied_by=sibling)  # fmt: skip

        assert codes(body) == ["MINOR_UNACCOMPANIED"]
        assert body["accompanied_by"] is None

    @pytest.mark.parametrize(
        ("until_days_ago", "cleared"), [(1, False), (30, False), (0, True), (-7, True)]
    )
    def test_an_authorised_adult_until_their_valid_until(
        self,
        client: TestClient,
        headers: Headers,
        minor: UUID,
        guardian: UUID,
        clock: Clock,
        until_days_ago: int,
        cleared: bool,
    ) -> None:
        link(client, headers, minor, guardian, relationship="authorised_adult",
             valid_until=clock.day(until_days_ago))  # fmt: skip
        body = cross(client, headers["officer"], mrz=minor_mrz(clock), picture="obama2.jpg",
                     at=clock.now, accompanied_by=guardian)  # fmt: skip

        if cleared:
            assert (body["decision"], body["reasons"]) == ("admit", [])
            assert body["accompanied_by"] == str(guardian)
        else:
            assert (body["decision"], codes(body)) == ("refer", ["MINOR_UNACCOMPANIED"])
            assert body["accompanied_by"] is None

    def test_an_adult_needs_no_one(
        self, client: TestClient, headers: Headers, guardian: UUID, clock: Clock
    ) -> None:
        body = cross(client, headers["officer"], mrz=GUARDIAN_MRZ, picture="biden.jpg",
                     at=clock.now)  # fmt: skip

        assert (body["decision"], body["reasons"]) == ("admit", [])


class TestAccompaniedByCrossing:
    """A kiosk names the adult by the crossing id it got for them: kiosks bound to a point."""

    def test_the_adults_admitted_crossing_just_before_clears_it(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        adult = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="biden.jpg",
                            at=clock.now - timedelta(minutes=2))  # fmt: skip
        assert (adult["decision"], adult["reasons"]) == ("admit", [])

        body = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                           at=clock.now, accompanied_by_crossing=adult["crossing_id"])  # fmt: skip

        assert (body["decision"], body["reasons"]) == ("admit", [])
        assert recorded(client, minor) == [("entry", "admit", None)]

    def test_a_crossing_at_another_border_point_does_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        rt = runtime_of(client)
        land = new_key_headers(rt, "kiosk", LAND)
        air = new_key_headers(rt, "kiosk", AIRPORT)
        adult = kiosk_cross(client, land, mrz=GUARDIAN_MRZ, picture="biden.jpg",
                            border_point=LAND, at=clock.now - timedelta(minutes=2))  # fmt: skip
        assert (adult["decision"], adult["reasons"]) == ("admit", [])

        body = kiosk_cross(client, air, mrz=minor_mrz(clock), picture="obama2.jpg",
                           at=clock.now, accompanied_by_crossing=adult["crossing_id"])  # fmt: skip

        assert (body["decision"], codes(body)) == ("refer", ["MINOR_UNACCOMPANIED"])
        assert "accompanied_by" not in body  # a kiosk learns no person id (DESIGN §12)

    def test_a_crossing_in_the_other_direction_does_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        adult_in = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="biden.jpg",
                               at=clock.now - timedelta(minutes=20))  # fmt: skip
        adult_out = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="biden.jpg",
                                direction="exit", at=clock.now - timedelta(minutes=10))  # fmt: skip
        assert [adult_in["decision"], adult_out["decision"]] == ["admit", "admit"]

        by_exit = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                              at=clock.now - timedelta(minutes=1),
                              accompanied_by_crossing=adult_out["crossing_id"])  # fmt: skip
        assert (by_exit["decision"], codes(by_exit)) == ("refer", ["MINOR_UNACCOMPANIED"])
        # The same minor, named by the adult's entry (same direction, 20 minutes back).
        by_entry = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama3.jpg",
                               at=clock.now,
                               accompanied_by_crossing=adult_in["crossing_id"])  # fmt: skip
        assert (by_entry["decision"], by_entry["reasons"]) == ("admit", [])

    def test_a_crossing_older_than_30_minutes_does_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        start = clock.now - timedelta(hours=2)
        adult = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="biden.jpg", at=start)
        assert (adult["decision"], adult["reasons"]) == ("admit", [])

        late = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                           at=start + timedelta(minutes=31),
                           accompanied_by_crossing=adult["crossing_id"])  # fmt: skip
        assert (late["decision"], codes(late)) == ("refer", ["MINOR_UNACCOMPANIED"])
        in_time = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama3.jpg",
                              at=start + timedelta(minutes=29),
                              accompanied_by_crossing=adult["crossing_id"])  # fmt: skip
        assert (in_time["decision"], in_time["reasons"]) == ("admit", [])

    def test_a_crossing_after_the_minors_does_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        adult = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="biden.jpg",
                            at=clock.now - timedelta(minutes=5))  # fmt: skip

        body = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                           at=clock.now - timedelta(minutes=10),
                           accompanied_by_crossing=adult["crossing_id"])  # fmt: skip
        assert codes(body) == ["MINOR_UNACCOMPANIED"]

    def test_a_referred_adult_crossing_does_not(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        # The guardian's passport with someone else's face: FACE_MISMATCH, referred.
        adult = kiosk_cross(client, kiosk, mrz=GUARDIAN_MRZ, picture="lin-manuel-miranda.png",
                            at=clock.now - timedelta(minutes=2))  # fmt: skip
        assert (adult["decision"], codes(adult)) == ("refer", ["FACE_MISMATCH"])

        body = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                           at=clock.now, accompanied_by_crossing=adult["crossing_id"])  # fmt: skip
        assert codes(body) == ["MINOR_UNACCOMPANIED"]

    def test_a_non_guardians_crossing_and_an_unknown_id_look_the_same(
        self,
        client: TestClient,
        headers: Headers,
        minor: UUID,
        guardian: UUID,
        stranger: UUID,
        clock: Clock,
    ) -> None:
        link(client, headers, minor, guardian)
        kiosk = new_key_headers(runtime_of(client), "kiosk", AIRPORT)
        adult = kiosk_cross(client, kiosk, mrz=STRANGER_MRZ, picture="lin-manuel-miranda.png",
                            at=clock.now - timedelta(minutes=3))  # fmt: skip
        assert adult["decision"] == "admit"

        by_stranger = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                                  at=clock.now - timedelta(minutes=1),
                                  accompanied_by_crossing=adult["crossing_id"])  # fmt: skip
        by_nobody = kiosk_cross(client, kiosk, mrz=minor_mrz(clock), picture="obama2.jpg",
                                at=clock.now, accompanied_by_crossing=uuid4())  # fmt: skip

        def shape(body: Body) -> Body:
            return {k: v for k, v in body.items() if k not in ("crossing_id", "at")}

        assert (by_stranger["decision"], codes(by_stranger)) == ("refer", ["MINOR_UNACCOMPANIED"])
        assert shape(by_stranger) == shape(by_nobody)
        assert "accompanied_by" not in by_stranger

    def test_both_ways_of_naming_the_adult_at_once_is_refused(
        self, client: TestClient, headers: Headers, minor: UUID, guardian: UUID, clock: Clock
    ) -> None:
        response = client.post(
            "/v1/crossings",
            headers=headers["officer"],
            files={"image": ("live.jpg", photo("obama2.jpg"), "image/jpeg")},
            data={"mrz": minor_mrz(clock), "direction": "entry", "border_point": AIRPORT,
                  "at": clock.now.isoformat(), "accompanied_by": str(guardian),
                  "accompanied_by_crossing": str(uuid4())},
        )  # fmt: skip

        assert response.status_code == 422, response.json()
        assert response.json()["field"] == "accompanied_by_crossing"
        assert recorded(client, minor) == []
