"""The auditor's pages: the audit log (newest first, filters, paging, actor names, chain
verification, CSV export) and the access report for one person."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from audit import chain
from audit import service as audit_service
from audit import store as audit_store
from border import users
from border.console import web
from core.errors import InvalidRequest
from enrollment import service as enrollment_service

router = APIRouter()

Auditor = Annotated[web.Staff, Depends(web.role("auditor"))]
PAGE = 50
CSV_MAX = 10_000


@dataclass(frozen=True)
class LogQuery:
    """The audit log's filters as the form gives them (text, kept to fill the form again)."""

    actor: str = ""
    action: str = ""
    person: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""

    def filters(self, staff: web.Staff, *, before: int | None, limit: int) -> audit_store.Filters:
        return audit_store.Filters(
            actor=_actor(staff, self.actor),
            action=self.action.strip() or None,
            person_id=_person(self.person),
            outcome=self.outcome.strip() or None,
            since=_day(self.since, "from"),
            until=_day(self.until, "to", end=True),
            before_seq=before,
            newest_first=True,
            limit=limit,
        )


def _actor(staff: web.Staff, text: str) -> str | None:
    """A username is looked up (``user:<id>``); anything else is taken as an actor id."""
    text = text.strip()
    if not text:
        return None
    found = users.find(staff.rt, text.lower())
    return f"user:{found.id}" if found is not None else text


def _person(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return str(UUID(text))
    except ValueError:
        raise InvalidRequest("a person is named by their id", field="person") from None


def _day(text: str, field: str, *, end: bool = False) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        moment = datetime.combine(day, time.min, tzinfo=UTC)
        return moment + timedelta(days=1) if end else moment
    except (ValueError, OverflowError):
        raise InvalidRequest("a date is written YYYY-MM-DD", field=field) from None


def _query(
    actor: Annotated[str, Query(max_length=200)] = "",
    action: Annotated[str, Query(max_length=200)] = "",
    person: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> LogQuery:
    return LogQuery(actor, action, person, outcome, since, until)


Filters = Annotated[LogQuery, Depends(_query)]


def _names(staff: web.Staff, events: list[chain.StoredEvent]) -> dict[str, str]:
    with staff.rt.pool.connection() as conn:
        return users.names(conn, {e.actor for e in events})


@router.get("/audit", name="console.audit")
def audit_log(
    request: Request,
    staff: Auditor,
    query: Filters,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    errors: dict[str, str] = {}
    events: list[chain.StoredEvent] = []
    try:
        filters = query.filters(staff, before=before, limit=PAGE)
    except InvalidRequest as refused:
        errors[str(refused.extra.get("field", ""))] = refused.detail
    else:
        events = audit_service.find(staff.rt.pool, staff.rt.keys, staff.principal(), filters)
    older = None
    if len(events) == PAGE:
        params = {**dict(request.query_params), "before": str(events[-1].seq)}
        older = f"{web.PREFIX}/audit?{urlencode(params)}"
    return web.page(
        request,
        "audit.html",
        staff,
        status_code=422 if errors else 200,
        title="Audit log",
        query=query,
        events=events,
        names=_names(staff, events),
        older=older,
        errors=errors,
        csv_query=request.url.query,
    )


@router.get("/audit.csv", name="console.audit.csv")
def audit_csv(staff: Auditor, query: Filters) -> Response:
    filters = query.filters(staff, before=None, limit=CSV_MAX)
    events = audit_service.find(staff.rt.pool, staff.rt.keys, staff.principal(), filters)
    names = _names(staff, events)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["seq", "at", "actor", "actor_name", "role", "action", "resource_type", "resource_id",
         "purpose", "outcome", "request_id", "hash"]
    )  # fmt: skip
    for e in events:
        writer.writerow(
            web.csv_cell(v)
            for v in (e.seq, e.at.isoformat(), e.actor, names.get(e.actor), e.role, e.action,
                      e.resource_type, e.resource_id, e.purpose, e.outcome, e.request_id,
                      e.hash.hex())
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="audit-events.csv"'},
    )


@router.post("/audit/verify", name="console.audit.verify")
def verify_chain(
    request: Request, staff: Annotated[web.Staff, Depends(web.posting("auditor"))]
) -> HTMLResponse:
    verdict = audit_service.verify(staff.rt.pool, staff.rt.keys, staff.principal())
    return web.page(request, "verify.html", staff, title="Audit chain", verdict=verdict)


@router.get("/access-report", name="console.access_report")
def access_report(
    request: Request,
    staff: Auditor,
    person: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    """Who read or changed one person's records, when, why."""
    errors: dict[str, str] = {}
    events: list[chain.StoredEvent] = []
    if person.strip():
        try:
            filters = audit_store.Filters(
                person_id=_person(person), newest_first=True, limit=CSV_MAX
            )
        except InvalidRequest as refused:
            errors["person"] = refused.detail
        else:
            events = audit_service.find(staff.rt.pool, staff.rt.keys, staff.principal(), filters)
    return web.page(
        request,
        "access_report.html",
        staff,
        status_code=422 if errors else 200,
        title="Access report",
        person=person.strip(),
        events=events,
        names=_names(staff, events),
        errors=errors,
    )


@router.get("/dedup-overrides", name="console.dedup_overrides")
def dedup_overrides(request: Request, staff: Auditor) -> HTMLResponse:
    """Enrollments an officer made over dedup candidates: who, when, which candidates."""
    found = enrollment_service.list_overrides(
        staff.rt, staff.principal(), limit=CSV_MAX, before=None
    )
    with staff.rt.pool.connection() as conn:
        names = users.names(conn, {o.decided_by for o in found})
    return web.page(
        request, "overrides.html", staff, title="Dedup overrides", found=found, names=names
    )
