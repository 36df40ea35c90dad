"""A person's enrolled photos for the staff who may see them (DESIGN §11): consular staff
and officers, every view audited, nothing once the person is erased."""

from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from core.auth import Principal
from core.errors import Forbidden, NotFound
from enrollment import service
from tests.conftest import KIOSK_BORDER_POINT, runtime_of
from tests.factories import enroll, photo, td3

Headers = dict[str, dict[str, str]]


def staff(role: str) -> Principal:
    border_point = KIOSK_BORDER_POINT if role == "kiosk" else None
    return Principal(client_id=uuid4(), role=role, border_point=border_point, purpose="case 9")


CONSULAR = staff("consular")


def photo_reads(client: TestClient) -> list[dict[str, Any]]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor, role, purpose, resource_type, resource_id, detail FROM audit_events"
            " WHERE action = 'captures.image.read' ORDER BY seq"
        ).fetchall()
    return [
        {"actor": r[0], "role": r[1], "purpose": r[2], "resource": (r[3], r[4]), **r[5]}
        for r in rows
    ]


def add_capture(client: TestClient, headers: Headers, person_id: UUID, picture: str) -> UUID:
    response = client.post(
        f"/v1/persons/{person_id}/captures",
        headers=headers["officer"],
        files={"image": ("c.jpg", photo(picture), "image/jpeg")},
    )
    assert response.status_code == 201, response.json()
    return UUID(response.json()["capture_id"])


def capture_ids(client: TestClient, headers: Headers, person_id: UUID) -> list[UUID]:
    """The capture ids GET /v1/persons/{id} lists, oldest first."""
    response = client.get(f"/v1/persons/{person_id}", headers=headers["consular"])
    assert response.status_code == 200, response.json()
    return [UUID(c["capture_id"]) for c in response.json()["captures"]]


class TestCaptureImage:
    def test_the_most_recent_photo_is_the_one_enrolled_last(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg")
        first = capture_ids(client, headers, person_id)[0]
        second = add_capture(client, headers, person_id, "obama2.jpg")
        rt = runtime_of(client)

        assert service.capture_image(rt, CONSULAR, person_id) == (second, photo("obama2.jpg"))
        assert service.capture_image(rt, CONSULAR, person_id, first) == (
            first,
            photo("obama.jpg"),
        )
        assert capture_ids(client, headers, person_id) == [first, second]

    @pytest.mark.parametrize("role", ["consular", "officer"])
    def test_every_view_is_audited(self, client: TestClient, headers: Headers, role: str) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg")
        (capture_id,) = capture_ids(client, headers, person_id)
        reader = staff(role)

        service.capture_image(runtime_of(client), reader, person_id)

        assert photo_reads(client) == [
            {
                "actor": str(reader.client_id),
                "role": role,
                "purpose": "case 9",
                "resource": ("person", str(person_id)),
                "capture_id": str(capture_id),
            }
        ]

    @pytest.mark.parametrize("role", ["kiosk", "auditor", "admin"])
    def test_other_roles_are_refused(self, client: TestClient, headers: Headers, role: str) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg")

        with pytest.raises(Forbidden):
            service.capture_image(runtime_of(client), staff(role), person_id)

        assert photo_reads(client) == []

    def test_unknown_persons_and_captures_are_not_found(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg")
        other = enroll(client, headers["consular"], "biden.jpg", td3(number="X12345678"))
        (others_capture,) = capture_ids(client, headers, other)
        rt = runtime_of(client)

        with pytest.raises(NotFound):
            service.capture_image(rt, CONSULAR, uuid4())
        with pytest.raises(NotFound):
            service.capture_image(rt, CONSULAR, person_id, uuid4())
        # A capture id opens only its own person's photo.
        with pytest.raises(NotFound):
            service.capture_image(rt, CONSULAR, person_id, others_capture)
        assert photo_reads(client) == []

    def test_an_erased_persons_photos_are_not_found(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg")
        (capture_id,) = capture_ids(client, headers, person_id)

        response = client.delete(f"/v1/persons/{person_id}", headers=headers["admin"])
        assert response.status_code == 204

        rt = runtime_of(client)
        for asked in (None, capture_id):
            with pytest.raises(NotFound) as refused:
                service.capture_image(rt, CONSULAR, person_id, asked)
            assert (refused.value.code, refused.value.status) == ("not_found", 404)
        assert photo_reads(client) == []
