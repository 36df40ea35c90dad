"""The passport chip at enrollment (DESIGN §16): checked before anything is written; a
chip that passed may give its photo as a capture marked as from the chip."""

from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from core import auth
from core.auth import Principal
from enrollment import service
from tests.conftest import FACES, runtime_of
from tests.factories import photo, td3
from tests.visa import chip_factory as f
from visa import pki

Headers = dict[str, dict[str, str]]
GERMAN = td3(
    surname="MUSTERMANN", given_names="ERIKA", number="C01X00T47", issuing_state="D",
    nationality="D",
)  # fmt: skip


@pytest.fixture(scope="module")
def ca() -> f.Authority:
    return f.csca("DE", name="CSCA DE")


@pytest.fixture(scope="module")
def ds(ca: f.Authority) -> f.Authority:
    return f.signer(ca)


@pytest.fixture
def trusted(client: TestClient, ca: f.Authority) -> f.Authority:
    pki.import_file(runtime_of(client), auth.command_line("test setup"), ca.pem)
    return ca


def enroll(
    client: TestClient,
    headers: dict[str, str],
    chip: f.Chip | None,
    *,
    picture: str = "obama.jpg",
    store_chip_face: bool = False,
) -> Response:
    files: dict[str, Any] = {"image": ("live.jpg", photo(picture), "image/jpeg")}
    if chip is not None:
        files |= chip.files()
    data = {"mrz": GERMAN} | ({"store_chip_face": "true"} if store_chip_face else {})
    response: Response = client.post("/v1/persons", headers=headers, files=files, data=data)
    return response


def persons(client: TestClient) -> int:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM persons").fetchone()
    assert row is not None
    return int(row[0])


class TestChipAtEnrollment:
    def test_a_chip_that_passed_gives_its_photo_as_a_chip_capture(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        response = enroll(client, headers["consular"], chip, store_chip_face=True)
        assert response.status_code == 201, response.json()
        body = response.json()
        assert body["chip"]["passive_authentication"] == "passed"
        assert body["chip"]["face_distance"] < 0.4
        assert body["chip_capture_id"] is not None
        person = client.get(f"/v1/persons/{body['person_id']}", headers=headers["consular"]).json()
        sources = {c["capture_id"]: c["source"] for c in person["captures"]}
        assert sources == {body["capture_id"]: "live", body["chip_capture_id"]: "chip"}
        # The JPEG 2000 photo is kept as a JPEG, like every capture.
        rt = runtime_of(client)
        consular = Principal(client_id=None, role="consular", border_point=None, purpose="test")
        _, image = service.capture_image(
            rt, consular, UUID(body["person_id"]), UUID(body["chip_capture_id"])
        )
        assert image.startswith(b"\xff\xd8\xff")

    def test_without_store_chip_face_only_the_live_capture_is_kept(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg", fmt="jpeg")
        response = enroll(client, headers["officer"], chip)
        assert response.status_code == 201, response.json()
        assert response.json()["chip_capture_id"] is None

    def test_a_forged_chip_refuses_the_enrollment(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        genuine = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        forged = f.Chip(genuine.dg1, f.dg2(f.face_image(FACES / "biden.jpg")), genuine.sod)
        response = enroll(client, headers["consular"], forged)
        assert response.status_code == 422
        assert response.json()["error"] == "chip_invalid"
        assert response.json()["failed_check"] == "dg2_hash"
        assert persons(client) == 0

    def test_a_chip_photo_of_someone_else_refuses_the_enrollment(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "biden.jpg")
        response = enroll(client, headers["consular"], chip)
        assert response.status_code == 422
        assert response.json()["error"] == "face_mismatch"
        assert persons(client) == 0

    def test_a_chip_no_csca_vouches_for_enrolls_but_gives_no_capture(
        self, client: TestClient, headers: Headers, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        refused = enroll(client, headers["consular"], chip, store_chip_face=True)
        assert refused.status_code == 422
        assert refused.json()["field"] == "store_chip_face"
        response = enroll(client, headers["consular"], chip)
        assert response.status_code == 201
        assert response.json()["chip"]["passive_authentication"] == "no_trust_anchor"

    def test_store_chip_face_needs_the_chip(self, client: TestClient, headers: Headers) -> None:
        response = enroll(client, headers["consular"], None, store_chip_face=True)
        assert response.status_code == 422
        assert response.json()["field"] == "store_chip_face"
