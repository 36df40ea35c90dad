"""The passport chip at a crossing (DESIGN §16): the kiosk posts EF.DG1, EF.DG2 and EF.SOD
beside the live capture; passive authentication against the imported CSCAs, the chip's
face 1:1 with the live one, and every chip fault decided as the traveller's outcome
(201, CHIP_INVALID naming the check), never a refused post or a 500. Real PKI, real face
model, real photos, the embedded PostgreSQL."""

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr

from core import auth
from core.settings import Settings
from tests.border.crossing_helpers import AIRPORT, KIOSK_KEYS, codes
from tests.conftest import FACES, runtime_of
from tests.factories import photo, td3
from tests.visa import chip_factory as f
from visa import pki

Headers = dict[str, dict[str, str]]
ROOT = Path(__file__).resolve().parents[2]
GERMAN = td3(
    surname="MUSTERMANN", given_names="ERIKA", number="C01X00T47", issuing_state="D",
    nationality="D", birth_date=None, expiry_date=f.NOW.date().replace(year=f.NOW.year + 5),
)  # fmt: skip
OTHER_GERMAN = td3(
    surname="MUSTERMANN", given_names="MAX", number="C01X00T55", issuing_state="D",
    nationality="D", expiry_date=f.NOW.date().replace(year=f.NOW.year + 5),
)  # fmt: skip


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """The default policy, with Germans required to present their chip."""
    text = (ROOT / "visa" / "default_policy.toml").read_text()
    text, found = re.subn(r"(?m)^chip_required = \[\]$", 'chip_required = ["D"]', text)
    assert found == 1
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture
def settings(tmp_path: Path, app_database_url: str, policy_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=SecretStr(app_database_url),
        pool_min_size=1,
        policy_file=policy_file,
    )


@pytest.fixture(scope="module")
def ca() -> f.Authority:
    return f.csca("DE", name="CSCA DE")


@pytest.fixture(scope="module")
def ds(ca: f.Authority) -> f.Authority:
    return f.signer(ca)


@pytest.fixture
def trusted(client: TestClient, ca: f.Authority) -> f.Authority:
    """The German CSCA imported into the trust store."""
    pki.import_file(runtime_of(client), auth.command_line("test setup"), ca.pem)
    return ca


def post(
    client: TestClient,
    headers: dict[str, str],
    chip: f.Chip | dict[str, bytes] | None,
    *,
    mrz: str = GERMAN,
    picture: str = "obama.jpg",
) -> Response:
    files: dict[str, Any] = {"image": ("live.jpg", photo(picture), "image/jpeg")}
    if isinstance(chip, f.Chip):
        files |= chip.files()
    elif chip is not None:
        files |= {k: (k, v, "application/octet-stream") for k, v in chip.items()}
    response: Response = client.post(
        "/v1/crossings",
        headers=headers,
        files=files,
        data={"mrz": mrz, "direction": "entry", "border_point": AIRPORT},
    )
    return response


def crossed(
    client: TestClient, headers: Headers, chip: f.Chip | dict[str, bytes] | None, **kw: Any
) -> dict[str, Any]:
    response = post(client, headers["officer"], chip, **kw)
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def chip_reason(body: dict[str, Any], code: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in body["reasons"] if r["code"] == code]
    assert found, body["reasons"]
    assert found[0]["grounds_for_refusal"] is False
    return found[0]


class TestGenuineChips:
    def test_a_genuine_chip_with_a_jpeg2000_face_is_admitted(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        body = crossed(client, headers, chip)
        assert body["decision"] == "admit", body["reasons"]
        assert body["chip"]["passive_authentication"] == "passed"
        assert body["chip"]["failed_check"] is None
        assert body["chip"]["face_distance"] < 0.4
        # Stored with the crossing: what the officer reads later is what was decided.
        listed = client.get(
            "/v1/crossings", params={"person_id": body["person_id"]}, headers=headers["officer"]
        ).json()
        assert listed[0]["chip"] == body["chip"]
        with runtime_of(client).pool.connection() as conn:
            row = conn.execute(
                "SELECT figures->'chip' FROM crossings WHERE id = %s", (body["crossing_id"],)
            ).fetchone()
        assert row is not None
        assert row[0]["signer"] == "CN=Document Signer,C=DE"
        assert row[0]["face_threshold"] == runtime_of(client).settings.verify_threshold

    def test_an_rsa_signed_chip_with_a_jpeg_face_is_admitted(
        self, client: TestClient, headers: Headers, env_rsa: tuple[f.Authority, f.Authority]
    ) -> None:
        _, rsa_ds = env_rsa
        chip = f.passport_chip(rsa_ds, GERMAN, FACES / "obama3.jpg", fmt="jpeg")
        body = crossed(client, headers, chip)
        assert body["chip"]["passive_authentication"] == "passed", body["reasons"]
        assert body["decision"] == "admit"

    def test_a_kiosk_learns_the_decision_and_reasons_only(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, FACES / "biden.jpg")
        response = post(client, headers["kiosk"], chip)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == KIOSK_KEYS
        assert "CHIP_FACE_MISMATCH" in codes(body)

    def test_a_signer_no_csca_vouches_for_is_csca_unknown(
        self, client: TestClient, headers: Headers, ds: f.Authority
    ) -> None:
        body = crossed(client, headers, f.passport_chip(ds, GERMAN, FACES / "obama2.jpg"))
        assert body["decision"] == "refer"
        assert body["chip"]["passive_authentication"] == "no_trust_anchor"
        chip_reason(body, "CSCA_UNKNOWN")
        assert "CHIP_INVALID" not in codes(body)


class TestForgedChips:
    def test_a_tampered_photo_is_chip_invalid_naming_the_hash(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        genuine = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        swapped = f.Chip(genuine.dg1, f.dg2(f.face_image(FACES / "obama.jpg")), genuine.sod)
        body = crossed(client, headers, swapped)
        assert body["decision"] == "refer"
        assert body["chip"] == {
            "passive_authentication": "failed",
            "failed_check": "dg2_hash",
            "face_distance": None,
        }
        assert "dg2_hash" in chip_reason(body, "CHIP_INVALID")["detail"]

    def test_a_chip_of_another_document_is_chip_invalid(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        body = crossed(client, headers, f.passport_chip(ds, OTHER_GERMAN, None))
        assert body["chip"]["failed_check"] == "dg1_mrz"
        assert "dg1_mrz" in chip_reason(body, "CHIP_INVALID")["detail"]

    def test_a_rogue_signer_is_chip_invalid(
        self, client: TestClient, headers: Headers, trusted: f.Authority
    ) -> None:
        rogue = f.signer(trusted, sign_with=f.ec_key())
        body = crossed(client, headers, f.passport_chip(rogue, GERMAN, None))
        assert body["chip"]["failed_check"] == "chain"

    def test_a_signer_revoked_by_an_imported_crl_is_chip_invalid(
        self, client: TestClient, headers: Headers, trusted: f.Authority
    ) -> None:
        revoked = f.signer(trusted, name="Revoked Signer")
        crl = f.crl(trusted, [revoked.cert]).public_bytes(serialization.Encoding.DER)
        pki.import_file(runtime_of(client), auth.command_line("test setup"), crl)
        body = crossed(client, headers, f.passport_chip(revoked, GERMAN, None))
        assert body["chip"]["failed_check"] == "revocation"

    def test_an_expired_signer_is_chip_invalid(
        self, client: TestClient, headers: Headers, trusted: f.Authority
    ) -> None:
        expired = f.signer(
            trusted, not_before=f.NOW - timedelta(days=900), not_after=f.NOW - timedelta(days=2)
        )
        body = crossed(client, headers, f.passport_chip(expired, GERMAN, None))
        assert body["chip"]["failed_check"] == "certificate_validity"

    def test_a_chip_face_of_someone_else_is_chip_face_mismatch(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        body = crossed(client, headers, f.passport_chip(ds, GERMAN, FACES / "biden.jpg"))
        assert body["chip"]["passive_authentication"] == "passed"
        assert body["chip"]["face_distance"] > 0.6
        chip_reason(body, "CHIP_FACE_MISMATCH")


class TestBadChipFiles:
    """Each is decided (201) with CHIP_INVALID naming the failed check."""

    @pytest.mark.parametrize(
        ("parts", "check"),
        [
            ("garbage_sod", "sod_format"),
            ("truncated_sod", "sod_format"),
            ("truncated_dg2", "dg2_hash"),
            ("oversized_dg2", "part_size"),
            ("no_sod", "missing_part"),
            ("empty_parts", "missing_part"),
            ("unknown_hash", "hash_algorithm"),
            ("faceless_dg2", "dg2_format"),
            ("dg2_not_a_face", "dg2_face"),
        ],
    )
    def test_a_bad_chip_file_is_the_travellers_outcome(
        self,
        client: TestClient,
        headers: Headers,
        trusted: f.Authority,
        ds: f.Authority,
        parts: str,
        check: str,
    ) -> None:
        genuine = f.passport_chip(ds, GERMAN, FACES / "obama2.jpg")
        assert genuine.dg2 is not None
        one = f.dg1(GERMAN)
        faceless = f.dg2(None)
        grey = f.dg2(grey_jp2())
        chips: dict[str, dict[str, bytes]] = {
            "garbage_sod": {"dg1": genuine.dg1, "sod": b"\x77\x03abc"},
            "truncated_sod": {"dg1": genuine.dg1, "sod": genuine.sod[: len(genuine.sod) // 2]},
            "truncated_dg2": {
                "dg1": genuine.dg1, "dg2": genuine.dg2[:-100], "sod": genuine.sod,
            },
            "oversized_dg2": {
                "dg1": genuine.dg1, "dg2": genuine.dg2 + bytes(300_000), "sod": genuine.sod,
            },
            "no_sod": {"dg1": genuine.dg1, "dg2": genuine.dg2},
            "empty_parts": {"dg2": b""},
            "unknown_hash": {"dg1": one, "sod": f.sod(ds, {1: one}, hash_oid="1.2.3.4")},
            "faceless_dg2": {"dg1": one, "dg2": faceless, "sod": f.sod(ds, {1: one, 2: faceless})},
            "dg2_not_a_face": {"dg1": one, "dg2": grey, "sod": f.sod(ds, {1: one, 2: grey})},
        }  # fmt: skip
        body = crossed(client, headers, chips[parts])
        assert body["decision"] == "refer"
        assert body["chip"]["failed_check"] == check
        detail = chip_reason(body, "CHIP_INVALID")["detail"]
        assert check in detail
        assert "abc" not in detail

    def test_with_an_unreadable_mrz_the_chip_is_not_checked(
        self, client: TestClient, headers: Headers, trusted: f.Authority, ds: f.Authority
    ) -> None:
        chip = f.passport_chip(ds, GERMAN, None)
        broken = GERMAN[:-1] + ("0" if GERMAN[-1] != "0" else "1")
        body = crossed(client, headers, chip, mrz=broken)
        assert "MRZ_INVALID" in codes(body)
        assert body["chip"] is None


class TestChipRequired:
    def test_a_required_chip_not_presented_is_referred(
        self, client: TestClient, headers: Headers
    ) -> None:
        body = crossed(client, headers, None)
        assert body["decision"] == "refer"
        chip_reason(body, "CHIP_NOT_PRESENTED")
        assert body["chip"] is None

    def test_other_nationalities_without_a_chip_are_decided_as_before(
        self, client: TestClient, headers: Headers
    ) -> None:
        american = td3(issuing_state="USA", nationality="USA", number="US1234567")
        body = crossed(client, headers, None, mrz=american)
        assert body["decision"] == "admit", body["reasons"]
        assert body["chip"] is None


@pytest.fixture
def env_rsa(client: TestClient) -> tuple[f.Authority, f.Authority]:
    """An RSA CSCA (imported) and its RSA document signer."""
    rsa_ca = f.csca("DE", key=f.rsa_key(), name="CSCA DE RSA")
    pki.import_file(runtime_of(client), auth.command_line("test setup"), rsa_ca.der)
    return rsa_ca, f.signer(rsa_ca, key=f.rsa_key())


def grey_jp2() -> bytes:
    """A JPEG 2000 image with no face in it."""
    ok, data = cv2.imencode(".jp2", np.full((320, 240, 3), 128, dtype=np.uint8))
    assert ok
    return np.asarray(data).tobytes()
