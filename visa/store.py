"""SQL for visas; the only writer of the ``visas`` table. Never commits: the service owns
the transaction.

It also reads ``persons`` (owned by enrollment/) to check that a holder exists; it never
writes there.
"""

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from psycopg.rows import class_row

from core.db import Conn
from visa.rules import Entries, VisaStatus, VisaType


@dataclass(frozen=True)
class VisaRow:
    id: UUID
    person_id: UUID
    number: str
    visa_type: VisaType
    issuing_state: str
    valid_from: date
    valid_until: date
    entries: Entries
    duration_of_stay_days: int
    status: VisaStatus
    issued_by: str
    issued_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


def hold_active_person(conn: Conn, person_id: UUID) -> bool:
    """Whether the person exists and is not erased. The row is locked FOR SHARE until the
    transaction ends, so an erasure (which takes it FOR UPDATE) cannot slip in between this
    check and the visa's insert."""
    row = conn.execute(
        "SELECT 1 FROM persons WHERE id = %(id)s AND status = 'active' FOR SHARE",
        {"id": person_id},
    ).fetchone()
    return row is not None


def insert_visa(conn: Conn, row: VisaRow) -> bool:
    """Insert the visa; False, with nothing written, when its number is already taken.

    ON CONFLICT keeps a clash from aborting the caller's transaction, so the caller can
    simply draw another number.
    """
    inserted = conn.execute(
        "INSERT INTO visas (id, person_id, number, visa_type, issuing_state, valid_from,"
        " valid_until, entries, duration_of_stay_days, status, issued_by, issued_at, revoked_at,"
        " revoked_by) VALUES (%(id)s, %(person_id)s, %(number)s,"
        " %(visa_type)s, %(issuing_state)s, %(valid_from)s, %(valid_until)s, %(entries)s,"
        " %(duration_of_stay_days)s, %(status)s, %(issued_by)s, %(issued_at)s, %(revoked_at)s,"
        " %(revoked_by)s) ON CONFLICT (number) DO NOTHING RETURNING id",
        vars(row),
    ).fetchone()
    return inserted is not None


def get_visa(conn: Conn, visa_id: UUID) -> VisaRow | None:
    with conn.cursor(row_factory=class_row(VisaRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, number, visa_type, issuing_state, valid_from, valid_until,"
            " entries, duration_of_stay_days, status, issued_by, issued_at, revoked_at, revoked_by"
            " FROM visas WHERE id = %(id)s",
            {"id": visa_id},
        ).fetchone()


def revoke_visa(conn: Conn, visa_id: UUID, by: str, at: datetime) -> VisaRow | None:
    """Revoke an issued visa and return it; None when there is no such visa or it was
    already revoked (the first revocation's time and author are kept)."""
    with conn.cursor(row_factory=class_row(VisaRow)) as cur:
        return cur.execute(
            "UPDATE visas SET status = 'revoked', revoked_at = %(at)s, revoked_by = %(by)s"
            " WHERE id = %(id)s AND status = 'issued' RETURNING id, person_id, number, visa_type,"
            " issuing_state, valid_from, valid_until, entries, duration_of_stay_days, status,"
            " issued_by, issued_at, revoked_at, revoked_by",
            {"id": visa_id, "by": by, "at": at},
        ).fetchone()


def visas_of(conn: Conn, person_id: UUID) -> list[VisaRow]:
    """A person's visas, revoked ones included, oldest first."""
    with conn.cursor(row_factory=class_row(VisaRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, number, visa_type, issuing_state, valid_from, valid_until,"
            " entries, duration_of_stay_days, status, issued_by, issued_at, revoked_at, revoked_by"
            " FROM visas WHERE person_id = %(p)s ORDER BY issued_at, id",
            {"p": person_id},
        ).fetchall()


def delete_visas_of(conn: Conn, person_id: UUID) -> int:
    """Delete every visa of the person (retention, DESIGN §12); how many."""
    cur = conn.execute("DELETE FROM visas WHERE person_id = %(p)s", {"p": person_id})
    return cur.rowcount
