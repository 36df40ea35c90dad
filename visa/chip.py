"""ICAO 9303 passive authentication of an e-passport chip (parts 10 and 11), pure: no I/O,
no clock, no database (DESIGN §16).

The kiosk reads EF.DG1 (the MRZ), EF.DG2 (the face) and EF.SOD (the document security
object) from the chip and posts them as they are. :func:`authenticate` checks, in order:

1. ``sod_format``: EF.SOD is ``[APPLICATION 23]`` around a CMS ``SignedData`` whose content
   is an ``LDSSecurityObject`` (``2.23.136.1.1.1``), with the document signer certificate
   inside; ``dg1_format`` / ``dg2_format`` likewise for the data groups' own templates.
2. ``hash_algorithm``: the digest algorithms named are SHA-1 or SHA-2 (anything else is
   refused, never guessed).
3. ``signature``: the signed attributes' message digest is that of the security object,
   and the signer's signature over them verifies with the document signer's key (RSA
   PKCS#1 v1.5, RSA-PSS or ECDSA).
4. The document signer against the trust store: an anchor (a CSCA) whose subject is the
   signer's issuer (and whose key identifier matches, when both name one). None: the
   result is ``no_trust_anchor`` (CSCA_UNKNOWN), once every other check has passed. Else
   ``country`` (the anchor's state is the document's issuing state), ``chain`` (the anchor
   signed the signer's certificate), ``certificate_validity`` (both valid at the moment of
   the check), ``key_usage`` (the signer may sign: digitalSignature), ``revocation`` (the
   signer's serial on no imported CRL of that anchor).
5. ``dg1_hash`` / ``dg2_hash``: every data group presented hashes to the signed value.
6. ``dg1_mrz``: the MRZ in DG1 is the printed one, character for character.

Structures are read with asn1crypto (CMS, X.509, and its BER-TLV parser for the data
groups' templates); cryptography does the cryptography. Any fault is a :class:`ChipError`
naming the failed check; a hostile file gives a ChipError, never another exception.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final, Literal

# asn1crypto ships no type information: its classes are Any to mypy.
from asn1crypto import algos, cms, core, parser  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from visa import countries

LDS_SECURITY_OBJECT: Final = "2.23.136.1.1.1"
CSCA_MASTER_LIST: Final = "2.23.136.1.1.2"

# What asn1crypto raises on malformed input (it parses lazily, so any access may raise).
_MALFORMED = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)

_DIGESTS: Final[Mapping[str, type[hashes.HashAlgorithm]]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

Check = Literal[
    "missing_part",
    "part_size",
    "sod_format",
    "hash_algorithm",
    "signature",
    "country",
    "chain",
    "certificate_validity",
    "key_usage",
    "revocation",
    "dg1_hash",
    "dg2_hash",
    "dg1_format",
    "dg2_format",
    "dg1_mrz",
    "dg2_face",
]
Status = Literal["passed", "failed", "no_trust_anchor"]
FaceFormat = Literal["jpeg", "jpeg2000"]


class ChipError(Exception):
    """A check that failed: ``check`` names it, ``detail`` says why (no personal data)."""

    def __init__(self, check: Check, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check: Check = check
        self.detail = detail


class _DataGroupHash(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("data_group_number", core.Integer),
        ("data_group_hash_value", core.OctetString),
    ]


class _DataGroupHashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _DataGroupHash


class _LdsVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("lds_version", core.PrintableString),
        ("unicode_version", core.PrintableString),
    ]


class LdsSecurityObject(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-10 ``LDSSecurityObject``: the hash of every data group, signed in EF.SOD."""

    _fields: ClassVar = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", _DataGroupHashes),
        ("lds_version_info", _LdsVersionInfo, {"optional": True}),
    ]


class _CertificateSet(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-12 ``CscaMasterList``: the CSCA certificates a state vouches for."""

    _fields: ClassVar = [("version", core.Integer), ("cert_list", _CertificateSet)]


@dataclass(frozen=True)
class Anchor:
    """A trusted CSCA certificate and the ICAO code of its state."""

    certificate: x509.Certificate
    country: str


@dataclass(frozen=True)
class TrustStore:
    """The anchors, and per issuer (its name, DER) the serials its imported CRLs revoke."""

    anchors: Sequence[Anchor]
    revoked: Mapping[bytes, frozenset[int]]


@dataclass(frozen=True)
class ChipFace:
    """The face image DG2 holds, as stored on the chip."""

    image: bytes
    format: FaceFormat


@dataclass(frozen=True)
class Verdict:
    """``passed``; or ``no_trust_anchor``: the chip is consistent and signed, by a signer no
    imported CSCA vouches for. A failure is a ChipError instead."""

    status: Literal["passed", "no_trust_anchor"]
    signer_subject: str
    face: ChipFace | None


def _digest(algorithm: algos.DigestAlgorithm) -> hashes.HashAlgorithm:
    name = algorithm["algorithm"].native
    known = _DIGESTS.get(str(name))
    if known is None:
        raise ChipError("hash_algorithm", f"the hash algorithm {name} is not one of ICAO's")
    return known()


def _hash(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _tlv(data: bytes) -> tuple[int, int, bytes, bytes]:
    """The first BER-TLV of ``data``: class, tag, contents and what follows it."""
    class_, _method, tag, header, contents, trailer = parser.parse(data)
    used = len(header) + len(contents) + len(trailer)
    return class_, tag, contents, data[used:]


def _tlvs(data: bytes) -> list[tuple[int, int, bytes]]:
    out = []
    while data:
        class_, tag, contents, data = _tlv(data)
        out.append((class_, tag, contents))
    return out


_APPLICATION: Final = 1
_CONTEXT: Final = 2


def _signed_data(sod: bytes, content_type: str, check: Check) -> cms.SignedData:
    try:
        class_, tag, contents, rest = _tlv(sod)
        if content_type == LDS_SECURITY_OBJECT:
            # EF.SOD wraps the ContentInfo in [APPLICATION 23]; a master list does not.
            if (class_, tag) != (_APPLICATION, 23) or rest:
                raise ChipError(check, "EF.SOD is not an [APPLICATION 23] template")
            info = cms.ContentInfo.load(contents, strict=True)
        else:
            info = cms.ContentInfo.load(sod, strict=True)
        if info["content_type"].native != "signed_data":
            raise ChipError(check, "the file is not CMS SignedData")
        signed: cms.SignedData = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != content_type:
            raise ChipError(check, f"the signed content is not of type {content_type}")
        if len(signed["signer_infos"]) != 1:
            raise ChipError(check, "the file must carry exactly one signer")
        return signed
    except _MALFORMED:
        raise ChipError(check, "the file is not readable CMS") from None


def _content(signed: cms.SignedData) -> bytes:
    content = signed["encap_content_info"]["content"]
    if content.native is None:
        raise ChipError("sod_format", "the signed content is missing")
    return bytes(content.contents) if isinstance(content, core.OctetString) else content.contents


def _certificate(der: bytes, check: Check) -> x509.Certificate:
    """A certificate as cryptography reads it, with its names and extensions parsed now
    (cryptography parses them lazily, and a malformed one would raise later)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject.public_bytes()
        cert.issuer.public_bytes()
        _ = cert.extensions
        cert.public_key()
        return cert
    except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm):
        raise ChipError(check, "a certificate in the file is not readable") from None


def _signer_certificate(signed: cms.SignedData, check: Check) -> x509.Certificate:
    info = signed["signer_infos"][0]
    sid = info["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                cert.issuer.dump() == wanted["issuer"].dump()
                and cert.serial_number == wanted["serial_number"].native
            ):
                return _certificate(cert.dump(), check)
        elif cert.key_identifier == sid.chosen.native:
            return _certificate(cert.dump(), check)
    raise ChipError(check, "the signer's certificate is not in the file")


def signer_issuer(sod: bytes) -> bytes | None:
    """The issuer name (DER) of EF.SOD's document signer, to find its anchors by; None
    when EF.SOD does not read (:func:`authenticate` then says why)."""
    try:
        signed = _signed_data(sod, LDS_SECURITY_OBJECT, "sod_format")
        return _signer_certificate(signed, "sod_format").issuer.public_bytes()
    except (ChipError, *_MALFORMED):
        return None


def _verify_signer(signed: cms.SignedData, content: bytes, signer: x509.Certificate) -> None:
    """The CMS signature: message digest of the content, then the signature over the signed
    attributes (DER as a SET, RFC 5652 5.4)."""
    info = signed["signer_infos"][0]
    digest = _digest(info["digest_algorithm"])
    attrs = info["signed_attrs"]
    if not attrs:
        raise ChipError("signature", "the signer carries no signed attributes")
    found = {a["type"].native: a["values"] for a in attrs}
    message_digest = found.get("message_digest")
    if message_digest is None or message_digest[0].native != _hash(digest, content):
        raise ChipError("signature", "the signed message digest is not the content's")
    signed_bytes = b"\x31" + attrs.dump()[1:]
    algorithm = info["signature_algorithm"]
    try:
        hash_name = algorithm.hash_algo
    except ValueError:
        hash_name = info["digest_algorithm"]["algorithm"].native
    if str(hash_name) not in _DIGESTS:
        raise ChipError("hash_algorithm", f"the signature's hash {hash_name} is not one of ICAO's")
    sig_hash = _DIGESTS[str(hash_name)]()
    signature = info["signature"].native
    key = signer.public_key()
    try:
        kind = algorithm.signature_algo
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), sig_hash)
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = algorithm["parameters"]
            pss_hash = _DIGESTS[str(params["hash_algorithm"]["algorithm"].native)]()
            salt = params["salt_length"].native
            key.verify(
                signature,
                signed_bytes,
                padding.PSS(mgf=padding.MGF1(pss_hash), salt_length=salt),
                pss_hash,
            )
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(sig_hash))
        else:
            raise ChipError("signature", f"the signature algorithm {kind} does not fit the key")
    except InvalidSignature:
        raise ChipError("signature", "the document signer's signature does not verify") from None
    except (UnsupportedAlgorithm, *_MALFORMED):
        raise ChipError("signature", "the signature cannot be checked") from None


def _key_identifier(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    if isinstance(value, x509.SubjectKeyIdentifier):
        return value.digest
    if isinstance(value, x509.AuthorityKeyIdentifier):
        return value.key_identifier
    return None


def issuer_candidates(anchors: Sequence[Anchor], cert: x509.Certificate) -> list[Anchor]:
    """The anchors that name themselves as ``cert``'s issuer (subject, and key identifier
    when both carry one)."""
    wanted = _key_identifier(cert, x509.AuthorityKeyIdentifier)
    out = []
    for anchor in anchors:
        if anchor.certificate.subject.public_bytes() != cert.issuer.public_bytes():
            continue
        have = _key_identifier(anchor.certificate, x509.SubjectKeyIdentifier)
        if wanted is not None and have is not None and wanted != have:
            continue
        out.append(anchor)
    return out


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bool(usage.digital_signature)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _trusted(trust: TrustStore, signer: x509.Certificate, issuing_state: str, at: datetime) -> bool:
    """Whether an anchor vouches for the signer (False: none is imported for it); raises
    the failed check when one does but the chain does not hold."""
    candidates = issuer_candidates(trust.anchors, signer)
    if not candidates:
        return False
    ours = [a for a in candidates if a.country == issuing_state]
    if not ours:
        raise ChipError(
            "country",
            f"the signer's CSCA belongs to {candidates[0].country}, the document to "
            f"{issuing_state}",
        )
    anchor = next((a for a in ours if issued_by(signer, a.certificate)), None)
    if anchor is None:
        raise ChipError("chain", "the document signer was not issued by the CSCA it names")
    if not _valid_at(signer, at):
        raise ChipError("certificate_validity", "the document signer's certificate is not valid")
    if not _valid_at(anchor.certificate, at):
        raise ChipError("certificate_validity", "the CSCA certificate is not valid")
    if not _may_sign(signer):
        raise ChipError("key_usage", "the document signer's key may not sign (digitalSignature)")
    revoked = trust.revoked.get(anchor.certificate.subject.public_bytes(), frozenset())
    if signer.serial_number in revoked:
        raise ChipError("revocation", "the document signer's certificate is revoked by its CSCA")
    return True


def _security_object(content: bytes) -> LdsSecurityObject:
    try:
        lds: LdsSecurityObject = LdsSecurityObject.load(content, strict=True)
        lds.native  # noqa: B018  (asn1crypto parses lazily: parse everything here)
        return lds
    except _MALFORMED:
        raise ChipError("sod_format", "the LDS security object is not readable") from None


def read_dg1(dg1: bytes) -> str:
    """The MRZ DG1 holds (``61`` → ``5F1F``), as one string of its characters."""
    try:
        class_, tag, contents, rest = _tlv(dg1)
        if (class_, tag) != (_APPLICATION, 1) or rest:
            raise ChipError("dg1_format", "DG1 is not an [APPLICATION 1] template")
        for inner_class, inner_tag, value in _tlvs(contents):
            if (inner_class, inner_tag) == (_APPLICATION, 31):
                return value.decode("ascii")
    except (*_MALFORMED, UnicodeDecodeError):
        raise ChipError("dg1_format", "DG1 is not a readable template") from None
    raise ChipError("dg1_format", "DG1 holds no MRZ (5F1F)")


def read_dg2(dg2: bytes) -> ChipFace:
    """The first face image in DG2: ``75`` → ``7F61`` → ``7F60`` → ``5F2E``/``7F2E``, an
    ISO/IEC 19794-5 facial record ("FAC")."""
    try:
        class_, tag, contents, rest = _tlv(dg2)
        if (class_, tag) != (_APPLICATION, 21) or rest:
            raise ChipError("dg2_format", "DG2 is not an [APPLICATION 21] template")
        for group_class, group_tag, group in _tlvs(contents):
            if (group_class, group_tag) != (_APPLICATION, 97):
                continue
            for bit_class, bit_tag, bit in _tlvs(group):
                if (bit_class, bit_tag) != (_APPLICATION, 96):
                    continue
                for block_class, block_tag, block in _tlvs(bit):
                    if (block_class, block_tag) == (_APPLICATION, 46):
                        return facial_record(block)
    except _MALFORMED:
        raise ChipError("dg2_format", "DG2 is not a readable template") from None
    raise ChipError("dg2_format", "DG2 holds no biometric data block")


def facial_record(block: bytes) -> ChipFace:
    """The first image of an ISO/IEC 19794-5:2005 facial record."""
    if len(block) < 14 or block[:4] != b"FAC\x00":
        raise ChipError("dg2_format", "the biometric data block is no ISO/IEC 19794-5 record")
    if int.from_bytes(block[12:14]) < 1:
        raise ChipError("dg2_format", "the facial record holds no face image")
    start = 14
    if len(block) < start + 20:
        raise ChipError("dg2_format", "the facial record is truncated")
    length = int.from_bytes(block[start : start + 4])
    points = int.from_bytes(block[start + 4 : start + 6])
    image_info = start + 20 + 8 * points
    image_start = image_info + 12
    end = start + length
    if end > len(block) or image_start >= end:
        raise ChipError("dg2_format", "the facial record is truncated")
    data_type = block[image_info + 1]
    if data_type not in (0, 1):
        raise ChipError("dg2_format", "the face image is neither JPEG nor JPEG 2000")
    return ChipFace(block[image_start:end], "jpeg" if data_type == 0 else "jpeg2000")


def _printed(mrz: str) -> str:
    return "".join(line.strip() for line in mrz.strip().splitlines())


def authenticate(
    trust: TrustStore,
    *,
    sod: bytes,
    dg1: bytes,
    dg2: bytes | None,
    mrz: str,
    issuing_state: str,
    at: datetime,
) -> Verdict:
    """Passive authentication of the chip's files against the printed ``mrz`` of a
    document issued by ``issuing_state`` (ICAO code), at the moment ``at``. Raises
    ChipError naming the first check that fails."""
    signed = _signed_data(sod, LDS_SECURITY_OBJECT, "sod_format")
    try:
        content = _content(signed)
        signer = _signer_certificate(signed, "sod_format")
        lds = _security_object(content)
        _verify_signer(signed, content, signer)
        trusted = _trusted(trust, signer, issuing_state, at)
        digest = _digest(lds["hash_algorithm"])
        signed_hashes = {
            int(h["data_group_number"].native): bytes(h["data_group_hash_value"].native)
            for h in lds["data_group_hash_values"]
        }
    except _MALFORMED:
        # asn1crypto parses lazily: a fault deep in EF.SOD may surface at any step above.
        raise ChipError("sod_format", "EF.SOD is not readable") from None
    groups = [(1, dg1)] + ([(2, dg2)] if dg2 else [])
    for number, data in groups:
        check: Check = "dg1_hash" if number == 1 else "dg2_hash"
        if number not in signed_hashes:
            raise ChipError(check, f"the security object signs no hash of DG{number}")
        if _hash(digest, data) != signed_hashes[number]:
            raise ChipError(check, f"DG{number} does not hash to the signed value")
    if read_dg1(dg1) != _printed(mrz):
        raise ChipError("dg1_mrz", "the MRZ on the chip is not the printed one")
    face = read_dg2(dg2) if dg2 else None
    return Verdict(
        status="passed" if trusted else "no_trust_anchor",
        signer_subject=signer.subject.rfc4514_string(),
        face=face,
    )


def country_of(cert: x509.Certificate) -> str | None:
    """The ICAO code of the state a certificate names (its subject's C, ISO alpha-2)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
    if len(names) != 1:
        return None
    return countries.icao_code(str(names[0].value))


def is_csca(cert: x509.Certificate) -> bool:
    """A CA certificate that may sign certificates (basicConstraints CA, keyCertSign)."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bool(constraints.ca and usage.key_cert_sign)


@dataclass(frozen=True)
class MasterList:
    certificates: list[x509.Certificate]
    signer: x509.Certificate
    signer_issuer: x509.Certificate


def read_master_list(data: bytes, trusted: Sequence[x509.Certificate]) -> MasterList:
    """An ICAO CSCA master list, verified: its CMS signature with the master list signer's
    key, and the signer's certificate issued by a CSCA either already ``trusted`` or in the
    list itself (a state's list carries its own CSCA). ChipError (``sod_format``,
    ``signature``, ``chain``) when it fails."""
    signed = _signed_data(data, CSCA_MASTER_LIST, "sod_format")
    try:
        content = _content(signed)
        signer = _signer_certificate(signed, "sod_format")
        listed = CscaMasterList.load(content, strict=True)
        certificates = [_certificate(c.dump(), "sod_format") for c in listed["cert_list"]]
    except _MALFORMED:
        raise ChipError("sod_format", "the master list is not readable") from None
    try:
        _verify_signer(signed, content, signer)
    except _MALFORMED:
        raise ChipError("sod_format", "the signer information is not readable") from None
    issuer = next(
        (c for c in [*trusted, *certificates] if is_csca(c) and issued_by(signer, c)), None
    )
    if issuer is None:
        raise ChipError("chain", "the master list signer was issued by no CSCA known or listed")
    return MasterList(certificates, signer, issuer)
