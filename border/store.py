"""SQL for crossings, the only writer of that table."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from core.db import Conn

# Namespace of the per-traveller advisory locks (two-key form: namespace, hash of id).
# enrollment/store.py takes the same key for a person (erasure): keep the two in step.
_TRAVELLER_LOCK = 0x626F_7264


@dataclass(frozen=True)
class CrossingRow:
    id: UUID
    person_id: UUID | None
    document_index: bytes | None
    direction: str
    border_point: str
    at: datetime
    day: date
    decision: str
    reasons: list[dict[str, Any]]
    match_distance: float | None
    match_threshold: float | None
    figures: dict[str, Any]
    rule_set: str
    visa_id: UUID | None
    accompanied_by: UUID | None
    recorded_by: str
    recorded_at: datetime
    outcome: str | None = None
    resolution_note: bytes | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    grounds: list[str] | None = None
    protection: list[str] | None = None
    candidates: list[dict[str, Any]] | None = None
    document_sealed: bytes | None = None
    # Recorded more than 10 minutes after its `at` (DESIGN §14): listed for officers.
    late: bool = False


@dataclass(frozen=True)
class MovementRow:
    """An admitted crossing: decided admit, or referred and resolved admit."""

    direction: str
    day: date
    visa_id: UUID | None


def lock_traveller(conn: Conn, key: bytes) -> None:
    """Serialise crossings of one traveller (by person id or document index) to commit,
    so two kiosks at once never both see the traveller outside and open two entries.

    The key is (namespace, hashtext of the hex of ``key``). Erasure takes the same lock
    on a person (``enrollment.store.lock_traveller(conn, person_id)``, which computes the
    same key for ``person_id.bytes``), so a crossing and an erasure of one person never
    interleave."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(ns)s, hashtext(encode(%(k)s, 'hex')))",
        {"ns": _TRAVELLER_LOCK, "k": key},
    )


def insert(conn: Conn, row: CrossingRow, *, live_image: bytes | None = None) -> None:
    """Record a crossing; ``live_image`` is a referral's live capture, already sealed (it
    stays out of :class:`CrossingRow`: lists of crossings never carry images)."""
    values = vars(row) | {
        "reasons": Jsonb(row.reasons),
        "figures": Jsonb(row.figures),
        "candidates": None if row.candidates is None else Jsonb(row.candidates),
        "live_image": live_image,
    }
    conn.execute(
        "INSERT INTO crossings (id, person_id, document_index, direction, border_point, at, day,"
        " decision, reasons, match_distance, match_threshold, figures, rule_set, visa_id,"
        " accompanied_by, recorded_by, recorded_at, candidates, document_sealed, late,"
        " live_image_sealed)"
        " VALUES (%(id)s, %(person_id)s, %(document_index)s, %(direction)s, %(border_point)s,"
        " %(at)s, %(day)s, %(decision)s, %(reasons)s, %(match_distance)s, %(match_threshold)s,"
        " %(figures)s, %(rule_set)s, %(visa_id)s, %(accompanied_by)s, %(recorded_by)s,"
        " %(recorded_at)s, %(candidates)s, %(document_sealed)s, %(late)s, %(live_image)s)",
        values,
    )


@dataclass(frozen=True)
class SealedImage:
    """A crossing's person (None when nobody is tied to it) and its sealed live capture
    (None when it keeps none: admitted, or recorded before captures were kept)."""

    person_id: UUID | None
    live_image_sealed: bytes | None


def sealed_image(conn: Conn, crossing_id: UUID) -> SealedImage | None:
    """None when there is no such crossing."""
    with conn.cursor(row_factory=class_row(SealedImage)) as cur:
        return cur.execute(
            "SELECT person_id, live_image_sealed FROM crossings WHERE id = %(id)s",
            {"id": crossing_id},
        ).fetchone()


@dataclass(frozen=True)
class SealedParts:
    """What a crossing tied to no person holds sealed under a key of its own."""

    id: UUID
    resolution_note: bytes | None
    live_image_sealed: bytes | None
    document_sealed: bytes | None


_SEALED_PARTS: Final = (
    "SELECT id, resolution_note, live_image_sealed, document_sealed FROM crossings"
)


def sealed_parts(conn: Conn, crossing_id: UUID) -> SealedParts | None:
    with conn.cursor(row_factory=class_row(SealedParts)) as cur:
        return cur.execute(_SEALED_PARTS + " WHERE id = %(id)s", {"id": crossing_id}).fetchone()


def unheld_admitted_parts(conn: Conn, document_index: bytes) -> list[SealedParts]:
    """The sealed parts of the crossings admitted on the document while nobody held it
    (the ones :func:`link` attaches) that hold anything sealed."""
    with conn.cursor(row_factory=class_row(SealedParts)) as cur:
        return cur.execute(
            _SEALED_PARTS + " WHERE person_id IS NULL AND document_index = %(i)s"
            " AND (decision = 'admit' OR outcome = 'admit') AND (resolution_note IS NOT NULL"
            " OR live_image_sealed IS NOT NULL OR document_sealed IS NOT NULL)",
            {"i": document_index},
        ).fetchall()


def reseal(conn: Conn, crossing_id: UUID, *, note: bytes | None, image: bytes | None) -> None:
    """Replace a crossing's note and live capture with the same sealed under another key;
    the MRZ kept for a link goes (the document is the person's once linked)."""
    conn.execute(
        "UPDATE crossings SET resolution_note = %(n)s, live_image_sealed = %(i)s,"
        " document_sealed = NULL WHERE id = %(id)s",
        {"id": crossing_id, "n": note, "i": image},
    )


_SELECT: Final = (
    "SELECT id, person_id, document_index, direction, border_point, at, day, decision, reasons,"
    " match_distance, match_threshold, figures, rule_set, visa_id, accompanied_by, recorded_by,"
    " recorded_at, outcome, resolution_note, resolved_by, resolved_at, grounds, protection,"
    " candidates, document_sealed, late FROM crossings"
)


def get(conn: Conn, crossing_id: UUID, *, lock: bool = False) -> CrossingRow | None:
    with conn.cursor(row_factory=class_row(CrossingRow)) as cur:
        if lock:
            return cur.execute(
                _SELECT + " WHERE id = %(id)s FOR UPDATE", {"id": crossing_id}
            ).fetchone()
        return cur.execute(_SELECT + " WHERE id = %(id)s", {"id": crossing_id}).fetchone()


def of_person(conn: Conn, person_id: UUID) -> list[CrossingRow]:
    with conn.cursor(row_factory=class_row(CrossingRow)) as cur:
        return cur.execute(
            _SELECT + " WHERE person_id = %(p)s ORDER BY at, recorded_at", {"p": person_id}
        ).fetchall()


def open_referrals(conn: Conn, border_point: str | None, limit: int) -> list[CrossingRow]:
    """Referred crossings no officer has resolved yet, oldest first."""
    with conn.cursor(row_factory=class_row(CrossingRow)) as cur:
        return cur.execute(
            _SELECT + " WHERE decision = 'refer' AND outcome IS NULL"
            " AND (%(bp)s::text IS NULL OR border_point = %(bp)s) ORDER BY at LIMIT %(n)s",
            {"bp": border_point, "n": limit},
        ).fetchall()


def late_crossings(conn: Conn, border_point: str | None, limit: int) -> list[CrossingRow]:
    """Crossings recorded late (DESIGN §14), the most recently recorded first."""
    with conn.cursor(row_factory=class_row(CrossingRow)) as cur:
        return cur.execute(
            _SELECT + " WHERE late AND (%(bp)s::text IS NULL OR border_point = %(bp)s)"
            " ORDER BY recorded_at DESC, id LIMIT %(n)s",
            {"bp": border_point, "n": limit},
        ).fetchall()


def movements(
    conn: Conn, person_id: UUID, document_index: bytes | None = None
) -> list[MovementRow]:
    """The person's admitted crossings, oldest first; with ``document_index``, also those
    admitted on that document while nobody held it."""
    with conn.cursor(row_factory=class_row(MovementRow)) as cur:
        return cur.execute(
            "SELECT direction, day, visa_id FROM crossings"
            " WHERE (person_id = %(p)s OR person_id IS NULL AND document_index = %(d)s)"
            " AND (decision = 'admit' OR outcome = 'admit') ORDER BY at, recorded_at",
            {"p": person_id, "d": document_index},
        ).fetchall()


def resolve(
    conn: Conn,
    crossing_id: UUID,
    outcome: str,
    note: bytes,
    by: str,
    at: datetime,
    *,
    grounds: list[str] | None = None,
    protection: list[str] | None = None,
) -> None:
    conn.execute(
        "UPDATE crossings SET outcome = %(o)s, resolution_note = %(n)s, resolved_by = %(by)s,"
        " resolved_at = %(at)s, grounds = %(g)s, protection = %(p)s WHERE id = %(id)s",
        {
            "id": crossing_id, "o": outcome, "n": note, "by": by, "at": at,
            "g": grounds, "p": protection,
        },
    )  # fmt: skip


def link(
    conn: Conn,
    crossing_id: UUID,
    person_id: UUID,
    *,
    visa_id: UUID | None,
    figures: dict[str, Any],
    distance: float,
    document_index: bytes,
) -> None:
    """Attach a DOCUMENT_CHANGED crossing to the person an officer linked it to, with the
    figures and visa of its re-evaluation; its kept MRZ goes (the document is the
    person's now). Crossings admitted on the same document while nobody held it are
    attached too, so their days count."""
    conn.execute(
        "UPDATE crossings SET person_id = %(p)s, visa_id = %(v)s, figures = %(f)s,"
        " match_distance = %(d)s, document_sealed = NULL WHERE id = %(id)s",
        {"id": crossing_id, "p": person_id, "v": visa_id, "f": Jsonb(figures), "d": distance},
    )
    conn.execute(
        "UPDATE crossings SET person_id = %(p)s WHERE person_id IS NULL"
        " AND document_index = %(i)s AND (decision = 'admit' OR outcome = 'admit')",
        {"p": person_id, "i": document_index},
    )


@dataclass(frozen=True)
class AdmittedRow:
    id: UUID
    direction: str
    at: datetime
    recorded_at: datetime


def admitted_of(conn: Conn, person_id: UUID) -> list[AdmittedRow]:
    """The person's admitted crossings with their ids and times, oldest first."""
    with conn.cursor(row_factory=class_row(AdmittedRow)) as cur:
        return cur.execute(
            "SELECT id, direction, at, recorded_at FROM crossings WHERE person_id = %(p)s"
            " AND (decision = 'admit' OR outcome = 'admit') ORDER BY at, recorded_at",
            {"p": person_id},
        ).fetchall()


def admitted_person_of(
    conn: Conn,
    crossing_id: UUID,
    *,
    border_point: str,
    direction: str,
    since: datetime,
    until: datetime,
) -> UUID | None:
    """The person of an admitted crossing at this point, in this direction, made between
    ``since`` and ``until``; None for any other crossing."""
    row = conn.execute(
        "SELECT person_id FROM crossings WHERE id = %(id)s AND border_point = %(bp)s"
        " AND direction = %(d)s AND at BETWEEN %(since)s AND %(until)s"
        " AND person_id IS NOT NULL AND (decision = 'admit' OR outcome = 'admit')",
        {"id": crossing_id, "bp": border_point, "d": direction, "since": since, "until": until},
    ).fetchone()
    return None if row is None else UUID(str(row[0]))


def persons_inside(conn: Conn, on: date) -> list[UUID]:
    """Persons whose last admitted crossing on or before ``on`` is an entry."""
    rows = conn.execute(
        "SELECT person_id FROM (SELECT DISTINCT ON (person_id) person_id, direction"
        " FROM crossings WHERE person_id IS NOT NULL AND day <= %(on)s"
        " AND (decision = 'admit' OR outcome = 'admit')"
        " ORDER BY person_id, at DESC, recorded_at DESC) last WHERE direction = 'entry'",
        {"on": on},
    ).fetchall()
    return [UUID(str(r[0])) for r in rows]
