"""One person across documents (DESIGN §10): a renewed passport is DOCUMENT_CHANGED, the
officer links it to the person the face matches, and from then on stay rules, alerts and
history follow the person, not the document. Also the officer's resolution with its
refusal grounds and protection flags.

Real face model, real photos: obama*.jpg are one person, biden.jpg and
lin-manuel-miranda.png two others. The default policy applies: host state UTO, visa-exempt
GBR USA D, 90 days in any 180. Every crossing carries an explicit ``at`` from the test's
clock, so the day counts below are exact."""

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.border.crossing_helpers import (
    Body,
    Clock,
    Headers,
    codes,
    counts,
    cross,
    cross_by_post,
    grey_jpeg,
    grounds,
    issue_visa,
    recorded,
    traveller,
)
from tests.conftest import runtime_of
from tests.factories import enroll, photo

OLD = traveller("USA", "US0000001")  # the passport the person was first seen with
NEW = traveller("USA", "US0000002")  # the renewed passport: another number, same person
NOTE = "Compared the live face with the enrolled captures: same person, passport renewed"


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def iso(day: date) -> str:
    return day.isoformat()


def resolve(client: TestClient, headers: Headers, crossing_id: str, **body: Any) -> Response:
    """An officer's resolution; ``link_person_id`` may be a UUID."""
    payload = {"note": NOTE} | {k: str(v) if isinstance(v, UUID) else v for k, v in body.items()}
    response: Response = client.post(
        f"/v1/crossings/{crossing_id}/resolution", headers=headers["officer"], json=payload
    )
    return response


def queue(client: TestClient, headers: Headers) -> dict[str, Body]:
    """The officer's open referrals by crossing id."""
    response = client.get("/v1/crossings", headers=headers["officer"])
    assert response.status_code == 200, response.json()
    return {c["crossing_id"]: c for c in response.json()}


def crossings_of(client: TestClient, headers: Headers, person_id: str) -> list[Body]:
    response = client.get(
        "/v1/crossings", headers=headers["officer"], params={"person_id": person_id}
    )
    assert response.status_code == 200, response.json()
    listed: list[Body] = response.json()
    return listed


def holders(client: TestClient, headers: Headers, document: str) -> list[str]:
    """Persons found by GET /v1/persons?document=STATE:NUMBER."""
    response = client.get("/v1/persons", headers=headers["officer"], params={"document": document})
    assert response.status_code == 200, response.json()
    return [p["person_id"] for p in response.json()["persons"]]


def documents_of(client: TestClient, headers: Headers, person_id: str) -> list[str]:
    """The person's documents as STATE:NUMBER, sorted."""
    response = client.get(f"/v1/persons/{person_id}", headers=headers["consular"])
    assert response.status_code == 200, response.json()
    return sorted(
        f"{d['issuing_state']}:{d['document_number']}" for d in response.json()["documents"]
    )


def stay_on(client: TestClient, headers: Headers, person_id: str, on: date) -> Body:
    response = client.get(
        f"/v1/persons/{person_id}/stay", headers=headers["officer"], params={"on": iso(on)}
    )
    assert response.status_code == 200, response.json()
    body: Body = response.json()
    return body


def overstayers_on(client: TestClient, headers: Headers, on: date) -> list[Body]:
    response = client.get("/v1/overstayers", headers=headers["officer"], params={"on": iso(on)})
    assert response.status_code == 200, response.json()
    listed: list[Body] = response.json()
    return listed


def identified(client: TestClient, headers: Headers, picture: str) -> list[dict[str, Any]]:
    """What POST /v1/identify says of a photo: the 1:N candidates the crossing should name."""
    response = client.post(
        "/v1/identify",
        headers=headers["officer"],
        files={"image": ("live.jpg", photo(picture), "application/octet-stream")},
        data={"k": "5"},
    )
    assert response.status_code == 200, response.json()
    found: list[dict[str, Any]] = response.json()["candidates"]
    return found


def changed(
    client: TestClient, headers: Headers, clock: Clock, *, mrz: str = NEW,
    picture: str = "obama2.jpg", days_ago: int = 0, direction: str = "entry",
) -> Body:  # fmt: skip
    """A crossing with a document nobody holds by an enrolled face: DOCUMENT_CHANGED. The
    kiosk's within its back-dating window, else an officer's (who sees the candidates)."""
    body = cross_by_post(
        client, headers, mrz=mrz, picture=picture, direction=direction,
        at=clock.ago(days_ago),
    )  # fmt: skip
    assert (body["decision"], codes(body)) == ("refer", ["DOCUMENT_CHANGED"]), body["reasons"]
    assert body["person_id"] is None
    return body


def stayed(client: TestClient, headers: Headers, clock: Clock, entry: int, exit_: int) -> str:
    """The person first seen at the post with the old passport: an entry ``entry`` days ago
    (which enrolls them) and an exit ``exit_`` days ago, both admitted; their id."""
    first = cross_by_post(client, headers, mrz=OLD, at=clock.ago(entry))
    out = cross_by_post(
        client, headers, mrz=OLD, picture="obama3.jpg", direction="exit",
        at=clock.ago(exit_),
    )  # fmt: skip
    assert (first["decision"], first["reasons"]) == ("admit", [])
    assert (out["decision"], out["reasons"]) == ("admit", [])
    assert first["person_id"] is not None
    assert out["person_id"] == first["person_id"]
    person_id: str = first["person_id"]
    return person_id


class TestRenewedPassport:
    def test_the_renewed_passport_story_end_to_end(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """In from day -100 to day -40 (61 days) on the old passport, back on day -2 on a
        new one (at the kiosk, inside its back-dating window): 61 + 3 days used today, 26
        left, the last authorised day is day +26."""
        person_id = stayed(client, headers, clock, 100, 40)
        before = counts(client)

        kiosk = changed(client, headers, clock, days_ago=2)

        # The kiosk's screen faces the traveller: no candidates there. Nobody is enrolled.
        assert grounds(kiosk) == {"DOCUMENT_CHANGED": False}
        assert kiosk["candidates"] is None
        assert counts(client) == before | {"crossings": before["crossings"] + 1}
        assert holders(client, headers, "USA:US0000002") == []
        assert len(crossings_of(client, headers, person_id)) == 2
        # The officer's queue shows the candidate: the enrolled person, at the 1:N distance.
        officer_view = queue(client, headers)[kiosk["crossing_id"]]
        assert [r["code"] for r in officer_view["reasons"]] == ["DOCUMENT_CHANGED"]
        # The officer reads that the face is on file; the kiosk's screen does not say so.
        assert "matches 1 enrolled" in officer_view["reasons"][0]["detail"]
        assert "enrolled" not in kiosk["reasons"][0]["detail"]
        assert officer_view["resolution"] is None
        candidates = officer_view["candidates"]
        assert [c["person_id"] for c in candidates] == [person_id]
        assert candidates == identified(client, headers, "obama2.jpg")
        assert 0 < candidates[0]["distance"] <= 0.34  # the 1:N threshold (a small gallery)

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 200, response.json()
        resolved = response.json()
        assert resolved["person_id"] == person_id
        assert resolved["resolution"]["outcome"] == "admit"
        assert resolved["resolution"]["note"] == NOTE
        assert resolved["resolution"]["grounds"] is None
        # The crossing judged as the person's: their 61 days count with this one.
        assert resolved["stay"] == {
            "regime": "short_stay",
            "entry": iso(clock.day(2)),
            "window_start": iso(clock.day(2 + 179)),
            "days_used": 62,
            "days_remaining": 28,
            "latest_exit": iso(clock.day(-26)),
            "authorised_until": iso(clock.day(-26)),
            "overstay_days": 0,
        }
        # The document joined the person; nobody new was made.
        assert documents_of(client, headers, person_id) == ["USA:US0000001", "USA:US0000002"]
        assert holders(client, headers, "USA:US0000002") == [person_id]
        assert holders(client, headers, "USA:US0000001") == [person_id]
        assert counts(client) == before | {
            "crossings": before["crossings"] + 1,
            "documents": before["documents"] + 1,
        }
        assert kiosk["crossing_id"] not in queue(client, headers)
        history = crossings_of(client, headers, person_id)
        assert [(c["direction"], c["at"][:10]) for c in history] == [
            ("entry", iso(clock.day(100))),
            ("exit", iso(clock.day(40))),
            ("entry", iso(clock.day(2))),
        ]
        assert history[2]["crossing_id"] == kiosk["crossing_id"]
        assert history[2]["resolution"]["outcome"] == "admit"
        assert recorded(client, person_id) == [
            ("entry", "admit", None), ("exit", "admit", None), ("entry", "refer", "admit"),
        ]  # fmt: skip

        stay = stay_on(client, headers, person_id, clock.today)
        assert (stay["days_used"], stay["days_remaining"]) == (64, 26)
        assert (stay["in_territory"], stay["overstay"]) == (True, False)
        assert stay["authorised_until"] == iso(clock.day(-26))
        assert [(s["entry"], s["exit"], s["days_counted"]) for s in stay["trace"]["stays"]] == [
            (iso(clock.day(100)), iso(clock.day(40)), 61),
            (iso(clock.day(2)), None, 3),
        ]

        # Still inside a week after the last authorised day: 7 days over, on the new passport.
        assert overstayers_on(client, headers, clock.day(-26)) == []
        assert overstayers_on(client, headers, clock.day(-33)) == [
            {
                "person_id": person_id,
                "entry": iso(clock.day(2)),
                "authorised_until": iso(clock.day(-26)),
                "overstay_days": 7,
                "limits_exceeded": ["short_stay_allowance"],
                "visa_id": None,
            }
        ]

    def test_an_exit_on_the_new_passport_counts_the_days_of_both(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """61 days (day -130 to -70) on the old passport, in again on day -60 on the new one:
        90 days are reached on day -32, so leaving today is 32 days over."""
        person_id = stayed(client, headers, clock, 130, 70)
        kiosk = changed(client, headers, clock, days_ago=60)
        linked = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )
        assert linked.status_code == 200, linked.json()
        assert linked.json()["stay"]["authorised_until"] == iso(clock.day(32))

        out = cross(
            client, headers["kiosk"], mrz=NEW, picture="obama3.jpg", direction="exit",
            at=clock.now,
        )  # fmt: skip

        assert (out["decision"], codes(out)) == ("admit", ["OVERSTAY"])
        assert grounds(out) == {"OVERSTAY": False}
        assert out["person_id"] == person_id
        assert out["match"]["matched"] is True
        assert out["stay"]["entry"] == iso(clock.day(60))
        assert out["stay"]["authorised_until"] == iso(clock.day(32))
        assert out["stay"]["overstay_days"] == 32
        assert out["stay"]["days_used"] == 61 + 61
        stay = stay_on(client, headers, person_id, clock.today)
        assert (stay["in_territory"], stay["days_used"], stay["days_remaining"]) == (False, 122, 0)
        assert overstayers_on(client, headers, clock.today) == []

    def test_an_exit_on_a_passport_renewed_abroad_closes_the_stay(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """In on the old passport on day -30, out on a new one on day -10: the exit is
        DOCUMENT_CHANGED (not NO_ENTRY_RECORD); linked, it closes the 21-day stay."""
        first = cross_by_post(client, headers, mrz=OLD, at=clock.ago(30))
        person_id = first["person_id"]
        kiosk = changed(client, headers, clock, days_ago=10, direction="exit")
        assert overstayers_on(client, headers, clock.today) == []
        assert stay_on(client, headers, person_id, clock.today)["in_territory"] is True

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 200, response.json()
        assert response.json()["person_id"] == person_id
        assert response.json()["stay"]["entry"] == iso(clock.day(30))
        assert response.json()["stay"]["days_used"] == 21
        stay = stay_on(client, headers, person_id, clock.today)
        assert (stay["in_territory"], stay["days_used"], stay["days_remaining"]) == (False, 21, 69)
        assert recorded(client, person_id) == [("entry", "admit", None), ("exit", "refer", "admit")]

    def test_an_officer_posting_the_crossing_sees_the_candidates(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        before = counts(client)

        body = cross(client, headers["officer"], mrz=NEW, picture="obama3.jpg", at=clock.now)

        assert (body["decision"], codes(body)) == ("refer", ["DOCUMENT_CHANGED"])
        assert body["person_id"] is None
        assert [c["person_id"] for c in body["candidates"]] == [str(person_id)]
        assert body["candidates"] == identified(client, headers, "obama3.jpg")
        assert counts(client) == before | {"crossings": before["crossings"] + 1}

    def test_a_visa_national_is_judged_on_the_persons_visas(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """A new Russian passport: nobody holds it, so the kiosk cannot look up visas
        (DOCUMENT_CHANGED, not UNKNOWN_TRAVELER); at the link, the person's visas decide."""
        person_id = enroll(client, headers["consular"], "obama.jpg", traveller("RUS", "RU0000001"))
        new_rus = traveller("RUS", "RU0000002")
        kiosk = changed(client, headers, clock, mrz=new_rus)

        without_visa = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )
        assert without_visa.status_code == 409, without_visa.json()
        assert [r["code"] for r in without_visa.json()["reasons"]] == ["VISA_REQUIRED"]
        assert holders(client, headers, "RUS:RU0000002") == []

        visa_id = issue_visa(client, headers, person_id, clock)
        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 200, response.json()
        assert (response.json()["person_id"], response.json()["visa_id"]) == (
            str(person_id), str(visa_id),
        )  # fmt: skip
        assert holders(client, headers, "RUS:RU0000002") == [str(person_id)]

    def test_two_referrals_on_the_new_passport_both_join_the_person(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """In on the new passport on day -30 and out on it on day -10, both referred before
        an officer linked either: once the entry is linked the document is the person's,
        and the exit must still be linkable, or the person stays "inside" for ever."""
        person_id = stayed(client, headers, clock, 100, 80)
        entry = changed(client, headers, clock, days_ago=30)
        out = changed(client, headers, clock, days_ago=10, direction="exit")
        assert [
            c["person_id"] for c in queue(client, headers)[out["crossing_id"]]["candidates"]
        ] == [person_id]
        first = resolve(
            client, headers, entry["crossing_id"], outcome="admit", link_person_id=person_id
        )
        assert first.status_code == 200, first.json()

        second = resolve(
            client, headers, out["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert second.status_code == 200, second.json()
        assert second.json()["person_id"] == person_id
        assert documents_of(client, headers, person_id) == ["USA:US0000001", "USA:US0000002"]
        stay = stay_on(client, headers, person_id, clock.today)
        assert (stay["in_territory"], stay["days_used"], stay["days_remaining"]) == (False, 42, 48)
        assert overstayers_on(client, headers, clock.day(-80)) == []


class TestRulesFollowThePerson:
    def test_an_exhausted_allowance_is_not_shed_by_a_new_passport(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """90 days from day -179 to day -90 on the old passport: today there is no day left,
        whatever passport is shown."""
        person_id = stayed(client, headers, clock, 179, 90)
        kiosk = changed(client, headers, clock)
        # The kiosk, not knowing the person, found no stay rule broken (only DOCUMENT_CHANGED).

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 409, response.json()
        assert response.json()["error"] == "conflict"
        reasons = response.json()["reasons"]
        assert [(r["code"], r["grounds_for_refusal"]) for r in reasons] == [
            ("STAY_LIMIT_EXCEEDED", True)
        ]
        assert "90 of the 90 days" in reasons[0]["detail"]
        # Nothing changed: the referral waits, the document is nobody's.
        waiting = queue(client, headers)[kiosk["crossing_id"]]
        assert (waiting["person_id"], waiting["resolution"]) == (None, None)
        assert holders(client, headers, "USA:US0000002") == []
        assert documents_of(client, headers, person_id) == ["USA:US0000001"]
        assert recorded(client, person_id) == [("entry", "admit", None), ("exit", "admit", None)]
        assert stay_on(client, headers, person_id, clock.today)["in_territory"] is False

        # The officer decides again: a refusal on ground F, linked.
        refused = resolve(
            client, headers, kiosk["crossing_id"], outcome="refuse", grounds=["F"],
            link_person_id=person_id,
        )  # fmt: skip

        assert refused.status_code == 200, refused.json()
        assert refused.json()["person_id"] == person_id
        resolution = refused.json()["resolution"]
        assert (resolution["outcome"], resolution["grounds"]) == ("refuse", ["F"])
        assert holders(client, headers, "USA:US0000002") == [person_id]
        assert recorded(client, person_id) == [
            ("entry", "admit", None), ("exit", "admit", None), ("entry", "refer", "refuse"),
        ]  # fmt: skip
        stay = stay_on(client, headers, person_id, clock.today)
        assert (stay["in_territory"], stay["days_used"]) == (False, 90)

    def test_an_entry_ban_is_not_shed_by_a_new_passport(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        alert = client.post(
            "/v1/alerts",
            headers=headers["officer"],
            json={"kind": "person", "person_id": str(person_id), "category": "entry_ban"},
        )
        assert alert.status_code == 201, alert.json()

        kiosk = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)

        # The kiosk says no more than "see an officer"; the officer sees the face's alert.
        assert (kiosk["decision"], codes(kiosk)) == ("refer", ["DOCUMENT_CHANGED", "SEE_OFFICER"])
        assert kiosk["candidates"] is None
        officer_view = queue(client, headers)[kiosk["crossing_id"]]
        assert codes(officer_view) == ["DOCUMENT_CHANGED", "WATCHLIST_HIT"]
        assert [c["person_id"] for c in officer_view["candidates"]] == [str(person_id)]

        admitted = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert admitted.status_code == 409, admitted.json()
        reasons = admitted.json()["reasons"]
        assert [(r["code"], r["grounds_for_refusal"]) for r in reasons] == [("ENTRY_BAN", True)]
        assert holders(client, headers, "USA:US0000002") == []
        assert queue(client, headers)[kiosk["crossing_id"]]["resolution"] is None

        refused = resolve(
            client, headers, kiosk["crossing_id"], outcome="refuse", grounds=["H"],
            link_person_id=person_id,
        )  # fmt: skip

        assert refused.status_code == 200, refused.json()
        resolution = refused.json()["resolution"]
        assert (resolution["outcome"], resolution["grounds"]) == ("refuse", ["H"])
        assert resolution["protection"] is None
        assert refused.json()["person_id"] == str(person_id)
        assert holders(client, headers, "USA:US0000002") == [str(person_id)]
        # Now the new passport is theirs: the ban comes up on the document itself.
        again = cross(client, headers["officer"], mrz=NEW, picture="obama3.jpg", at=clock.now)
        assert (again["decision"], codes(again)) == ("refer", ["ENTRY_BAN"])
        assert grounds(again) == {"ENTRY_BAN": True}
        assert (again["person_id"], again["candidates"]) == (str(person_id), None)

    def test_a_new_passport_on_the_lost_and_stolen_list_is_not_linked_to_admit(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        alert = client.post(
            "/v1/alerts",
            headers=headers["officer"],
            json={
                "kind": "document",
                "issuing_state": "USA",
                "document_number": "US0000002",
                "category": "lost_stolen_document",
            },
        )
        assert alert.status_code == 201, alert.json()

        kiosk = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)

        assert (kiosk["decision"], codes(kiosk)) == ("refer", ["DOCUMENT_CHANGED", "SEE_OFFICER"])
        officer_view = queue(client, headers)[kiosk["crossing_id"]]
        assert grounds(officer_view) == {"DOCUMENT_CHANGED": False, "DOCUMENT_ALERT": True}
        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )
        assert response.status_code == 409, response.json()
        assert [(r["code"], r["grounds_for_refusal"]) for r in response.json()["reasons"]] == [
            ("DOCUMENT_ALERT", True)
        ]
        assert holders(client, headers, "USA:US0000002") == []

    def test_a_person_alert_that_is_no_ground_lets_the_link_admit(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        alert = client.post(
            "/v1/alerts",
            headers=headers["officer"],
            json={"kind": "person", "person_id": str(person_id), "category": "watch"},
        )
        assert alert.status_code == 201, alert.json()
        kiosk = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)
        assert codes(kiosk) == ["DOCUMENT_CHANGED", "SEE_OFFICER"]

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 200, response.json()
        assert response.json()["person_id"] == str(person_id)
        assert holders(client, headers, "USA:US0000002") == [str(person_id)]
        assert recorded(client, person_id) == [("entry", "refer", "admit")]

    def test_an_entry_admitted_since_the_referral_is_not_admitted_twice(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """Referred on the new passport on day -5; the next day the old passport is admitted
        in. Admitting the referral too would record two entries."""
        person_id = stayed(client, headers, clock, 20, 10)
        kiosk = changed(client, headers, clock, days_ago=5)
        later = cross_by_post(client, headers, mrz=OLD, picture="obama3.jpg", at=clock.ago(4))
        assert (later["decision"], later["reasons"], later["person_id"]) == ("admit", [], person_id)

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 409, response.json()
        assert later["crossing_id"] in response.json()["detail"]
        waiting = queue(client, headers)[kiosk["crossing_id"]]
        assert (waiting["person_id"], waiting["resolution"]) == (None, None)
        assert holders(client, headers, "USA:US0000002") == []
        assert recorded(client, person_id) == [
            ("entry", "admit", None), ("exit", "admit", None), ("entry", "admit", None),
        ]  # fmt: skip


class TestResolutionBody:
    def referral(self, client: TestClient, headers: Headers, clock: Clock) -> tuple[str, Body]:
        """The person (enrolled on the old passport) and a DOCUMENT_CHANGED referral."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        return str(person_id), changed(client, headers, clock)

    def unchanged(self, client: TestClient, headers: Headers, crossing_id: str) -> None:
        waiting = queue(client, headers)[crossing_id]
        assert (waiting["person_id"], waiting["resolution"]) == (None, None)
        assert holders(client, headers, "USA:US0000002") == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"outcome": "refuse"}, "grounds"),
            ({"outcome": "refuse", "grounds": []}, "grounds"),
            ({"outcome": "refuse", "grounds": ["Z"]}, "grounds"),
            ({"outcome": "refuse", "grounds": ["C", "K"]}, "grounds"),
            ({"outcome": "protection"}, "protection"),
            ({"outcome": "protection", "protection": ["tourism"]}, "protection"),
        ],
    )
    def test_a_resolution_without_what_its_outcome_needs_is_refused(
        self,
        client: TestClient,
        headers: Headers,
        clock: Clock,
        body: dict[str, Any],
        field: str,
    ) -> None:
        person_id, kiosk = self.referral(client, headers, clock)
        before = counts(client)

        response = resolve(client, headers, kiosk["crossing_id"], **body, link_person_id=person_id)

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == ("invalid_request", field)
        self.unchanged(client, headers, kiosk["crossing_id"])
        assert counts(client) == before

    def test_a_refusal_names_its_grounds(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, kiosk = self.referral(client, headers, clock)

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="refuse", grounds=["C", "F"]
        )

        assert response.status_code == 200, response.json()
        resolution = response.json()["resolution"]
        assert (resolution["outcome"], resolution["grounds"]) == ("refuse", ["C", "F"])
        assert (resolution["protection"], resolution["note"]) == (None, NOTE)
        # Without a link the document stays nobody's and the crossing nobody's.
        assert response.json()["person_id"] is None
        assert holders(client, headers, "USA:US0000002") == []
        assert kiosk["crossing_id"] not in queue(client, headers)

    def test_protection_hands_the_traveller_over(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, kiosk = self.referral(client, headers, clock)

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="protection",
            protection=["asylum_request"],
        )  # fmt: skip

        assert response.status_code == 200, response.json()
        resolution = response.json()["resolution"]
        assert (resolution["outcome"], resolution["protection"]) == (
            "protection",
            ["asylum_request"],
        )
        assert resolution["grounds"] is None
        assert kiosk["crossing_id"] not in queue(client, headers)

    def test_a_link_to_a_random_id_is_refused(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, kiosk = self.referral(client, headers, clock)
        before = counts(client)

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=uuid4()
        )

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == (
            "invalid_request", "link_person_id",
        )  # fmt: skip
        self.unchanged(client, headers, kiosk["crossing_id"])
        assert counts(client) == before

    def test_a_link_to_an_enrolled_person_who_is_no_candidate_is_refused(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        other = enroll(client, headers["consular"], "biden.jpg", traveller("GBR", "GB0000001"))
        _, kiosk = self.referral(client, headers, clock)
        assert str(other) not in [
            c["person_id"] for c in queue(client, headers)[kiosk["crossing_id"]]["candidates"]
        ]

        response = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=other
        )

        assert response.status_code == 422, response.json()
        assert response.json()["field"] == "link_person_id"
        self.unchanged(client, headers, kiosk["crossing_id"])
        assert documents_of(client, headers, str(other)) == ["GBR:GB0000001"]

    def test_a_link_on_a_crossing_without_candidates_is_refused(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """A referral of a known holder (an impostor's face) has no candidates to link."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        impostor = cross(client, headers["kiosk"], mrz=OLD, picture="biden.jpg", at=clock.now)
        assert codes(impostor) == ["FACE_MISMATCH"]

        response = resolve(
            client, headers, impostor["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert response.status_code == 422, response.json()
        assert response.json()["field"] == "link_person_id"
        assert recorded(client, person_id) == [("entry", "refer", None)]


class TestFirstTimer:
    def test_a_first_timer_whose_face_matches_nobody_is_enrolled(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        enrolled = enroll(client, headers["consular"], "obama.jpg", OLD)
        before = counts(client)
        newcomer = traveller("USA", "US0000777", surname="NEWCOMER")

        body = cross(client, headers["kiosk"], mrz=newcomer, picture="biden.jpg", at=clock.now)

        assert (body["decision"], body["reasons"], body["candidates"]) == ("admit", [], None)
        assert body["person_id"] is not None
        assert body["person_id"] != str(enrolled)
        assert counts(client) == {
            "crossings": before["crossings"] + 1,
            "persons": before["persons"] + 1,
            "captures": before["captures"] + 1,
            "documents": before["documents"] + 1,
        }
        assert holders(client, headers, "USA:US0000777") == [body["person_id"]]
        assert documents_of(client, headers, body["person_id"]) == ["USA:US0000777"]
        assert recorded(client, body["person_id"]) == [("entry", "admit", None)]
        # Their face now finds them, not the other person.
        assert [c["person_id"] for c in identified(client, headers, "biden.jpg")] == [
            body["person_id"]
        ]


def sealed_document_of(client: TestClient, crossing_id: str) -> tuple[bool, bool]:
    """Whether the crossing still keeps the MRZ it read, and a key of its own."""
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT document_sealed IS NOT NULL,"
            " EXISTS (SELECT 1 FROM data_keys WHERE owner_id = crossings.id)"
            " FROM crossings WHERE id = %(id)s",
            {"id": crossing_id},
        ).fetchone()
    assert row is not None
    return bool(row[0]), bool(row[1])


def audited(client: TestClient, action: str) -> list[dict[str, Any]]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT resource_id, detail FROM audit_events WHERE action = %(a)s ORDER BY seq",
            {"a": action},
        ).fetchall()
    return [{"resource_id": r[0], **r[1]} for r in rows]


class TestLinkLeavesNoTrace:
    def test_the_mrz_kept_for_the_link_goes_with_its_key_once_linked(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """Once linked, the document lives under the person's key: erasing the person
        leaves no readable copy of it in the crossing."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        kiosk = changed(client, headers, clock)
        assert sealed_document_of(client, kiosk["crossing_id"]) == (True, True)

        linked = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert linked.status_code == 200, linked.json()
        assert sealed_document_of(client, kiosk["crossing_id"]) == (False, False)
        created = audited(client, "documents.create")
        assert [(e["resource_id"], e["via"], e["crossing_id"]) for e in created] == [
            (str(person_id), "link", kiosk["crossing_id"])
        ]
        assert created[0]["document_id"]

    def test_a_refused_link_is_on_the_record_with_the_person_read(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        ban = {"kind": "person", "person_id": str(person_id), "category": "entry_ban"}
        assert client.post("/v1/alerts", headers=headers["officer"], json=ban).status_code == 201
        kiosk = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)

        refused = resolve(
            client, headers, kiosk["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert refused.status_code == 409
        assert audited(client, "crossings.link_refused") == [
            {"resource_id": kiosk["crossing_id"], "person_id": str(person_id),
             "codes": ["ENTRY_BAN"]}
        ]  # fmt: skip
        assert sealed_document_of(client, kiosk["crossing_id"]) == (True, True)


class TestAlertsOnAnotherDocument:
    def test_an_entry_ban_on_the_old_passport_follows_the_person(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        added = client.post(
            f"/v1/persons/{person_id}/documents", headers=headers["consular"], data={"mrz": NEW}
        )
        assert added.status_code == 201, added.json()
        ban = {"kind": "document", "issuing_state": "USA", "document_number": "US0000001",
               "category": "entry_ban"}  # fmt: skip
        assert client.post("/v1/alerts", headers=headers["officer"], json=ban).status_code == 201

        body = cross(client, headers["officer"], mrz=NEW, picture="obama2.jpg", at=clock.now)

        assert (body["decision"], codes(body)) == ("refer", ["ENTRY_BAN"])
        assert "traveller" in body["reasons"][0]["detail"]

    def test_a_lost_old_passport_does_not_flag_the_new_one(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        added = client.post(
            f"/v1/persons/{person_id}/documents", headers=headers["consular"], data={"mrz": NEW}
        )
        assert added.status_code == 201, added.json()
        lost = {"kind": "document", "issuing_state": "USA", "document_number": "US0000001",
                "category": "lost_stolen_document"}  # fmt: skip
        assert client.post("/v1/alerts", headers=headers["officer"], json=lost).status_code == 201

        with_new = cross(client, headers["officer"], mrz=NEW, picture="obama2.jpg", at=clock.now)
        with_old = cross(client, headers["officer"], mrz=OLD, picture="obama3.jpg", at=clock.now)

        assert (with_new["decision"], with_new["reasons"]) == ("admit", [])
        assert codes(with_old)[:1] == ["DOCUMENT_ALERT"]


class TestEarlierCrossingsOnTheDocument:
    def test_an_entry_admitted_before_anyone_held_the_document_counts_after_the_link(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """An entry on the new passport without a usable face enrolled nobody and an
        officer admitted it; the exit's link attaches it, so the stay is counted."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        entry = cross_by_post(client, headers, mrz=NEW, image=grey_jpeg(), at=clock.ago(20))
        assert (entry["person_id"], codes(entry)) == (None, ["FACE_NOT_DETECTED"])
        assert resolve(client, headers, entry["crossing_id"], outcome="admit").status_code == 200
        leaving = changed(client, headers, clock, days_ago=5, direction="exit")

        linked = resolve(
            client, headers, leaving["crossing_id"], outcome="admit", link_person_id=person_id
        )

        assert linked.status_code == 200, linked.json()
        # Judged with the entry it closes: no NO_ENTRY_RECORD, a 16-day stay.
        assert linked.json()["resolution"]["linked_reasons"] == []
        assert recorded(client, person_id) == [
            ("entry", "refer", "admit"),
            ("exit", "refer", "admit"),
        ]
        stay = stay_on(client, headers, str(person_id), clock.today)
        assert (stay["days_used"], stay["in_territory"]) == (16, False)
