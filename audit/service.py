"""Use cases of the audit log: append an event in the caller's transaction, read, verify."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from audit import chain
from audit import store as audit_store
from core.auth import Principal
from core.db import Conn, transaction
from core.keys import Keyring

_VERIFY_PAGE = 5000


def append(
    conn: Conn,
    keys: Keyring,
    *,
    actor: str,
    role: str | None,
    purpose: str | None,
    action: str,
    outcome: str,
    resource_type: str | None = None,
    resource_id: object = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one event inside the caller's transaction and return its seq.

    The chain lock is held until that transaction ends, so call this last, after the change
    it records. ``detail`` holds ids, codes and figures, never names or biometrics.
    """
    audit_store.lock_chain(conn)
    last = audit_store.head(conn)
    seq, prev_hash = (1, chain.GENESIS) if last is None else (last[0] + 1, last[1])
    event = chain.Event(
        seq=seq,
        at=datetime.now(UTC),
        actor=actor,
        role=role,
        action=action,
        resource_type=resource_type,
        resource_id=None if resource_id is None else str(resource_id),
        purpose=purpose,
        outcome=outcome,
        detail=detail or {},
    )
    audit_store.insert(conn, event, prev_hash, chain.link(keys.audit_chain_key, prev_hash, event))
    return seq


def record(
    conn: Conn,
    keys: Keyring,
    principal: Principal,
    action: str,
    *,
    outcome: str = "ok",
    resource_type: str | None = None,
    resource_id: object = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append the event for what an authenticated caller did."""
    return append(
        conn,
        keys,
        actor=principal.actor,
        role=principal.role,
        purpose=principal.purpose,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
        detail=detail,
    )


def _walk(pool: ConnectionPool[Conn]) -> Iterator[chain.StoredEvent]:
    after = 0
    while True:
        with pool.connection() as conn:
            rows = audit_store.page(conn, after, _VERIFY_PAGE)
        yield from rows
        if len(rows) < _VERIFY_PAGE:
            return
        after = rows[-1].seq


def verify(pool: ConnectionPool[Conn], keys: Keyring, principal: Principal) -> chain.Verdict:
    """Check the whole chain, page by page (see ``audit.chain.verify``), and record the
    check and its verdict at the end of the chain."""
    verdict = chain.verify(keys.audit_chain_key, _walk(pool))
    with transaction(pool) as conn:
        record(
            conn,
            keys,
            principal,
            "audit.verify",
            outcome="ok" if verdict.ok else "chain_broken",
            detail={"events": verdict.events, "first_bad_seq": verdict.first_bad_seq},
        )
    return verdict


def find(
    pool: ConnectionPool[Conn], keys: Keyring, principal: Principal, filters: audit_store.Filters
) -> list[chain.StoredEvent]:
    """Events matching ``filters``; the read is itself audited."""
    with transaction(pool) as conn:
        events = audit_store.find(conn, filters)
        record(
            conn,
            keys,
            principal,
            "audit.events.read",
            detail={"returned": len(events), "after_seq": filters.after_seq},
        )
    return events
