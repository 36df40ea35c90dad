"""Schemas of the audit routes."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from audit import chain


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    purpose: str | None
    outcome: str
    detail: dict[str, Any]
    request_id: str | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, event: chain.StoredEvent) -> "AuditEventOut":
        return cls(
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            role=event.role,
            action=event.action,
            resource_type=event.resource_type,
            resource_id=event.resource_id,
            purpose=event.purpose,
            outcome=event.outcome,
            detail=event.detail,
            request_id=event.request_id,
            prev_hash=event.prev_hash.hex(),
            hash=event.hash.hex(),
        )


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_after_seq: int | None


class VerifyOut(BaseModel):
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None
    head_hash: str
