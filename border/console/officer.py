"""The officer's pages: the referral queue with its resolution forms, identify by photo,
alerts, overstayers (with CSV export)."""

import csv
import io
from typing import Annotated, get_args
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from border import crossings
from border import models as border_models
from border.console import web
from border.crossing_api import PolicyDep
from core.errors import BorderError
from enrollment import alerts
from enrollment import models as enrollment_models
from enrollment import service as enrollment_service
from enrollment.api import BiometricsDep
from visa.rules import REFUSAL_GROUNDS

router = APIRouter()

Officer = Annotated[web.Staff, Depends(web.role("officer"))]
OfficerPost = Annotated[web.Staff, Depends(web.posting("officer"))]
QUEUE = 50
PROTECTION_FLAGS = {
    "asylum_request": "Asylum request",
    "possible_trafficking_victim": "Possible victim of trafficking",
    "unaccompanied_minor": "Unaccompanied minor",
}


def _queue_page(
    request: Request,
    staff: web.Staff,
    *,
    status_code: int = 200,
    errors: dict[str, dict[str, str]] | None = None,
    notes: dict[str, str] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    queue = crossings.open_referrals(staff.rt, staff.principal(), staff.user.border_point, QUEUE)
    return web.page(
        request,
        "referrals.html",
        staff,
        status_code=status_code,
        title="Referrals",
        queue=queue,
        grounds=REFUSAL_GROUNDS,
        protection=PROTECTION_FLAGS,
        errors=errors or {},
        notes=notes or {},
        done=done,
    )


@router.get("/referrals", name="console.referrals")
def referrals(request: Request, staff: Officer, done: str | None = None) -> HTMLResponse:
    """Open referrals, oldest first, each with the live capture beside the enrolled photo."""
    return _queue_page(request, staff, done=done)


@router.get("/crossings/{crossing_id}/live.jpg", name="console.crossing_image")
def live_capture(crossing_id: UUID, staff: Officer) -> Response:
    return web.image(crossings.live_image(staff.rt, staff.principal(), crossing_id))


@router.post("/referrals/{crossing_id}", name="console.referrals.resolve")
def resolve(
    request: Request,
    crossing_id: UUID,
    staff: OfficerPost,
    bio: BiometricsDep,
    policy: PolicyDep,
    outcome: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    grounds: Annotated[list[str] | None, Form(max_length=10)] = None,
    protection: Annotated[list[str] | None, Form(max_length=3)] = None,
    link_person_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    body = {
        "outcome": outcome or ("admit" if link_person_id else ""),
        "note": note.strip(),
        "grounds": grounds or None,
        "protection": protection or None,
        "link_person_id": link_person_id or None,
    }
    found: dict[str, str] = {}
    try:
        resolution = border_models.ResolutionIn.model_validate(body)
    except ValidationError as invalid:
        found = web.problems(invalid)
    else:
        try:
            crossings.resolve(staff.rt, bio, policy, staff.principal(), crossing_id, resolution)
        except BorderError as refused:
            found[str(refused.extra.get("field") or "outcome")] = refused.detail
    if found:
        return _queue_page(
            request,
            staff,
            status_code=422,
            errors={str(crossing_id): found},
            notes={str(crossing_id): note},
        )
    return web.redirect(f"/referrals?done={crossing_id}")


@router.get("/identify", name="console.identify")
def identify_page(request: Request, staff: Officer) -> HTMLResponse:
    return web.page(request, "identify.html", staff, title="Identify", errors={}, result=None)


@router.post("/identify", name="console.identify.submit")
def identify(
    request: Request,
    staff: OfficerPost,
    bio: BiometricsDep,
    photo: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    errors: dict[str, str] = {}
    result = None
    if photo is None or not photo.filename:
        errors["photo"] = "choose a photo"
    else:
        data = photo.file.read(staff.rt.settings.image_max_bytes + 1)
        try:
            result = enrollment_service.identify(staff.rt, bio, staff.principal(), image=data, k=5)
        except BorderError as refused:
            errors["photo"] = refused.detail
    return web.page(
        request,
        "identify.html",
        staff,
        status_code=422 if errors else 200,
        title="Identify",
        errors=errors,
        result=result,
    )


_ALERT = TypeAdapter(enrollment_models.AlertIn)


@router.get("/alerts", name="console.alerts")
def alerts_page(
    request: Request, staff: Officer, after: Annotated[str | None, Query(max_length=100)] = None
) -> HTMLResponse:
    return _alerts(request, staff, after=after)


def _alerts(
    request: Request,
    staff: web.Staff,
    *,
    after: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    listed = alerts.list_alerts(staff.rt, staff.principal(), limit=100, after=after)
    return web.page(
        request,
        "alerts.html",
        staff,
        status_code=status_code,
        title="Alerts",
        listed=listed,
        form=form or {},
        errors=errors or {},
        categories=get_args(enrollment_models.AlertCategory),
    )


@router.post("/alerts", name="console.alerts.add")
def add_alert(
    request: Request,
    staff: OfficerPost,
    bio: BiometricsDep,
    issuing_state: Annotated[str, Form(max_length=3)] = "",
    document_number: Annotated[str, Form(max_length=30)] = "",
    category: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """A document alert (lost or stolen, invalidated, …); person alerts are the watchlist."""
    form = {
        "issuing_state": issuing_state,
        "document_number": document_number,
        "category": category,
        "note": note,
    }
    errors: dict[str, str] = {}
    try:
        body = _ALERT.validate_python(
            {
                "kind": "document",
                "issuing_state": issuing_state.strip().upper(),
                "document_number": document_number.strip().upper(),
                "category": category,
                "note": note.strip() or None,
            }
        )
    except ValidationError as invalid:
        errors = web.problems(invalid)
    else:
        try:
            alerts.add(staff.rt, bio, staff.principal(), body)
        except BorderError as refused:
            errors[str(refused.extra.get("field") or "document_number")] = refused.detail
    if errors:
        return _alerts(request, staff, status_code=422, form=form, errors=errors)
    return web.redirect("/alerts")


@router.post("/alerts/{alert_id}/remove", name="console.alerts.remove")
def remove_alert(alert_id: UUID, staff: OfficerPost, bio: BiometricsDep) -> Response:
    alerts.remove(staff.rt, bio, staff.principal(), alert_id)
    return web.redirect("/alerts")


@router.get("/overstayers", name="console.overstayers")
def overstayers(request: Request, staff: Officer, policy: PolicyDep) -> HTMLResponse:
    found = crossings.overstayers(staff.rt, policy, staff.principal(), None)
    return web.page(request, "overstayers.html", staff, title="Overstayers", found=found)


@router.get("/overstayers.csv", name="console.overstayers.csv")
def overstayers_csv(staff: Officer, policy: PolicyDep) -> Response:
    found = crossings.overstayers(staff.rt, policy, staff.principal(), None)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["person_id", "entry", "authorised_until", "overstay_days", "limits_exceeded", "visa_id"]
    )
    for o in found:
        writer.writerow(
            web.csv_cell(v)
            for v in (o.person_id, o.entry, o.authorised_until, o.overstay_days,
                      " ".join(o.limits_exceeded), o.visa_id)
        )  # fmt: skip
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="overstayers.csv"'},
    )
