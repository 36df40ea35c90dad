"""The hash chain over audit events, pure: canonical form, link hash, verification.

``hash = HMAC-SHA256(chain key, prev_hash || canonical(event))``. The canonical form is
compact JSON with sorted keys; times are UTC with microseconds, as PostgreSQL keeps them.
The request id is in it when the event has one.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from core import crypto

GENESIS = bytes(32)

Reason = Literal["missing", "broken_link", "altered"]


@dataclass(frozen=True)
class Event:
    seq: int
    at: datetime
    actor: str
    role: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    purpose: str | None
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)
    # The HTTP request the event was written in (none from the command line).
    request_id: str | None = None


@dataclass(frozen=True)
class StoredEvent(Event):
    prev_hash: bytes = GENESIS
    hash: bytes = GENESIS


def canonical(event: Event) -> bytes:
    body: dict[str, Any] = {
        "seq": event.seq,
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "purpose": event.purpose,
        "outcome": event.outcome,
        "detail": event.detail,
    }
    # Only when there is one: events written before request ids were kept hash as they did.
    if event.request_id is not None:
        body["request_id"] = event.request_id
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link(key: bytes, prev_hash: bytes, event: Event) -> bytes:
    return crypto.mac(key, prev_hash + canonical(event))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: Reason | None = None
    head_hash: bytes = GENESIS


def verify(key: bytes, events: Iterable[StoredEvent]) -> Verdict:
    """Walk the chain from seq 1 and name the first event that is missing, out of place or
    altered. ``events`` must come in seq order."""
    expected, prev, count = 1, GENESIS, 0
    for event in events:
        if event.seq != expected:
            # A gap: the event at ``expected`` was removed (or seqs were rewritten).
            return Verdict(False, count, expected, "missing", prev)
        if event.prev_hash != prev:
            return Verdict(False, count, event.seq, "broken_link", prev)
        if not crypto.hmac_equal(link(key, prev, event), event.hash):
            return Verdict(False, count, event.seq, "altered", prev)
        prev, expected, count = event.hash, expected + 1, count + 1
    return Verdict(True, count, None, None, prev)
