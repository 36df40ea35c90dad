"""Use cases of the audit log: append an event in the caller's transaction, read, verify,
and fold the refusals of unauthenticated callers into a bounded number of events."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from audit import chain
from audit import store as audit_store
from core import logs
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
    it records. The event carries the id of the HTTP request it is written in, if any.
    ``detail`` holds ids, codes and figures, never names or biometrics.
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
        request_id=logs.current_request_id(),
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


ANONYMOUS = "anonymous"
SUMMARY_ACTION = "refusals.unauthenticated"


@dataclass(frozen=True)
class RefusalCount:
    """Refused requests of callers without a valid key, counted since ``since``: of one
    address, or (``address`` None) a summary of ``addresses`` addresses."""

    refused: int
    codes: dict[str, int]
    since: datetime
    address: str | None = None
    addresses: int = 1
    # The busiest addresses of a summary, most refusals first.
    top: tuple[tuple[str, int], ...] = ()

    def detail(self) -> dict[str, Any]:
        """Counts and codes (``"401 unauthorized": 12``), never a request's content."""
        detail: dict[str, Any] = {
            "refused": self.refused,
            "codes": dict(sorted(self.codes.items())),
            "since": self.since.astimezone(UTC).isoformat(timespec="seconds"),
        }
        if self.address is None:
            detail["addresses"] = self.addresses
            detail["top"] = dict(self.top)
        return detail


_TOP = 10


@dataclass
class _Pending:
    """One address: when its last event was written, and what was refused since."""

    last_event: float | None = None
    refused: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    since: datetime | None = None

    def add(self, codes: Counter[str] | dict[str, int], at: datetime) -> None:
        self.refused += sum(codes.values())
        self.codes.update(codes)
        self.since = at if self.since is None else min(self.since, at)

    def take(self, address: str) -> RefusalCount:
        assert self.since is not None
        count = RefusalCount(self.refused, dict(self.codes), self.since, address)
        self.refused, self.codes, self.since = 0, Counter(), None
        return count


def _summary(counts: list[RefusalCount]) -> RefusalCount | None:
    """One count over several addresses (and earlier summaries), or None when empty."""
    counts = [c for c in counts if c.refused]
    if not counts:
        return None
    codes: Counter[str] = Counter()
    top: Counter[str] = Counter()
    for c in counts:
        codes.update(c.codes)
        top.update({c.address: c.refused} if c.address is not None else dict(c.top))
    return RefusalCount(
        refused=sum(c.refused for c in counts),
        codes=dict(codes),
        since=min(c.since for c in counts),
        addresses=sum(c.addresses for c in counts),
        top=tuple(top.most_common(_TOP)),
    )


class RefusalTally:
    """Refusals of callers without a valid key (no key, a bad one, an unknown route),
    folded so that they reach the chain as at most one event per address per window
    (DESIGN §14), never one event each, whatever the flood.

    ``note`` counts a refusal and returns the counts due to be written now: the address's
    count since its last event when the window has passed since then (its first refusal
    otherwise starts a window); nothing when it is within the window. What an address
    refuses within its window is written with its next event, or swept into one summary
    once its window has passed (the sweep runs at most once a window), or at shutdown
    (``drain``). A count whose write failed is given back (``restore``) and written
    later, so none is lost silently.

    Memory and the chain are bounded whatever the number of addresses: at most
    ``max_addresses`` are tracked (at the cap, the expired ones are swept; if all are
    recent, all are summarised and forgotten), and at most ``max_events`` address events
    are written per window (beyond, counts wait for the sweep's summary).

    Per process and thread-safe (routes run in a threadpool): counts change under a lock;
    the caller writes the returned counts after it is released. With several workers each
    keeps its own tally, so an address may get one event per worker per window.
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        max_addresses: int = 10_000,
        max_events: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.max_events = max_events
        self.clock = clock
        self._entries: dict[str, _Pending] = {}
        self._carried: list[RefusalCount] = []
        self._last_sweep: float | None = None
        self._budget_start: float | None = None
        self._events = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def note(self, address: str, code: str, status: int) -> list[RefusalCount]:
        """Count one refused request; return what must be written now."""
        now, at = self.clock(), datetime.now(UTC)
        with self._lock:
            due: list[RefusalCount] = []
            entry = self._entries.get(address)
            if entry is None:
                if len(self._entries) >= self.max_addresses:
                    due += self._make_room(now)
                entry = self._entries[address] = _Pending()
            entry.add({f"{status} {code}": 1}, at)
            if self._expired(entry, now) and self._spend(now):
                entry.last_event = now
                due.append(entry.take(address))
            if self._last_sweep is None:
                self._last_sweep = now
            elif now - self._last_sweep >= self.window_s:
                due += self._sweep(now)
            return due

    def restore(self, count: RefusalCount) -> None:
        """Give back a count that could not be written: it goes with the address's next
        event, or the next summary."""
        with self._lock:
            entry = self._entries.get(count.address) if count.address is not None else None
            if entry is not None:
                entry.add(count.codes, count.since)
            else:
                # Merged at once, so a long outage keeps one carried summary, not a list.
                merged = _summary([*self._carried, count])
                self._carried = [] if merged is None else [merged]

    def drain(self) -> RefusalCount | None:
        """Everything not written yet, as one summary (at shutdown); the tally is emptied."""
        with self._lock:
            counts = [e.take(a) for a, e in self._entries.items() if e.refused]
            self._entries.clear()
            return self._summarise(counts)

    def _expired(self, entry: _Pending, now: float) -> bool:
        return entry.last_event is None or now - entry.last_event >= self.window_s

    def _spend(self, now: float) -> bool:
        if self._budget_start is None or now - self._budget_start >= self.window_s:
            self._budget_start, self._events = now, 0
        if self._events >= self.max_events:
            return False
        self._events += 1
        return True

    def _summarise(self, counts: list[RefusalCount]) -> RefusalCount | None:
        summary = _summary([*self._carried, *counts])
        self._carried = []
        return summary

    def _sweep(self, now: float) -> list[RefusalCount]:
        """Forget the addresses whose window has passed; their counts go in one summary."""
        self._last_sweep = now
        expired = [a for a, e in self._entries.items() if self._expired(e, now)]
        counts = []
        for address in expired:
            entry = self._entries.pop(address)
            if entry.refused:
                counts.append(entry.take(address))
        summary = self._summarise(counts)
        return [] if summary is None else [summary]

    def _make_room(self, now: float) -> list[RefusalCount]:
        due = self._sweep(now)
        if len(self._entries) >= self.max_addresses:
            # Every tracked address is recent: summarise them all and start afresh.
            counts = [e.take(a) for a, e in self._entries.items() if e.refused]
            self._entries.clear()
            summary = self._summarise(counts)
            due += [] if summary is None else [summary]
        return due


def record_refusals(
    conn: Conn,
    keys: Keyring,
    count: RefusalCount,
    *,
    action: str = SUMMARY_ACTION,
    outcome: str = "refused",
    detail: dict[str, Any] | None = None,
) -> int:
    """Append the event of a tally count: under the address (``resource_type``
    ``address``) for one address, or as a summary of several."""
    return append(
        conn,
        keys,
        actor=ANONYMOUS,
        role=None,
        purpose=None,
        action=action,
        outcome=outcome,
        resource_type=None if count.address is None else "address",
        resource_id=count.address,
        detail={**(detail or {}), **count.detail()},
    )
