"""Passive authentication, pure (visa/chip.py): a PKI built here (CSCA → document signer →
EF.SOD) with ECDSA and RSA, and every way a chip can fail, each naming its check."""

from datetime import UTC, datetime, timedelta
from typing import get_args

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FACES
from tests.factories import td3
from tests.visa import chip_factory as f
from visa import chip, countries

NOW = datetime.now(UTC)
MRZ = td3(issuing_state="D", nationality="D", number="C01X00T47")
PHOTO = FACES / "obama.jpg"


def trust(
    *anchors: f.Authority, country: str = "D", revoked: dict[bytes, frozenset[int]] | None = None
) -> chip.TrustStore:
    return chip.TrustStore([chip.Anchor(a.cert, country) for a in anchors], revoked or {})


def check(
    store: chip.TrustStore,
    files: f.Chip,
    *,
    mrz: str = MRZ,
    state: str = "D",
    at: datetime = NOW,
) -> chip.Verdict:
    return chip.authenticate(
        store, sod=files.sod, dg1=files.dg1, dg2=files.dg2, mrz=mrz, issuing_state=state, at=at
    )


def failed(store: chip.TrustStore, files: f.Chip, **kwargs: object) -> str:
    with pytest.raises(chip.ChipError) as caught:
        check(store, files, **kwargs)  # type: ignore[arg-type]
    return caught.value.check


@pytest.fixture(scope="module")
def ca() -> f.Authority:
    return f.csca("DE")


@pytest.fixture(scope="module")
def ds(ca: f.Authority) -> f.Authority:
    return f.signer(ca)


@pytest.fixture(scope="module")
def genuine(ds: f.Authority) -> f.Chip:
    return f.passport_chip(ds, MRZ, PHOTO)


class TestGenuineChips:
    def test_an_ecdsa_signed_chip_with_a_jpeg2000_face_passes(
        self, ca: f.Authority, genuine: f.Chip
    ) -> None:
        verdict = check(trust(ca), genuine)
        assert verdict.status == "passed"
        assert verdict.face is not None
        assert verdict.face.format == "jpeg2000"
        image = cv2.imdecode(np.frombuffer(verdict.face.image, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        assert image.shape[1] == 360

    def test_an_rsa_signed_chip_with_a_jpeg_face_passes(self) -> None:
        rsa_ca = f.csca("DE", key=f.rsa_key())
        files = f.passport_chip(f.signer(rsa_ca, key=f.rsa_key()), MRZ, PHOTO, fmt="jpeg")
        verdict = check(trust(rsa_ca), files)
        assert verdict.status == "passed"
        assert verdict.face is not None
        assert verdict.face.format == "jpeg"
        assert verdict.face.image.startswith(b"\xff\xd8\xff")

    def test_a_chip_without_dg2_passes_on_dg1(self, ca: f.Authority, ds: f.Authority) -> None:
        verdict = check(trust(ca), f.passport_chip(ds, MRZ, None))
        assert verdict.status == "passed"
        assert verdict.face is None

    def test_a_signer_no_anchor_vouches_for_is_no_trust_anchor(self, genuine: f.Chip) -> None:
        other = f.csca("DE", name="Another CSCA")
        assert check(trust(other), genuine).status == "no_trust_anchor"
        assert check(trust(), genuine).status == "no_trust_anchor"

    def test_the_mrz_may_come_with_windows_line_ends(
        self, ca: f.Authority, genuine: f.Chip
    ) -> None:
        assert check(trust(ca), genuine, mrz=MRZ.replace("\n", "\r\n") + "\n").status == "passed"


class TestForgedChips:
    def test_a_tampered_dg1_fails_its_hash(self, ca: f.Authority, genuine: f.Chip) -> None:
        tampered = f.Chip(genuine.dg1.replace(b"C01X00T47", b"C01X00T48"), genuine.dg2, genuine.sod)
        assert failed(trust(ca), tampered) == "dg1_hash"

    def test_a_swapped_photo_fails_the_dg2_hash(self, ca: f.Authority, genuine: f.Chip) -> None:
        other = f.dg2(f.face_image(FACES / "biden.jpg"))
        assert failed(trust(ca), f.Chip(genuine.dg1, other, genuine.sod)) == "dg2_hash"

    def test_a_dg1_from_another_document_fails_the_mrz_check(
        self, ca: f.Authority, ds: f.Authority
    ) -> None:
        other = td3(issuing_state="D", nationality="D", number="C01X00T55", surname="OTHER")
        assert failed(trust(ca), f.passport_chip(ds, other, None)) == "dg1_mrz"

    def test_a_rogue_signer_in_the_cscas_name_breaks_the_chain(self, ca: f.Authority) -> None:
        rogue = f.signer(ca, sign_with=f.ec_key())
        assert failed(trust(ca), f.passport_chip(rogue, MRZ, None)) == "chain"

    def test_a_revoked_signer_fails_revocation(
        self, ca: f.Authority, ds: f.Authority, genuine: f.Chip
    ) -> None:
        revoked = {ca.cert.subject.public_bytes(): frozenset({ds.cert.serial_number})}
        assert failed(trust(ca, revoked=revoked), genuine) == "revocation"

    def test_an_expired_signer_fails_validity(self, ca: f.Authority) -> None:
        expired = f.signer(
            ca, not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=1)
        )
        assert failed(trust(ca), f.passport_chip(expired, MRZ, None)) == "certificate_validity"

    def test_an_expired_csca_fails_validity(self) -> None:
        old = f.csca("DE", not_before=NOW - timedelta(days=4000), not_after=NOW - timedelta(days=1))
        files = f.passport_chip(f.signer(old, not_before=NOW - timedelta(days=10)), MRZ, None)
        assert failed(trust(old), files) == "certificate_validity"

    def test_a_signer_not_yet_valid_at_the_crossing_fails_validity(
        self, ca: f.Authority, genuine: f.Chip
    ) -> None:
        assert failed(trust(ca), genuine, at=NOW - timedelta(days=60)) == "certificate_validity"

    def test_a_signer_whose_key_may_not_sign_fails_key_usage(self, ca: f.Authority) -> None:
        files = f.passport_chip(f.signer(ca, digital_signature=False), MRZ, None)
        assert failed(trust(ca), files) == "key_usage"

    def test_a_chip_signed_for_another_state_fails_the_country(
        self, ca: f.Authority, genuine: f.Chip
    ) -> None:
        assert failed(trust(ca, country="GBR"), genuine) == "country"

    def test_a_broken_signature_fails(self, ca: f.Authority, genuine: f.Chip) -> None:
        sod = bytearray(genuine.sod)
        sod[-5] ^= 0x01  # inside the signature, the last field of EF.SOD
        assert failed(trust(ca), f.Chip(genuine.dg1, genuine.dg2, bytes(sod))) == "signature"

    def test_an_unknown_hash_algorithm_is_refused(self, ca: f.Authority, ds: f.Authority) -> None:
        one = f.dg1(MRZ)
        sod = f.sod(ds, {1: one}, hash_oid="1.2.3.4.5")
        assert failed(trust(ca), f.Chip(one, None, sod)) == "hash_algorithm"


class TestBrokenFiles:
    @pytest.mark.parametrize("cut", [0.1, 0.5, 0.9])
    def test_a_truncated_sod_is_a_format_fault(
        self, ca: f.Authority, genuine: f.Chip, cut: float
    ) -> None:
        sod = genuine.sod[: int(len(genuine.sod) * cut)]
        assert failed(trust(ca), f.Chip(genuine.dg1, genuine.dg2, sod)) == "sod_format"

    def test_garbage_is_a_format_fault(self, ca: f.Authority, genuine: f.Chip) -> None:
        assert failed(trust(ca), f.Chip(genuine.dg1, None, b"\x00" * 40)) == "sod_format"
        assert failed(trust(ca), f.Chip(genuine.dg1, None, b"")) == "sod_format"

    def test_a_signed_dg1_that_is_no_template_is_a_format_fault(
        self, ca: f.Authority, ds: f.Authority
    ) -> None:
        junk = b"\x04\x03abc"
        assert failed(trust(ca), f.Chip(junk, None, f.sod(ds, {1: junk}))) == "dg1_format"

    def test_a_signed_dg2_without_a_face_is_a_format_fault(
        self, ca: f.Authority, ds: f.Authority
    ) -> None:
        one, two = f.dg1(MRZ), f.dg2(None)
        assert failed(trust(ca), f.Chip(one, two, f.sod(ds, {1: one, 2: two}))) == "dg2_format"

    def test_a_data_group_the_sod_does_not_sign_fails_its_hash(
        self, ca: f.Authority, ds: f.Authority
    ) -> None:
        one = f.dg1(MRZ)
        two = f.dg2(f.face_image(PHOTO))
        assert failed(trust(ca), f.Chip(one, two, f.sod(ds, {1: one}))) == "dg2_hash"

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(st.binary(max_size=300))
    def test_any_bytes_give_a_named_check_never_another_exception(
        self, ca: f.Authority, genuine: f.Chip, junk: bytes
    ) -> None:
        checks = []
        for files in (
            f.Chip(genuine.dg1, genuine.dg2, junk),
            f.Chip(junk, genuine.dg2, genuine.sod),
            f.Chip(genuine.dg1, junk or b"\x00", genuine.sod),
        ):
            try:
                check(trust(ca), files)
            except chip.ChipError as exc:
                checks.append(exc.check)
        assert set(checks) <= set(get_args(chip.Check))

    def test_every_bit_flip_in_the_signed_content_or_signature_is_caught(
        self, ca: f.Authority, ds: f.Authority
    ) -> None:
        one = f.dg1(MRZ)
        sod = f.sod(ds, {1: one})
        # The security object (after its OID, the eContent) and the signature (the last
        # field). The SignedData's own wrappers (versions, the digest algorithm set) are
        # not signed (RFC 5652) and may change without changing anything checked.
        content = sod.index(bytes.fromhex("0606678108010101")) + 8
        signed = [*range(content, content + 80), *range(len(sod) - 60, len(sod))]
        for i in signed:
            flipped = bytearray(sod)
            flipped[i] ^= 0x40
            with pytest.raises(chip.ChipError):
                check(trust(ca), f.Chip(one, None, bytes(flipped)))


class TestMasterLists:
    def test_a_signed_master_list_gives_its_cscas(self, ca: f.Authority) -> None:
        signer = f.signer(ca, name="Master List Signer")
        others = [f.csca("FR", name="CSCA FR").cert, f.csca("GB", name="CSCA GB").cert]
        listed = chip.read_master_list(f.master_list(signer, [ca.cert, *others]), [])
        # A SET OF is sorted by its encoding (DER): the order is not the list's.
        assert {c.subject.rfc4514_string() for c in listed.certificates} == {
            c.subject.rfc4514_string() for c in [ca.cert, *others]
        }
        assert listed.signer_issuer == ca.cert

    def test_a_tampered_master_list_is_refused(self, ca: f.Authority) -> None:
        signer = f.signer(ca, name="Master List Signer")
        data = f.master_list(signer, [ca.cert])
        der = ca.cert.public_bytes(serialization.Encoding.DER)
        at = data.index(der) + 40
        tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
        with pytest.raises(chip.ChipError) as caught:
            chip.read_master_list(tampered, [])
        assert caught.value.check in ("signature", "sod_format")

    def test_a_master_list_from_an_unknown_signer_is_refused(self, ca: f.Authority) -> None:
        stranger = f.csca("FR", name="Stranger")
        signer = f.signer(stranger, name="Master List Signer")
        with pytest.raises(chip.ChipError) as caught:
            chip.read_master_list(f.master_list(signer, [ca.cert]), [])
        assert caught.value.check == "chain"
        listed = chip.read_master_list(f.master_list(signer, [ca.cert]), [stranger.cert])
        assert len(listed.certificates) == 1


class TestCountries:
    def test_alpha2_maps_to_the_mrz_code(self) -> None:
        assert countries.icao_code("DE") == "D"
        assert countries.icao_code("GB") == "GBR"
        assert countries.icao_code("us") == "USA"
        assert countries.icao_code("XK") == "RKS"
        assert countries.icao_code("QQ") is None

    def test_a_certificate_names_its_state(self, ca: f.Authority) -> None:
        assert chip.country_of(ca.cert) == "D"
