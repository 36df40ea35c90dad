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
# The namespace of the per-traveller lock that crossings take (border/store.py
# ``lock_traveller``); enrollment may not import border, so the key is written twice.
_TRAVELLER_LOCK = 0x626F_7264


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
    name_index: bytes | None = None


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
    # "live" (a camera) or "chip" (the passport chip's photo, DESIGN §16).
    source: str = "live"


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
    category: str = "watch"


def lock_enrollment(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ENROLLMENT_LOCK,))


def lock_traveller(conn: Conn, person_id: UUID) -> None:
    """The person's traveller lock, held to commit: the very lock a crossing takes on the
    person (``border.store.lock_traveller(conn, person_id.bytes)``: namespace, hashtext of
    the hex of the id's 16 bytes), so an erasure and a crossing of one person take turns."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(ns)s, hashtext(encode(%(k)s, 'hex')))",
        {"ns": _TRAVELLER_LOCK, "k": person_id.bytes},
    )


def next_capture_seq(conn: Conn) -> int:
    row = conn.execute("SELECT nextval('captures_seq')").fetchone()
    assert row is not None
    return int(row[0])


def insert_person(conn: Conn, row: PersonRow) -> None:
    conn.execute(
        "INSERT INTO persons (id, status, surname, given_names, nationality, birth_date, sex,"
        " created_at, updated_at, name_index) VALUES (%(id)s, %(status)s, %(surname)s,"
        " %(given_names)s, %(nationality)s, %(birth_date)s, %(sex)s, %(created_at)s,"
        " %(updated_at)s, %(name_index)s)",
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


def person_status(conn: Conn, person_id: UUID) -> str | None:
    """The person's status (active or erased), the row held to commit; None when unknown."""
    row = conn.execute(
        "SELECT status FROM persons WHERE id = %(id)s FOR UPDATE", {"id": person_id}
    ).fetchone()
    return None if row is None else str(row[0])


def delete_captures_before(conn: Conn, person_id: UUID, before: date) -> list[int]:
    """Delete the person's captures taken before the UTC day ``before``; their numbers."""
    rows = conn.execute(
        "DELETE FROM captures WHERE person_id = %(p)s"
        " AND (created_at AT TIME ZONE 'UTC')::date < %(before)s RETURNING seq",
        {"p": person_id, "before": before},
    ).fetchall()
    return [int(r[0]) for r in rows]


def person_by_blind_index(conn: Conn, blind_index: bytes) -> UUID | None:
    row = conn.execute(
        "SELECT person_id FROM documents WHERE blind_index = %(b)s", {"b": blind_index}
    ).fetchone()
    return None if row is None else UUID(str(row[0]))


def document_indexes_of(conn: Conn, person_id: UUID) -> list[bytes]:
    """The blind indexes of the person's documents."""
    rows = conn.execute(
        "SELECT blind_index FROM documents WHERE person_id = %(p)s", {"p": person_id}
    ).fetchall()
    return [bytes(r[0]) for r in rows]


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
        "INSERT INTO captures (id, seq, person_id, image, template, quality, station,"
        " created_at, source) VALUES (%(id)s, %(seq)s, %(person_id)s, %(image)s, %(template)s,"
        " %(quality)s, %(station)s, %(created_at)s, %(source)s)",
        {**vars(row), "quality": Jsonb(row.quality), "image": image, "template": template},
    )


def captures_of(conn: Conn, person_id: UUID) -> list[CaptureRow]:
    with conn.cursor(row_factory=class_row(CaptureRow)) as cur:
        return cur.execute(
            "SELECT id, seq, person_id, quality, station, created_at, source FROM captures"
            " WHERE person_id = %(p)s ORDER BY seq",
            {"p": person_id},
        ).fetchall()


@dataclass(frozen=True)
class SealedImage:
    id: UUID
    image: bytes


def capture_image(conn: Conn, person_id: UUID, capture_id: UUID | None) -> SealedImage | None:
    """The person's capture ``capture_id`` with its sealed image, or their most recent
    capture when ``capture_id`` is None; None when there is none."""
    with conn.cursor(row_factory=class_row(SealedImage)) as cur:
        if capture_id is None:
            return cur.execute(
                "SELECT id, image FROM captures WHERE person_id = %(p)s ORDER BY seq DESC LIMIT 1",
                {"p": person_id},
            ).fetchone()
        return cur.execute(
            "SELECT id, image FROM captures WHERE person_id = %(p)s AND id = %(c)s",
            {"p": person_id, "c": capture_id},
        ).fetchone()


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


def newest_capture_seq(conn: Conn) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM captures").fetchone()
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
        "DELETE FROM guardians WHERE minor_id = %(p)s OR guardian_id = %(p)s", {"p": person_id}
    )
    conn.execute(
        "UPDATE watchlist SET active = false, deactivated_at = %(at)s,"
        " deactivated_by = 'erasure' WHERE person_id = %(p)s AND active",
        {"p": person_id, "at": at},
    )
    conn.execute(
        "UPDATE persons SET status = 'erased', surname = NULL, given_names = NULL,"
        " nationality = NULL, birth_date = NULL, sex = NULL, name_index = NULL,"
        " updated_at = %(at)s, erased_at = %(at)s WHERE id = %(p)s",
        {"p": person_id, "at": at},
    )
    return seqs


def insert_watchlist(conn: Conn, row: WatchlistRow) -> None:
    conn.execute(
        "INSERT INTO watchlist (id, person_id, reason, added_by, active, created_at, category)"
        " VALUES (%(id)s, %(person_id)s, %(reason)s, %(added_by)s, %(active)s, %(created_at)s,"
        " %(category)s)",
        vars(row),
    )


def active_watchlist(conn: Conn) -> list[WatchlistRow]:
    with conn.cursor(row_factory=class_row(WatchlistRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, reason, added_by, active, created_at, deactivated_at, category"
            " FROM watchlist WHERE active ORDER BY created_at, id"
        ).fetchall()


def deactivate_watchlist(conn: Conn, entry_id: UUID, by: str, at: datetime) -> WatchlistRow | None:
    with conn.cursor(row_factory=class_row(WatchlistRow)) as cur:
        return cur.execute(
            "UPDATE watchlist SET active = false, deactivated_at = %(at)s, deactivated_by = %(by)s"
            " WHERE id = %(id)s AND active RETURNING id, person_id, reason, added_by, active,"
            " created_at, deactivated_at, category",
            {"id": entry_id, "by": by, "at": at},
        ).fetchone()


def is_watchlisted(conn: Conn, person_id: UUID) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM watchlist WHERE person_id = %(p)s AND active)",
        {"p": person_id},
    ).fetchone()
    return bool(row and row[0])


def person_categories(conn: Conn, person_ids: list[UUID]) -> dict[UUID, list[str]]:
    """The categories of the active person alerts (watchlist entries) of these persons."""
    rows = conn.execute(
        "SELECT person_id, category FROM watchlist WHERE active AND person_id = ANY(%(p)s)"
        " ORDER BY created_at, id",
        {"p": person_ids},
    ).fetchall()
    found: dict[UUID, list[str]] = {}
    for person_id, category in rows:
        found.setdefault(UUID(str(person_id)), []).append(str(category))
    return found


def persons_by_name_index(conn: Conn, indexes: list[bytes]) -> list[UUID]:
    rows = conn.execute(
        "SELECT id FROM persons WHERE name_index = ANY(%(i)s) AND status = 'active'"
        " ORDER BY created_at, id",
        {"i": indexes},
    ).fetchall()
    return [UUID(str(r[0])) for r in rows]


def persons_without_name_index(conn: Conn, after: UUID, limit: int) -> list[PersonRow]:
    """Active persons enrolled before names were indexed, by id after ``after``."""
    with conn.cursor(row_factory=class_row(PersonRow)) as cur:
        return cur.execute(
            "SELECT id, status, surname, given_names, nationality, birth_date, sex, created_at,"
            " updated_at, name_index FROM persons WHERE name_index IS NULL"
            " AND status = 'active' AND id > %(after)s ORDER BY id LIMIT %(n)s",
            {"after": after, "n": limit},
        ).fetchall()


def set_name_index(conn: Conn, person_id: UUID, name_index: bytes) -> None:
    conn.execute(
        "UPDATE persons SET name_index = %(i)s WHERE id = %(p)s", {"i": name_index, "p": person_id}
    )


@dataclass(frozen=True)
class AlertRow:
    id: UUID
    kind: str
    category: str
    identity: bytes
    contents: bytes
    added_by: str
    created_at: datetime


@dataclass(frozen=True)
class AlertHit:
    id: UUID
    kind: str
    category: str


def insert_alert(conn: Conn, row: AlertRow, indexes: list[bytes]) -> bool:
    """False when the same alert (kind, identity, category) is active already."""
    inserted = conn.execute(
        "INSERT INTO alerts (id, kind, category, identity, contents, added_by, created_at)"
        " VALUES (%(id)s, %(kind)s, %(category)s, %(identity)s, %(contents)s, %(added_by)s,"
        " %(created_at)s) ON CONFLICT (kind, identity, category) WHERE active DO NOTHING"
        " RETURNING id",
        vars(row),
    ).fetchone()
    if inserted is None:
        return False
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alert_indexes (blind_index, alert_id) VALUES (%s, %s)",
            [(index, row.id) for index in indexes],
        )
    return True


def import_document_alerts(conn: Conn, rows: list[AlertRow]) -> int:
    """Bulk-load document alerts (whose one index is their identity) with COPY through a
    staging table; alerts already active are skipped. Returns how many were added."""
    conn.execute(
        "CREATE TEMPORARY TABLE alerts_staging (LIKE alerts INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY alerts_staging (id, kind, category, identity, contents, added_by, created_at)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.set_types(["uuid", "text", "text", "bytea", "bytea", "text", "timestamptz"])
        for r in rows:
            copy.write_row(
                (r.id, r.kind, r.category, r.identity, r.contents, r.added_by, r.created_at)
            )
    added = conn.execute(
        "WITH added AS (INSERT INTO alerts (id, kind, category, identity, contents, added_by,"
        " created_at) SELECT DISTINCT ON (kind, identity, category) id, kind, category, identity,"
        " contents, added_by, created_at FROM alerts_staging ORDER BY kind, identity, category"
        " ON CONFLICT (kind, identity, category) WHERE active DO NOTHING"
        " RETURNING id, identity) INSERT INTO alert_indexes (blind_index, alert_id)"
        " SELECT identity, id FROM added"
    )
    return added.rowcount


def alert_hits(conn: Conn, indexes: list[bytes]) -> list[AlertHit]:
    """Active alerts any of these blind indexes names."""
    with conn.cursor(row_factory=class_row(AlertHit)) as cur:
        return cur.execute(
            "SELECT DISTINCT a.id, a.kind, a.category FROM alert_indexes i"
            " JOIN alerts a ON a.id = i.alert_id WHERE i.blind_index = ANY(%(i)s) AND a.active"
            " ORDER BY a.kind, a.category, a.id",
            {"i": indexes},
        ).fetchall()


def active_alerts(
    conn: Conn, limit: int, after_at: datetime | None, after_id: UUID | None
) -> list[AlertRow]:
    """Active document and name alerts after (after_at, after_id), oldest first."""
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        return cur.execute(
            "SELECT id, kind, category, identity, contents, added_by, created_at FROM alerts"
            " WHERE active AND (%(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s))"
            " ORDER BY created_at, id LIMIT %(n)s",
            {"at": after_at, "id": after_id, "n": limit},
        ).fetchall()


def active_watchlist_page(
    conn: Conn, limit: int, after_at: datetime | None, after_id: UUID | None
) -> list[WatchlistRow]:
    """Active person alerts after (after_at, after_id), oldest first."""
    with conn.cursor(row_factory=class_row(WatchlistRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, reason, added_by, active, created_at, deactivated_at, category"
            " FROM watchlist WHERE active"
            " AND (%(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s))"
            " ORDER BY created_at, id LIMIT %(n)s",
            {"at": after_at, "id": after_id, "n": limit},
        ).fetchall()


def deactivate_alert(conn: Conn, alert_id: UUID, by: str, at: datetime) -> bool:
    row = conn.execute(
        "UPDATE alerts SET active = false, deactivated_at = %(at)s, deactivated_by = %(by)s"
        " WHERE id = %(id)s AND active RETURNING id",
        {"id": alert_id, "by": by, "at": at},
    ).fetchone()
    return row is not None


@dataclass(frozen=True)
class GuardianRow:
    id: UUID
    minor_id: UUID
    guardian_id: UUID
    relationship: str
    evidence: bytes
    valid_until: date | None
    created_by: str
    created_at: datetime


def insert_guardian(conn: Conn, row: GuardianRow) -> None:
    conn.execute(
        "INSERT INTO guardians (id, minor_id, guardian_id, relationship, evidence, valid_until,"
        " created_by, created_at) VALUES (%(id)s, %(minor_id)s, %(guardian_id)s,"
        " %(relationship)s, %(evidence)s, %(valid_until)s, %(created_by)s, %(created_at)s)",
        vars(row),
    )


def guardians_of(conn: Conn, minor_id: UUID) -> list[GuardianRow]:
    with conn.cursor(row_factory=class_row(GuardianRow)) as cur:
        return cur.execute(
            "SELECT id, minor_id, guardian_id, relationship, evidence, valid_until, created_by,"
            " created_at FROM guardians WHERE minor_id = %(m)s ORDER BY created_at, id",
            {"m": minor_id},
        ).fetchall()


@dataclass(frozen=True)
class OverrideRow:
    id: UUID
    person_id: UUID
    capture_id: UUID
    candidates: list[UUID]
    note: bytes
    decided_by: str
    decided_at: datetime


def insert_override(conn: Conn, row: OverrideRow) -> None:
    conn.execute(
        "INSERT INTO dedup_overrides (id, person_id, capture_id, candidates, note, decided_by,"
        " decided_at) VALUES (%(id)s, %(person_id)s, %(capture_id)s, %(candidates)s, %(note)s,"
        " %(decided_by)s, %(decided_at)s)",
        vars(row),
    )


def overrides(conn: Conn, limit: int, after: datetime | None) -> list[OverrideRow]:
    with conn.cursor(row_factory=class_row(OverrideRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, capture_id, candidates, note, decided_by, decided_at"
            " FROM dedup_overrides WHERE %(after)s::timestamptz IS NULL OR decided_at < %(after)s"
            " ORDER BY decided_at DESC, id LIMIT %(n)s",
            {"after": after, "n": limit},
        ).fetchall()


def rectify_person(
    conn: Conn, person_id: UUID, sealed: dict[str, bytes], name_index: bytes, at: datetime
) -> None:
    """Replace the sealed biographic fields in ``sealed`` (keys among surname, given_names,
    nationality, birth_date, sex) and the name index of an active person."""
    conn.execute(
        "UPDATE persons SET surname = coalesce(%(surname)s, surname),"
        " given_names = coalesce(%(given_names)s, given_names),"
        " nationality = coalesce(%(nationality)s, nationality),"
        " birth_date = coalesce(%(birth_date)s, birth_date), sex = coalesce(%(sex)s, sex),"
        " name_index = %(name_index)s, updated_at = %(at)s"
        " WHERE id = %(p)s AND status = 'active'",
        {
            "surname": sealed.get("surname"),
            "given_names": sealed.get("given_names"),
            "nationality": sealed.get("nationality"),
            "birth_date": sealed.get("birth_date"),
            "sex": sealed.get("sex"),
            "name_index": name_index,
            "at": at,
            "p": person_id,
        },
    )


@dataclass(frozen=True)
class RectificationRow:
    """One rectification: the fields changed in clear, the old and new values (a JSON
    object of field to value) and the reason sealed with the person's data key."""

    id: UUID
    person_id: UUID
    fields: list[str]
    old_values: bytes
    new_values: bytes
    reason: bytes
    rectified_by: str
    role: str
    rectified_at: datetime


def insert_rectification(conn: Conn, row: RectificationRow) -> None:
    conn.execute(
        "INSERT INTO rectifications (id, person_id, fields, old_values, new_values, reason,"
        " rectified_by, role, rectified_at) VALUES (%(id)s, %(person_id)s, %(fields)s,"
        " %(old_values)s, %(new_values)s, %(reason)s, %(rectified_by)s, %(role)s,"
        " %(rectified_at)s)",
        vars(row),
    )


def rectifications_of(conn: Conn, person_id: UUID) -> list[RectificationRow]:
    with conn.cursor(row_factory=class_row(RectificationRow)) as cur:
        return cur.execute(
            "SELECT id, person_id, fields, old_values, new_values, reason, rectified_by, role,"
            " rectified_at FROM rectifications WHERE person_id = %(p)s"
            " ORDER BY rectified_at, id",
            {"p": person_id},
        ).fetchall()
