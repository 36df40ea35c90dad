"""The chip's trust store (DESIGN §16): CSCA certificates, CRLs and ICAO CSCA master lists
imported by an admin, listed for admins, and read by passive authentication. Every import
and listing is audited; certificates are public documents, so nothing here is sealed."""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from audit import service as audit_service
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import InvalidRequest
from core.runtime import Runtime
from visa import chip, models, pki_store

# A master list of every state is a few megabytes; anything far beyond is no trust file.
MAX_FILE_BYTES = 32 * 1024 * 1024
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


class BadTrustFile(InvalidRequest):
    """A file that is no certificate, CRL or master list, or one that does not verify."""


@dataclass
class _Found:
    certificates: list[x509.Certificate]
    crls: list[x509.CertificateRevocationList]
    listed: list[x509.Certificate]
    kind: str


def _read(data: bytes, trusted: Sequence[x509.Certificate]) -> _Found:
    """Tell the file apart by its bytes: PEM blocks (certificates, CRLs), or one DER
    certificate, CRL or CMS master list (verified against ``trusted`` and itself)."""
    if len(data) > MAX_FILE_BYTES:
        raise BadTrustFile(f"the file is over {MAX_FILE_BYTES} bytes")
    if b"-----BEGIN" in data:
        found = _Found([], [], [], "pem")
        for n, block in enumerate(_PEM.finditer(data), start=1):
            label = block.group(1)
            try:
                if label == b"CERTIFICATE":
                    found.certificates.append(x509.load_pem_x509_certificate(block.group(0)))
                elif label == b"X509 CRL":
                    found.crls.append(x509.load_pem_x509_crl(block.group(0)))
                else:
                    raise BadTrustFile(f"PEM block {n} is neither a CERTIFICATE nor an X509 CRL")
            except ValueError:
                raise BadTrustFile(f"PEM block {n} does not read") from None
        if not found.certificates and not found.crls:
            raise BadTrustFile("the PEM file holds no certificate or CRL")
        return found
    try:
        return _Found([x509.load_der_x509_certificate(data)], [], [], "certificates")
    except ValueError:
        pass
    try:
        return _Found([], [x509.load_der_x509_crl(data)], [], "crl")
    except ValueError:
        pass
    try:
        listed = chip.read_master_list(data, trusted)
    except chip.ChipError as exc:
        if exc.check == "sod_format":
            raise BadTrustFile(
                "the file is no certificate, CRL or CSCA master list (PEM or DER)"
            ) from None
        raise BadTrustFile(f"the master list does not verify: {exc.detail}") from None
    return _Found([], [], listed.certificates, "master_list")


def _sha256(der: bytes) -> bytes:
    return hashlib.sha256(der).digest()


def _anchor_row(
    cert: x509.Certificate, country: str, source: str, principal: Principal, at: datetime
) -> pki_store.AnchorRow:
    der = cert.public_bytes(Encoding.DER)
    return pki_store.AnchorRow(
        id=uuid4(),
        country=country,
        subject=cert.subject.rfc4514_string(),
        subject_der=cert.subject.public_bytes(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256=_sha256(der),
        der=der,
        source=source,
        imported_by=principal.actor,
        imported_at=at,
    )


def _anchors(rows: Sequence[pki_store.AnchorRow]) -> list[chip.Anchor]:
    return [chip.Anchor(x509.load_der_x509_certificate(r.der), r.country) for r in rows]


def import_file(rt: Runtime, principal: Principal, data: bytes) -> models.PkiImported:
    """Import a trust file: all of it or, on any fault, nothing. A certificate must be a
    CSCA (CA, keyCertSign) of a state with an ISO 3166 code; a CRL must be signed by an
    anchor (held or in the same file); a master list must verify (its signer issued by a
    CSCA held or listed), and its certificates that are no CSCA of a known state are
    skipped and counted."""
    with transaction(rt.pool) as conn:
        pki_store.lock_imports(conn)
        held = _anchors(pki_store.anchors(conn))
        found = _read(data, [a.certificate for a in held])
        now = datetime.now(UTC)
        rows: list[pki_store.AnchorRow] = []
        skipped = 0
        for n, cert in enumerate(found.certificates, start=1):
            country = chip.country_of(cert)
            if not chip.is_csca(cert):
                raise BadTrustFile(f"certificate {n} is no CSCA (CA with keyCertSign)")
            if country is None:
                raise BadTrustFile(f"certificate {n} names no ISO 3166 country (subject C)")
            rows.append(_anchor_row(cert, country, "certificate", principal, now))
        for cert in found.listed:
            country = chip.country_of(cert)
            if country is None or not chip.is_csca(cert):
                skipped += 1
                continue
            rows.append(_anchor_row(cert, country, "master_list", principal, now))
        added = [r for r in rows if pki_store.insert_anchor(conn, r)]
        held += _anchors(rows)
        by_digest = {r.sha256: r for r in pki_store.anchors(conn)}
        crls_added, crl_held = [], 0
        for n, crl in enumerate(found.crls, start=1):
            issuer = next(
                (
                    a
                    for a in held
                    if a.certificate.subject.public_bytes() == crl.issuer.public_bytes()
                    and crl.is_signature_valid(a.certificate.public_key())  # type: ignore[arg-type]
                ),
                None,
            )
            if issuer is None:
                raise BadTrustFile(f"CRL {n} is signed by no imported CSCA: import its CSCA first")
            anchor = by_digest[_sha256(issuer.certificate.public_bytes(Encoding.DER))]
            der = crl.public_bytes(Encoding.DER)
            row = pki_store.CrlRow(
                id=uuid4(),
                anchor_id=anchor.id,
                issuer=crl.issuer.rfc4514_string(),
                this_update=crl.last_update_utc,
                next_update=crl.next_update_utc,
                revoked=len(crl),
                sha256=_sha256(der),
                der=der,
                imported_by=principal.actor,
                imported_at=now,
            )
            if pki_store.insert_crl(conn, row):
                crls_added.append(row)
            else:
                crl_held += 1
        result = models.PkiImported(
            kind=found.kind,  # type: ignore[arg-type]
            anchors_added=len(added),
            crls_added=len(crls_added),
            already_held=len(rows) - len(added) + crl_held,
            skipped=skipped,
        )
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "pki.import",
            resource_type="pki",
            detail={
                **result.model_dump(),
                "anchors": [r.sha256.hex() for r in added],
                "crls": [r.sha256.hex() for r in crls_added],
            },
        )
    return result


def list_trust(rt: Runtime, principal: Principal) -> models.PkiOut:
    with transaction(rt.pool) as conn:
        anchors = pki_store.anchors(conn)
        crls = pki_store.crls(conn)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "pki.read",
            resource_type="pki",
            detail={"anchors": len(anchors), "crls": len(crls)},
        )
    return models.PkiOut(
        anchors=[
            models.AnchorOut(
                anchor_id=a.id,
                country=a.country,
                subject=a.subject,
                not_before=a.not_before,
                not_after=a.not_after,
                sha256=a.sha256.hex(),
                source=a.source,  # type: ignore[arg-type]
                imported_at=a.imported_at,
            )
            for a in anchors
        ],
        crls=[
            models.CrlOut(
                crl_id=c.id,
                anchor_id=c.anchor_id,
                issuer=c.issuer,
                this_update=c.this_update,
                next_update=c.next_update,
                revoked=c.revoked,
                sha256=c.sha256.hex(),
            )
            for c in crls
        ],
    )


def trust_for(conn: Conn, sod: bytes) -> chip.TrustStore:
    """The part of the trust store EF.SOD's signer can need, read in the caller's
    transaction: the anchors named as its issuer and the serials their CRLs revoke."""
    issuer = chip.signer_issuer(sod)
    if issuer is None:
        return chip.TrustStore([], {})
    rows = pki_store.anchors_named(conn, issuer)
    revoked: dict[bytes, set[int]] = {}
    for crl_row in pki_store.crls_of(conn, [r.id for r in rows]) if rows else []:
        crl = x509.load_der_x509_crl(crl_row.der)
        revoked.setdefault(crl.issuer.public_bytes(), set()).update(r.serial_number for r in crl)
    return chip.TrustStore(_anchors(rows), {k: frozenset(v) for k, v in revoked.items()})
