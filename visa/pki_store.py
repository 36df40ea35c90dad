"""SQL for the chip's trust store (DESIGN §16); the only writer of ``pki_anchors`` and
``pki_crls``. Never commits: the service owns the transaction."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from core.db import Conn

# One import at a time: two imports of one file would both find it new.
_IMPORT_LOCK = 0x626F7264_0018


@dataclass(frozen=True)
class AnchorRow:
    id: UUID
    country: str
    subject: str
    subject_der: bytes
    not_before: datetime
    not_after: datetime
    sha256: bytes
    der: bytes
    source: str
    imported_by: str
    imported_at: datetime


@dataclass(frozen=True)
class CrlRow:
    id: UUID
    anchor_id: UUID
    issuer: str
    this_update: datetime
    next_update: datetime | None
    revoked: int
    sha256: bytes
    der: bytes
    imported_by: str
    imported_at: datetime


def lock_imports(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%(k)s)", {"k": _IMPORT_LOCK})


def insert_anchor(conn: Conn, row: AnchorRow) -> bool:
    """Insert the anchor; False, with nothing written, when that certificate is held."""
    inserted = conn.execute(
        "INSERT INTO pki_anchors (id, country, subject, subject_der, not_before, not_after,"
        " sha256, der, source, imported_by, imported_at) VALUES (%(id)s, %(country)s,"
        " %(subject)s, %(subject_der)s, %(not_before)s, %(not_after)s, %(sha256)s, %(der)s,"
        " %(source)s, %(imported_by)s, %(imported_at)s)"
        " ON CONFLICT (sha256) DO NOTHING RETURNING id",
        vars(row),
    ).fetchone()
    return inserted is not None


def insert_crl(conn: Conn, row: CrlRow) -> bool:
    """Insert the CRL; False, with nothing written, when that list is held."""
    inserted = conn.execute(
        "INSERT INTO pki_crls (id, anchor_id, issuer, this_update, next_update, revoked,"
        " sha256, der, imported_by, imported_at) VALUES (%(id)s, %(anchor_id)s, %(issuer)s,"
        " %(this_update)s, %(next_update)s, %(revoked)s, %(sha256)s, %(der)s, %(imported_by)s,"
        " %(imported_at)s) ON CONFLICT (sha256) DO NOTHING RETURNING id",
        vars(row),
    ).fetchone()
    return inserted is not None


def anchors(conn: Conn) -> list[AnchorRow]:
    """Every anchor, by country then subject."""
    with conn.cursor(row_factory=class_row(AnchorRow)) as cur:
        return cur.execute(
            "SELECT id, country, subject, subject_der, not_before, not_after, sha256, der,"
            " source, imported_by, imported_at FROM pki_anchors"
            " ORDER BY country, subject, not_before, id"
        ).fetchall()


def anchors_named(conn: Conn, subject_der: bytes) -> list[AnchorRow]:
    """The anchors whose subject is ``subject_der`` (a document signer's issuer)."""
    with conn.cursor(row_factory=class_row(AnchorRow)) as cur:
        return cur.execute(
            "SELECT id, country, subject, subject_der, not_before, not_after, sha256, der,"
            " source, imported_by, imported_at FROM pki_anchors"
            " WHERE subject_der = %(s)s ORDER BY not_before, id",
            {"s": subject_der},
        ).fetchall()


def crls_of(conn: Conn, anchor_ids: list[UUID]) -> list[CrlRow]:
    """The CRLs imported under these anchors."""
    with conn.cursor(row_factory=class_row(CrlRow)) as cur:
        return cur.execute(
            "SELECT id, anchor_id, issuer, this_update, next_update, revoked, sha256, der,"
            " imported_by, imported_at FROM pki_crls WHERE anchor_id = ANY(%(a)s)"
            " ORDER BY this_update, id",
            {"a": anchor_ids},
        ).fetchall()


def crls(conn: Conn) -> list[CrlRow]:
    """Every CRL, by issuer then date."""
    with conn.cursor(row_factory=class_row(CrlRow)) as cur:
        return cur.execute(
            "SELECT id, anchor_id, issuer, this_update, next_update, revoked, sha256, der,"
            " imported_by, imported_at FROM pki_crls ORDER BY issuer, this_update, id"
        ).fetchall()
