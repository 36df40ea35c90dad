"""SQL of retention (DESIGN §12): which files are due, the deletion of crossings (border
writes that table), and the record of each run (``retention_runs``, written only here).

Reads span the domains' tables (persons, captures, documents, visas): they choose whom
retention erases; every change to another package's table goes through that package's
service."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, LiteralString
from uuid import UUID

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from core.db import Conn

# One retention run at a time across processes and nodes (session advisory lock).
_RUN_LOCK: Final = 0x7265_7465  # "rete"


@dataclass(frozen=True)
class Periods:
    """The policy's ``[retention]`` periods, in the units the SQL takes."""

    crossing_years: int
    overstayer_years: int
    refusal_years: int


@dataclass(frozen=True)
class DueRow:
    """A person whose file is kept until ``due_on`` under ``reason``."""

    person_id: UUID
    status: str
    due_on: date
    reason: str


# Per person holding anything retention erases (an active file, or the crossings and visas
# an admin's erasure left): the day their file is kept until. The anchor is the latest of
# the enrollment day, the last crossing's day and the end of the latest visa's validity.
# An overstayer (an OVERSTAY ever recorded, or a last crossing, nationals' aside, that is
# an entry not refused: no exit recorded) is kept overstayer_years from it, anyone else
# crossing_years; a refusal keeps the file refusal_years from the refusal's day. The
# longest applies; on a tie the more specific reason (overstay, then refusal) is named.
_FACTS: Final[LiteralString] = """
WITH facts AS (
    SELECT p.id, p.status,
           greatest((p.created_at AT TIME ZONE 'UTC')::date,
                    (SELECT max(c.day) FROM crossings c WHERE c.person_id = p.id),
                    (SELECT max(v.valid_until) FROM visas v WHERE v.person_id = p.id)) AS anchor,
           (SELECT max(c.day) FROM crossings c
             WHERE c.person_id = p.id AND c.outcome = 'refuse') AS refused_on,
           EXISTS (SELECT 1 FROM crossings c WHERE c.person_id = p.id
                    AND c.reasons @> '[{"code": "OVERSTAY"}]') AS overstayed,
           coalesce((SELECT c.direction = 'entry' AND c.outcome IS DISTINCT FROM 'refuse'
                       FROM crossings c WHERE c.person_id = p.id
                        AND c.figures->>'regime' IS DISTINCT FROM 'national'
                      ORDER BY c.at DESC, c.recorded_at DESC LIMIT 1), false) AS inside
      FROM persons p
     WHERE {where}
), kept AS (
    SELECT id, status,
           (anchor + make_interval(years => %(crossing_years)s::int))::date AS by_crossing,
           CASE WHEN overstayed OR inside
                THEN (anchor + make_interval(years => %(overstayer_years)s::int))::date END
               AS by_overstay,
           (refused_on + make_interval(years => %(refusal_years)s::int))::date AS by_refusal
      FROM facts
), due AS (
    SELECT id, status, greatest(by_crossing, by_overstay, by_refusal) AS due_on,
           by_overstay, by_refusal
      FROM kept
)
SELECT id AS person_id, status, due_on,
       CASE WHEN by_overstay = due_on THEN 'overstay'
            WHEN by_refusal = due_on THEN 'refusal'
            ELSE 'crossing' END AS reason
  FROM due
 WHERE due_on <= %(until)s
 ORDER BY due_on, id
"""

# An erased person's crossings judged under the national regime go by their own period
# (:func:`crossings_expired`), not with a file.
_HOLDS_SOMETHING: Final[LiteralString] = (
    "(p.status = 'active'"
    " OR EXISTS (SELECT 1 FROM crossings c WHERE c.person_id = p.id"
    " AND c.figures->>'regime' IS DISTINCT FROM 'national')"
    " OR EXISTS (SELECT 1 FROM visas v WHERE v.person_id = p.id))"
)


def _params(periods: Periods, until: date, **more: Any) -> dict[str, Any]:
    return {
        "crossing_years": periods.crossing_years,
        "overstayer_years": periods.overstayer_years,
        "refusal_years": periods.refusal_years,
        "until": until,
        **more,
    }


def files_due(conn: Conn, periods: Periods, until: date) -> list[DueRow]:
    """Every person whose file is kept until ``until`` or earlier, soonest first."""
    query = _FACTS.replace("{where}", _HOLDS_SOMETHING)
    with conn.cursor(row_factory=class_row(DueRow)) as cur:
        return cur.execute(query, _params(periods, until)).fetchall()


def file_due(conn: Conn, periods: Periods, until: date, person_id: UUID) -> DueRow | None:
    """The person's row of :func:`files_due`, read again (under their locks)."""
    query = _FACTS.replace("{where}", "p.id = %(person)s AND " + _HOLDS_SOMETHING)
    with conn.cursor(row_factory=class_row(DueRow)) as cur:
        return cur.execute(query, _params(periods, until, person=person_id)).fetchone()


@dataclass(frozen=True)
class CaptureAge:
    person_id: UUID
    newest_on: date
    oldest_on: date


def national_candidates(conn: Conn, host_state: str) -> list[CaptureAge]:
    """Active persons who may be host nationals (a document the host state issued, or a
    crossing judged under the national regime), with the UTC days of their newest and
    oldest captures. The caller decides from their nationality, decrypted."""
    with conn.cursor(row_factory=class_row(CaptureAge)) as cur:
        return cur.execute(
            "SELECT c.person_id, max((c.created_at AT TIME ZONE 'UTC')::date) AS newest_on,"
            " min((c.created_at AT TIME ZONE 'UTC')::date) AS oldest_on"
            " FROM captures c JOIN persons p ON p.id = c.person_id AND p.status = 'active'"
            " WHERE EXISTS (SELECT 1 FROM documents d WHERE d.person_id = c.person_id"
            " AND d.issuing_state = %(host)s)"
            " OR EXISTS (SELECT 1 FROM crossings x WHERE x.person_id = c.person_id"
            " AND x.figures->>'regime' = 'national')"
            " GROUP BY c.person_id ORDER BY c.person_id",
            {"host": host_state},
        ).fetchall()


def crossings_expired(
    conn: Conn,
    periods: Periods,
    *,
    on: date,
    national_days: int,
    after: UUID | None,
    limit: int,
) -> list[tuple[UUID, str]]:
    """Crossings whose own period has run out by ``on``, with their kind: ``national``
    (judged under the national regime, whoever it is tied to) ``national_days`` after its
    day; ``unattributed`` (tied to nobody: a referral's live capture goes with it)
    refusal_years after it for a refusal, else crossing_years. The crossings of a person
    go with the person's file (:func:`files_due`). In id order, after ``after``."""
    rows = conn.execute(
        "SELECT x.id, CASE WHEN x.figures->>'regime' = 'national' THEN 'national'"
        " ELSE 'unattributed' END FROM crossings x"
        " WHERE (%(after)s::uuid IS NULL OR x.id > %(after)s::uuid)"
        " AND ((x.figures->>'regime' = 'national' AND x.day + %(national_days)s::int <= %(on)s)"
        " OR (x.person_id IS NULL AND x.figures->>'regime' IS DISTINCT FROM 'national'"
        " AND (x.day + make_interval(years => CASE WHEN x.outcome = 'refuse'"
        " THEN %(refusal_years)s::int ELSE %(crossing_years)s::int END))::date <= %(on)s))"
        " ORDER BY x.id LIMIT %(limit)s",
        _params(periods, on, on=on, national_days=national_days, after=after, limit=limit),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def delete_crossings(conn: Conn, ids: list[UUID]) -> list[UUID]:
    """Delete these crossings (those still there); returns the ids deleted."""
    rows = conn.execute(
        "DELETE FROM crossings WHERE id = ANY(%(ids)s) RETURNING id", {"ids": ids}
    ).fetchall()
    return [r[0] for r in rows]


def crossings_of(conn: Conn, person_id: UUID) -> list[UUID]:
    rows = conn.execute(
        "SELECT id FROM crossings WHERE person_id = %(p)s", {"p": person_id}
    ).fetchall()
    return [r[0] for r in rows]


def forget_document_index(conn: Conn, person_id: UUID) -> int:
    """Clear the blind index of the person's documents from crossings: theirs, and any
    tied to nobody that carries the index of a document they hold. Run before the
    documents are deleted. Returns the crossings changed."""
    cur = conn.execute(
        "UPDATE crossings SET document_index = NULL"
        " WHERE document_index IS NOT NULL AND (person_id = %(p)s OR document_index IN"
        " (SELECT blind_index FROM documents WHERE person_id = %(p)s))",
        {"p": person_id},
    )
    return cur.rowcount


def try_lock_run(conn: Conn) -> bool:
    """Take the run lock on this connection's session, if nobody holds it."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (_RUN_LOCK,)).fetchone()
    return bool(row and row[0])


def unlock_run(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s)", (_RUN_LOCK,))


@dataclass(frozen=True)
class RunRow:
    id: UUID
    on_date: date
    started_at: datetime
    finished_at: datetime
    actor: str
    summary: dict[str, Any]


def insert_run(conn: Conn, row: RunRow) -> None:
    conn.execute(
        "INSERT INTO retention_runs (id, on_date, started_at, finished_at, actor, summary)"
        " VALUES (%(id)s, %(on_date)s, %(started_at)s, %(finished_at)s, %(actor)s, %(summary)s)",
        vars(row) | {"summary": Jsonb(row.summary)},
    )


def last_run(conn: Conn) -> RunRow | None:
    """The run finished last (dry runs are not recorded)."""
    with conn.cursor(row_factory=class_row(RunRow)) as cur:
        return cur.execute(
            "SELECT id, on_date, started_at, finished_at, actor, summary FROM retention_runs"
            " ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
