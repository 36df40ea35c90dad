"""Specimen e-passport chips (DESIGN §16), built from scratch: a CSCA, a document signer,
CRLs, EF.DG1, EF.DG2, EF.SOD and CSCA master lists, with cryptography for the keys and
signatures and asn1crypto for the CMS and LDS structures. For the demo and the tests: a
state's real chips come from its real signers. Tampered, rogue, revoked and expired
variants are built by changing one argument. Pure: no I/O.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from visa import chip

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _now() -> datetime:
    return datetime.now(UTC)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(country: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _sign_cert(builder: x509.CertificateBuilder, key: Key) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class Authority:
    key: Key
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def csca(
    country: str = "DE",
    *,
    key: Key | None = None,
    name: str = "CSCA",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Authority:
    key = key or ec_key()
    subject = _name(country, name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _now() - timedelta(days=365))
        .not_valid_after(not_after or _now() + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
    )
    return Authority(key, _sign_cert(builder, key))


def signer(
    issuer: Authority,
    *,
    key: Key | None = None,
    country: str | None = None,
    name: str = "Document Signer",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    digital_signature: bool = True,
    sign_with: Key | None = None,
) -> Authority:
    """A document signer issued by ``issuer`` (or, with ``sign_with``, by a rogue key in
    the issuer's name)."""
    key = key or ec_key()
    issuer_country = issuer.cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(country or str(issuer_country), name))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or _now() - timedelta(days=30))
        .not_valid_after(not_after or _now() + timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    return Authority(key, _sign_cert(builder, sign_with or issuer.key))


def crl(issuer: Authority, revoked: Sequence[x509.Certificate]) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(_now() - timedelta(days=1))
        .next_update(_now() + timedelta(days=30))
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(_now() - timedelta(days=1))
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def _tlv(tag: bytes, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = b"\x81" + bytes([n])
    elif n < 0x10000:
        length = b"\x82" + n.to_bytes(2)
    else:
        length = b"\x83" + n.to_bytes(3)
    return tag + length + value


def dg1(mrz: str) -> bytes:
    return _tlv(b"\x61", _tlv(b"\x5f\x1f", "".join(mrz.split()).encode()))


def facial_record(image: bytes | None, fmt: str = "jpeg2000") -> bytes:
    """An ISO/IEC 19794-5:2005 record with one face (none when ``image`` is None)."""
    if image is None:
        return b"FAC\x00010\x00" + (14).to_bytes(4) + (0).to_bytes(2)
    info = bytes(20)
    image_info = bytes([1, 1 if fmt == "jpeg2000" else 0]) + bytes(10)
    block = info + image_info + image
    block = (len(block)).to_bytes(4) + block[4:]
    total = 14 + len(block)
    return b"FAC\x00010\x00" + total.to_bytes(4) + (1).to_bytes(2) + block


def dg2(image: bytes | None, fmt: str = "jpeg2000") -> bytes:
    bdb = _tlv(b"\x5f\x2e", facial_record(image, fmt))
    bit = _tlv(b"\x7f\x60", _tlv(b"\xa1", _tlv(b"\x80", b"\x01\x01")) + bdb)
    return _tlv(b"\x75", _tlv(b"\x7f\x61", _tlv(b"\x02", b"\x01") + bit))


def _hash(name: str, data: bytes) -> bytes:
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}
    h = hashes.Hash(algorithm[name])
    h.update(data)
    return h.finalize()


def _signed_data(
    content_type: str,
    content: bytes,
    by: Authority,
    *,
    digest: str = "sha256",
    extra_certs: Sequence[x509.Certificate] = (),
) -> bytes:
    cert = asn1_x509.Certificate.load(by.der)
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute({"type": "message_digest", "values": [_hash(digest, content)]}),
        ]
    )
    to_sign = attrs.dump()
    key = by.key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256())
        sig_algo = "sha256_rsa"
    else:
        signature = key.sign(to_sign, ec.ECDSA(hashes.SHA256()))
        sig_algo = "sha256_ecdsa"
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": digest}),
            "signed_attrs": attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_algo}),
            "signature": signature,
        }
    )
    certificates = [cert] + [
        asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in extra_certs
    ]
    signed = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": digest})],
            "encap_content_info": {
                "content_type": content_type,
                "content": core.ParsableOctetString(content),
            },
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    info: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return info


def sod(
    by: Authority,
    groups: dict[int, bytes],
    *,
    hash_algorithm: str = "sha256",
    hash_oid: str | None = None,
) -> bytes:
    """EF.SOD signing the hashes of ``groups`` (number → file); ``hash_oid`` names another
    algorithm in the security object (an unknown one, for the tests)."""
    lds = chip.LdsSecurityObject(
        {
            "version": 0,
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_oid or hash_algorithm}),
            "data_group_hash_values": [
                {"data_group_number": n, "data_group_hash_value": _hash(hash_algorithm, data)}
                for n, data in sorted(groups.items())
            ],
        }
    )
    info = _signed_data(chip.LDS_SECURITY_OBJECT, lds.dump(), by)
    return _tlv(b"\x77", info)


def master_list(by: Authority, cscas: Sequence[x509.Certificate]) -> bytes:
    listed = chip.CscaMasterList(
        {
            "version": 0,
            "cert_list": [
                asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
                for c in cscas
            ],
        }
    )
    return _signed_data(chip.CSCA_MASTER_LIST, listed.dump(), by)
