"""SQL for persons, documents, captures and the watchlist; the only writer of those tables.

Personal fields arrive here already sealed; this module never sees a key.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from core.db import Conn

# Held from the dedup search to commit by every transaction that adds a capture.
_ENROLLMENT_LOCK = 0x626F7264_0003


@dataclass(frozen=True)
class PersonRow:
    id: UUID
    status: str
    surname: bytes | None
    given_names: bytes | None
    nationality: bytes | None
    birth_date: bytes | None
    sex: bytes | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DocumentRow:
    id: UUID
    person_id: UUID
    document_code: str
    issuing_state: str
    expiry_date: date | None
    number: bytes
    blind_index: bytes
    created_at: datetime


@dataclass(frozen=True)
class CaptureRow:
    id: UUID
    seq: int
    person_id: UUID
    quality: dict[str, Any]
    station: str
    created_at: datetime


@dataclass(frozen=True)
class SealedTemplate:
    """A capture's sealed template with its person's wrapped data key (core's data_keys),
    read in the same query; the key is None once the person's key has been shredded."""

    id: UUID
    seq: int
    person_id: UUID
    template: bytes
    key_version: int | None
    wrapped_key: bytes | None


_SEALED_TEMPLATES = (
    "SELECT c.id, c.seq, c.person_id, c.template, k.key_version, k.wrapped AS wrapped_key"
    " FROM captures c LEFT JOIN data_keys k ON k.owner_id = c.person_id"
)


@dataclass(frozen=True)
class WatchlistRow:
    id: UUID
    person_id: UUID
    reason: bytes
    added_by: str
    active: bool
    created_at: datetime
    deactivated_at: datetime | None


def lock_enrollment(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ENROLLMENT_LOCK,))


def next_capture_seq(conn: Conn) -> int:
    row = conn.execute("SELECT nextval('captures_seq')").fetchone()
    assert row is not None
    return int(row[0])


def insert_person(conn: Conn, row: PersonRow) -> None:
    conn.execute(
        "INSERT INTO persons (id, status, surname, given_names, nationality, birth_date, sex,"
        " created_at, updated_at) VALUES (%(id)s, %(status)s, %(surname)s, %(given_names)s,"
        " %(nationality)s, %(birth_date)s, %(sex)s, %(created_at)s, %(updated_at)s)",
        vars(row),
    )


def get_person(conn: Conn, person_id: UUID, *, lock: bool = False) -> PersonRow | None:
    """An active person; None when unknown or erased. ``lock`` holds the row to commit."""
    with conn.cursor(row_factory=class_row(PersonRow)) as cur:
        query = (
            "SELECT id, status, surname, given_names, nationality, birth_date, sex, created_at,"
            " updated_at FROM persons WHERE id = %(id)s AND status = 'active' FOR UPDATE"
            if lock
            else "SELECT id, status, surname, given_names, nationality, birth_date, sex,"
            " created_at, updated_at FROM persons WHERE id = %(id)s AND status = 'active'"
        )
        return cur.execute(query, {"id": person_id}).fetchone()


def person_by_blind_index(conn: Conn, blind_index: bytes) -> UUID | None:
    row = conn.execute(
        "SELECT person_id FROM documents WHERE blind_index = %(b)s", {"b": blind_index}
    ).fetchone()
    return None if row is None else UUID(str(row[0]))


def insert_document(conn: Conn, row: DocumentRow) -> None:
    conn.execute(
        "INSERT INTO documents (id, person_id, document_code, issuing_state, expiry_date, number,"
        " blind_index, created_at) VALUES (%(id)s, %(person_id)s, %(document_code)s,"
        " %(issuing_state)s, %(expiry_date)s, %(number)s, %(blind_index)s, %(created_at)s)",
        vars(row),
    )


def documents_of(conn: Conn, person_id: UUID) -> list[DocumentRow]:
    with conn.cursor(row_factory=class_row(DocumentRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, document_code, issuing_state, expiry_date, number, blind_index,"
            " created_at FROM documents WHERE person_id = %(p)s ORDER BY created_at, id",
            {"p": person_id},
        ).fetchall()


def insert_capture(conn: Conn, row: CaptureRow, *, image: bytes, template: bytes) -> None:
    conn.execute(
        "INSERT INTO captures (id, seq, person_id, image, template, quality, station, created_at)"
        " VALUES (%(id)s, %(seq)s, %(person_id)s, %(image)s, %(template)s, %(quality)s,"
        " %(station)s, %(created_at)s)",
        {**vars(row), "quality": Jsonb(row.quality), "image": image, "template": template},
    )


def captures_of(conn: Conn, person_id: UUID) -> list[CaptureRow]:
    with conn.cursor(row_factory=class_row(CaptureRow)) as cur:
        return cur.execute(
            "SELECT id, seq, person_id, quality, station, created_at FROM captures"
            " WHERE person_id = %(p)s ORDER BY seq",
            {"p": person_id},
        ).fetchall()


def templates_of(conn: Conn, person_id: UUID) -> list[SealedTemplate]:
    with conn.cursor(row_factory=class_row(SealedTemplate)) as cur:
        return cur.execute(
            _SEALED_TEMPLATES + " WHERE c.person_id = %(p)s ORDER BY c.seq",
            {"p": person_id},
        ).fetchall()


def templates_after(conn: Conn, seq: int, limit: int) -> list[SealedTemplate]:
    """Sealed templates of captures numbered above ``seq``, in order, at most ``limit``."""
    with conn.cursor(row_factory=class_row(SealedTemplate)) as cur:
        return cur.execute(
            _SEALED_TEMPLATES + " WHERE c.seq > %(s)s ORDER BY c.seq LIMIT %(n)s",
            {"s": seq, "n": limit},
        ).fetchall()


def templates_by_seq(conn: Conn, seqs: list[int]) -> list[SealedTemplate]:
    with conn.cursor(row_factory=class_row(SealedTemplate)) as cur:
        return cur.execute(
            _SEALED_TEMPLATES + " WHERE c.seq = ANY(%(s)s) ORDER BY c.seq",
            {"s": seqs},
        ).fetchall()


def capture_count(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM captures").fetchone()
    return int(row[0]) if row else 0


def capture_seqs(conn: Conn) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT seq FROM captures")]


def watchlisted_persons(conn: Conn, person_ids: list[UUID]) -> set[UUID]:
    """Which of these persons have an active watchlist entry."""
    rows = conn.execute(
        "SELECT DISTINCT person_id FROM watchlist WHERE active AND person_id = ANY(%(p)s)",
        {"p": person_ids},
    ).fetchall()
    return {UUID(str(r[0])) for r in rows}


def watchlisted_person_ids(conn: Conn) -> set[UUID]:
    """Every person with an active watchlist entry (the watchlist is small)."""
    rows = conn.execute("SELECT DISTINCT person_id FROM watchlist WHERE active").fetchall()
    return {UUID(str(r[0])) for r in rows}


def watchlisted_capture_seqs(conn: Conn) -> list[int]:
    """The captures of persons with an active entry, read from the (small) watchlist side."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT DISTINCT c.seq FROM watchlist w JOIN captures c ON c.person_id = w.person_id"
            " WHERE w.active"
        )
    ]


def watchlist_changes(conn: Conn) -> int:
    """Entries made plus entries ended, ever: entries are never deleted or reopened, so
    this grows with every change to the watchlist."""
    row = conn.execute("SELECT count(*) + count(deactivated_at) FROM watchlist").fetchone()
    return int(row[0]) if row else 0


def persons_of_captures(conn: Conn, seqs: list[int]) -> dict[int, UUID]:
    """Capture number to person, for captures that still exist (erasure deletes them)."""
    rows = conn.execute(
        "SELECT seq, person_id FROM captures WHERE seq = ANY(%(s)s)", {"s": seqs}
    ).fetchall()
    return {int(seq): UUID(str(pid)) for seq, pid in rows}


def erase_person(conn: Conn, person_id: UUID, at: datetime) -> list[int]:
    """Delete the person's captures and documents, end their watchlist entries, blank the
    sealed fields. Returns the capture numbers deleted."""
    seqs = [
        int(r[0])
        for r in conn.execute(
            "DELETE FROM captures WHERE person_id = %(p)s RETURNING seq", {"p": person_id}
        )
    ]
    conn.execute("DELETE FROM documents WHERE person_id = %(p)s", {"p": person_id})
    conn.execute(
        "UPDATE watchlist SET active = false, deactivated_at = %(at)s,"
        " deactivated_by = 'erasure' WHERE person_id = %(p)s AND active",
        {"p": person_id, "at": at},
    )
    conn.execute(
        "UPDATE persons SET status = 'erased', surname = NULL, given_names = NULL,"
        " nationality = NULL, birth_date = NULL, sex = NULL, updated_at = %(at)s,"
        " erased_at = %(at)s WHERE id = %(p)s",
        {"p": person_id, "at": at},
    )
    return seqs


def insert_watchlist(conn: Conn, row: WatchlistRow) -> None:
    conn.execute(
        "INSERT INTO watchlist (id, person_id, reason, added_by, active, created_at)"
        " VALUES (%(id)s, %(person_id)s, %(reason)s, %(added_by)s, %(active)s, %(created_at)s)",
        vars(row),
    )


def active_watchlist(conn: Conn) -> list[WatchlistRow]:
    with conn.cursor(row_factory=class_row(WatchlistRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, reason, added_by, active, created_at, deactivated_at"
            " FROM watchlist WHERE active ORDER BY created_at, id"
        ).fetchall()


def deactivate_watchlist(conn: Conn, entry_id: UUID, by: str, at: datetime) -> WatchlistRow | None:
    with conn.cursor(row_factory=class_row(WatchlistRow)) as cur:
        return cur.execute(
            "UPDATE watchlist SET active = false, deactivated_at = %(at)s, deactivated_by = %(by)s"
            " WHERE id = %(id)s AND active RETURNING id, person_id, reason, added_by, active,"
            " created_at, deactivated_at",
            {"id": entry_id, "by": by, "at": at},
        ).fetchone()


def is_watchlisted(conn: Conn, person_id: UUID) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM watchlist WHERE person_id = %(p)s AND active)",
        {"p": person_id},
    ).fetchone()
    return bool(row and row[0])
