"""The live capture a referred crossing keeps for the officer (DESIGN §11): sealed with the
traveller's key or the crossing's own, read by officers only and audited, moved to the
person's key at a link, and gone for good (a clean 404) once the person is erased.

Real face model, real photos: obama*.jpg are one person, biden.jpg another."""

from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from border import crossings
from core.auth import Principal
from core.errors import Forbidden, NoLongerHeld, NotFound
from tests.border.crossing_helpers import (
    Clock,
    Headers,
    codes,
    cross,
    cross_by_post,
    grey_jpeg,
    traveller,
)
from tests.conftest import KIOSK_BORDER_POINT, runtime_of
from tests.factories import enroll, photo

OLD = traveller("USA", "US0000001")
NEW = traveller("USA", "US0000002")
NOTE = "Compared the live face with the enrolled photo"


def staff(role: str) -> Principal:
    border_point = KIOSK_BORDER_POINT if role == "kiosk" else None
    return Principal(client_id=uuid4(), role=role, border_point=border_point, purpose="case 7")


OFFICER = staff("officer")


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def sealed_column(client: TestClient, crossing_id: str) -> bytes | None:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT live_image_sealed FROM crossings WHERE id = %(id)s", {"id": UUID(crossing_id)}
        ).fetchone()
    assert row is not None
    return None if row[0] is None else bytes(row[0])


def has_own_key(client: TestClient, crossing_id: str) -> bool:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM data_keys WHERE owner_id = %(id)s", {"id": UUID(crossing_id)}
        ).fetchone()
    assert row is not None
    return bool(row[0])


def image_reads(client: TestClient) -> list[dict[str, Any]]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor, role, purpose, resource_type, resource_id, detail FROM audit_events"
            " WHERE action = 'crossings.image.read' ORDER BY seq"
        ).fetchall()
    return [
        {"actor": r[0], "role": r[1], "purpose": r[2], "resource": (r[3], r[4]), **r[5]}
        for r in rows
    ]


def resolve(client: TestClient, headers: Headers, crossing_id: str, **body: Any) -> Any:
    payload = {"note": NOTE} | {k: str(v) if isinstance(v, UUID) else v for k, v in body.items()}
    response = client.post(
        f"/v1/crossings/{crossing_id}/resolution", headers=headers["officer"], json=payload
    )
    assert response.status_code == 200, response.json()
    return response.json()


def erase(client: TestClient, headers: Headers, person_id: UUID | str) -> None:
    response = client.delete(f"/v1/persons/{person_id}", headers=headers["admin"])
    assert response.status_code == 204, response.text


def mismatch(client: TestClient, headers: Headers, clock: Clock) -> tuple[UUID, dict[str, Any]]:
    """The holder enrolled on OLD, and a kiosk crossing on OLD with someone else's face:
    referred FACE_MISMATCH, tied to the holder."""
    person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
    body = cross(client, headers["kiosk"], mrz=OLD, picture="biden.jpg", at=clock.now)
    assert (body["decision"], codes(body)) == ("refer", ["FACE_MISMATCH"])
    return person_id, body


class TestKept:
    def test_a_referral_keeps_its_live_capture_sealed_under_the_travellers_key(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, body = mismatch(client, headers, clock)
        posted = photo("biden.jpg")

        stored = sealed_column(client, body["crossing_id"])

        assert stored is not None
        assert len(stored) == len(posted) + 12 + 16  # the nonce and the GCM tag
        for start in range(0, len(posted) - 32, 4096):
            assert posted[start : start + 32] not in stored
        # Sealed under the person's key: the crossing has none of its own.
        assert not has_own_key(client, body["crossing_id"])

    def test_the_officer_reads_back_the_exact_bytes_posted(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, body = mismatch(client, headers, clock)

        image = crossings.live_image(runtime_of(client), OFFICER, UUID(body["crossing_id"]))

        assert image == photo("biden.jpg")

    def test_a_referral_tied_to_nobody_keeps_it_under_a_key_of_its_own(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """A first sight without a usable face enrolls nobody: the camera's picture is the
        officer's only view of the traveller."""
        blank = grey_jpeg()
        body = cross(client, headers["kiosk"], mrz=OLD, image=blank, at=clock.now)
        assert (body["decision"], body["person_id"]) == ("refer", None)

        image = crossings.live_image(runtime_of(client), OFFICER, UUID(body["crossing_id"]))

        assert image == blank
        assert has_own_key(client, body["crossing_id"])

    def test_an_admitted_crossing_keeps_no_image(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        first = cross(client, headers["kiosk"], mrz=OLD, picture="obama.jpg", at=clock.now)
        assert (first["decision"], first["reasons"]) == ("admit", [])

        assert sealed_column(client, first["crossing_id"]) is None
        with pytest.raises(NotFound):
            crossings.live_image(runtime_of(client), OFFICER, UUID(first["crossing_id"]))

    def test_an_unknown_crossing_is_not_found(self, client: TestClient) -> None:
        with pytest.raises(NotFound):
            crossings.live_image(runtime_of(client), OFFICER, uuid4())

    def test_a_resolved_referral_keeps_its_image(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        _, body = mismatch(client, headers, clock)

        resolve(client, headers, body["crossing_id"], outcome="refuse", grounds=["B"])

        image = crossings.live_image(runtime_of(client), OFFICER, UUID(body["crossing_id"]))
        assert image == photo("biden.jpg")


class TestWhoSeesIt:
    @pytest.mark.parametrize("role", ["kiosk", "consular", "auditor", "admin"])
    def test_only_an_officer_reads_the_live_capture(
        self, client: TestClient, headers: Headers, clock: Clock, role: str
    ) -> None:
        _, body = mismatch(client, headers, clock)

        with pytest.raises(Forbidden):
            crossings.live_image(runtime_of(client), staff(role), UUID(body["crossing_id"]))

        assert image_reads(client) == []

    def test_every_view_is_audited(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id, body = mismatch(client, headers, clock)
        rt = runtime_of(client)

        crossings.live_image(rt, OFFICER, UUID(body["crossing_id"]))
        crossings.live_image(rt, OFFICER, UUID(body["crossing_id"]))

        view = {
            "actor": str(OFFICER.client_id),
            "role": "officer",
            "purpose": "case 7",
            "resource": ("crossing", body["crossing_id"]),
            "person_id": str(person_id),
        }
        assert image_reads(client) == [view, view]


class TestLink:
    def test_a_linked_document_change_moves_the_image_to_the_persons_key(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        body = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)
        assert codes(body) == ["DOCUMENT_CHANGED"]
        crossing_id = UUID(body["crossing_id"])
        rt = runtime_of(client)
        assert has_own_key(client, body["crossing_id"])
        before = sealed_column(client, body["crossing_id"])

        resolve(client, headers, body["crossing_id"], outcome="admit", link_person_id=person_id)

        # The crossing's key is shredded, the image re-sealed: still the officer's to see.
        assert not has_own_key(client, body["crossing_id"])
        assert sealed_column(client, body["crossing_id"]) != before
        assert crossings.live_image(rt, OFFICER, crossing_id) == photo("obama2.jpg")
        assert image_reads(client)[-1]["person_id"] == str(person_id)
        # ...and erased with the person.
        erase(client, headers, person_id)
        with pytest.raises(NoLongerHeld):
            crossings.live_image(rt, OFFICER, crossing_id)

    def test_a_document_change_refused_without_a_link_keeps_its_own_key(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """Nothing shreds the crossing's key but a link, and a resolved referral is never
        linked: the image stays readable, whatever happens to the candidate."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        body = cross(client, headers["kiosk"], mrz=NEW, picture="obama2.jpg", at=clock.now)
        assert codes(body) == ["DOCUMENT_CHANGED"]

        resolve(client, headers, body["crossing_id"], outcome="refuse", grounds=["B"])
        erase(client, headers, person_id)

        assert has_own_key(client, body["crossing_id"])
        image = crossings.live_image(runtime_of(client), OFFICER, UUID(body["crossing_id"]))
        assert image == photo("obama2.jpg")

    def test_a_referral_admitted_before_the_link_moves_to_the_person_too(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """An entry on the new passport without a usable face, admitted by an officer (its
        note and image under its own key), is attached to the person by a later link:
        its note and image move to the person's key and its own key goes."""
        person_id = enroll(client, headers["consular"], "obama.jpg", OLD)
        blank = grey_jpeg()
        entry = cross_by_post(client, headers, mrz=NEW, image=blank, at=clock.ago(20))
        assert (entry["person_id"], codes(entry)) == (None, ["FACE_NOT_DETECTED"])
        resolve(client, headers, entry["crossing_id"], outcome="admit")
        leaving = cross_by_post(
            client, headers, mrz=NEW, picture="obama2.jpg", direction="exit", at=clock.ago(5)
        )
        assert codes(leaving) == ["DOCUMENT_CHANGED"]

        resolve(client, headers, leaving["crossing_id"], outcome="admit", link_person_id=person_id)

        rt = runtime_of(client)
        assert not has_own_key(client, entry["crossing_id"])
        assert crossings.live_image(rt, OFFICER, UUID(entry["crossing_id"])) == blank
        listed = client.get(
            "/v1/crossings", headers=headers["officer"], params={"person_id": str(person_id)}
        )
        assert listed.status_code == 200, listed.json()
        assert [c["resolution"]["note"] for c in listed.json()] == [NOTE, NOTE]
        erase(client, headers, person_id)
        with pytest.raises(NoLongerHeld):
            crossings.live_image(rt, OFFICER, UUID(entry["crossing_id"]))


class TestErasure:
    def test_an_erased_travellers_capture_is_no_longer_held(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id, body = mismatch(client, headers, clock)

        erase(client, headers, person_id)

        with pytest.raises(NotFound) as refused:
            crossings.live_image(runtime_of(client), OFFICER, UUID(body["crossing_id"]))
        assert (refused.value.code, refused.value.status) == ("not_found", 404)
        assert "no longer held" in refused.value.detail
        assert image_reads(client) == []
