"""SQL for audit_events, the only writer of that table."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb

from audit.chain import Event, StoredEvent
from core.db import Conn

# Appends take this transaction-scoped lock, so two transactions never read the same head
# and fork the chain; it is released at commit or rollback.
_CHAIN_LOCK = 0x626F7264_0002


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    action: str | None = None
    resource_id: str | None = None
    request_id: str | None = None
    outcome: str | None = None
    # A person: the events about them (resource_id) and those naming them in detail.
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    # Newest first (the console): events before this seq, highest first.
    before_seq: int | None = None
    newest_first: bool = False
    limit: int = 100


def lock_chain(conn: Conn) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))


def head(conn: Conn) -> tuple[int, bytes] | None:
    row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


def insert(conn: Conn, event: Event, prev_hash: bytes, hash_: bytes) -> None:
    conn.execute(
        "INSERT INTO audit_events (seq, at, actor, role, action, resource_type, resource_id,"
        " purpose, outcome, detail, request_id, prev_hash, hash) VALUES (%(seq)s, %(at)s,"
        " %(actor)s, %(role)s, %(action)s, %(resource_type)s, %(resource_id)s, %(purpose)s,"
        " %(outcome)s, %(detail)s, %(request_id)s, %(prev_hash)s, %(hash)s)",
        {
            "seq": event.seq,
            "at": event.at,
            "actor": event.actor,
            "role": event.role,
            "action": event.action,
            "resource_type": event.resource_type,
            "resource_id": event.resource_id,
            "purpose": event.purpose,
            "outcome": event.outcome,
            "detail": Jsonb(event.detail),
            "request_id": event.request_id,
            "prev_hash": prev_hash,
            "hash": hash_,
        },
    )


def _stored(
    seq: int,
    at: datetime,
    actor: str,
    role: str | None,
    action: str,
    resource_type: str | None,
    resource_id: str | None,
    purpose: str | None,
    outcome: str,
    detail: dict[str, Any],
    request_id: str | None,
    prev_hash: bytes,
    hash: bytes,
) -> StoredEvent:
    return StoredEvent(
        seq=seq,
        at=at,
        actor=actor,
        role=role,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        purpose=purpose,
        outcome=outcome,
        detail=detail,
        request_id=request_id,
        prev_hash=bytes(prev_hash),
        hash=bytes(hash),
    )


def find(conn: Conn, filters: Filters) -> list[StoredEvent]:
    order = sql.SQL("DESC" if filters.newest_first else "ASC")
    query = sql.SQL(
        "SELECT seq, at, actor, role, action, resource_type, resource_id, purpose, outcome,"
        " detail, request_id, prev_hash, hash FROM audit_events WHERE seq > %(after_seq)s"
        " AND (%(before_seq)s::bigint IS NULL OR seq < %(before_seq)s)"
        " AND (%(actor)s::text IS NULL OR actor = %(actor)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s)"
        " AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s)"
        " AND (%(request_id)s::text IS NULL OR request_id = %(request_id)s)"
        " AND (%(outcome)s::text IS NULL OR outcome = %(outcome)s)"
        " AND (%(person_id)s::text IS NULL OR resource_id = %(person_id)s"
        "      OR detail->>'person_id' = %(person_id)s)"
        " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
        " ORDER BY seq {order} LIMIT %(limit)s"
    ).format(order=order)
    with conn.cursor(row_factory=kwargs_row(_stored)) as cur:
        return cur.execute(
            query,
            {
                "after_seq": filters.after_seq,
                "before_seq": filters.before_seq,
                "actor": filters.actor,
                "action": filters.action,
                "resource_id": filters.resource_id,
                "request_id": filters.request_id,
                "outcome": filters.outcome,
                "person_id": filters.person_id,
                "since": filters.since,
                "until": filters.until,
                "limit": filters.limit,
            },
        ).fetchall()


def page(conn: Conn, after_seq: int, limit: int) -> list[StoredEvent]:
    """Events in seq order after ``after_seq``, for walking the whole chain in pages."""
    return find(conn, Filters(after_seq=after_seq, limit=limit))
