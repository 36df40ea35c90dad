"""Auditor routes: read the log with filters, verify the chain."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from audit import models
from audit import service as audit_service
from audit import store as audit_store
from core.auth import Auditor
from core.runtime import RuntimeDep

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("/events", name="audit.events.read")
def list_events(
    principal: Auditor,
    rt: RuntimeDep,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=200)] = None,
    resource_id: Annotated[str | None, Query(max_length=200)] = None,
    request_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> models.AuditPage:
    filters = audit_store.Filters(
        actor=actor,
        action=action,
        resource_id=resource_id,
        request_id=request_id,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
    events = audit_service.find(rt.pool, rt.keys, principal, filters)
    return models.AuditPage(
        events=[models.AuditEventOut.of(e) for e in events],
        next_after_seq=events[-1].seq if len(events) == limit else None,
    )


@router.get("/verify", name="audit.verify")
def verify(principal: Auditor, rt: RuntimeDep) -> models.VerifyOut:
    verdict = audit_service.verify(rt.pool, rt.keys, principal)
    return models.VerifyOut(
        ok=verdict.ok,
        events=verdict.events,
        first_bad_seq=verdict.first_bad_seq,
        reason=verdict.reason,
        head_hash=verdict.head_hash.hex(),
    )
