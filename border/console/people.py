"""Consular staff's and officers' pages about people: search, the person page (asked a
purpose once per person per session), photos, enrollment, visas."""

import base64
from datetime import date, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from border import crossings, users
from border.console import web
from border.crossing_api import PolicyDep
from core.errors import BorderError, Forbidden, InvalidRequest
from enrollment import alerts, intake
from enrollment import models as enrollment_models
from enrollment import service as enrollment_service
from enrollment.api import BiometricsDep
from visa import models as visa_models
from visa import service as visa_service

router = APIRouter()

PeopleStaff = Annotated[web.Staff, Depends(web.role("consular", "officer"))]
PeoplePost = Annotated[web.Staff, Depends(web.posting("consular", "officer"))]
ConsularPost = Annotated[web.Staff, Depends(web.posting("consular"))]


@router.get("/search", name="console.search")
def search_page(request: Request, staff: PeopleStaff) -> HTMLResponse:
    return web.page(request, "search.html", staff, title="Search", form={}, found=None, errors={})


@router.post("/search", name="console.search.submit")
def search(
    request: Request,
    staff: PeoplePost,
    document: Annotated[str, Form(max_length=30)] = "",
    surname: Annotated[str, Form(max_length=100)] = "",
    given_names: Annotated[str, Form(max_length=100)] = "",
    birth_date: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    """A search is posted: a name, a document number or a birth date never travels in an
    address (which the browser's history and any proxy's log would keep)."""
    found: list[UUID] | None = None
    errors: dict[str, str] = {}
    try:
        born = date.fromisoformat(birth_date.strip()) if birth_date.strip() else None
    except ValueError:
        errors["birth_date"] = "a date is written YYYY-MM-DD"
    else:
        try:
            result = enrollment_service.find_persons(
                staff.rt,
                staff.principal(),
                document=document.strip() or None,
                surname=surname.strip() or None,
                given_names=given_names.strip() or None,
                birth_date=born,
            )
        except InvalidRequest as refused:
            errors[str(refused.extra.get("field") or "document")] = refused.detail
        else:
            found = [p.person_id for p in result.persons]
    form = {
        "document": document,
        "surname": surname,
        "given_names": given_names,
        "birth_date": birth_date,
    }
    return web.page(
        request,
        "search.html",
        staff,
        status_code=422 if errors else 200,
        title="Search",
        form=form,
        found=found,
        errors=errors,
    )


def _purpose(staff: web.Staff, person_id: UUID) -> str:
    """The purpose this session gave for this person; without one, nothing of theirs is
    read or changed."""
    purpose = users.purpose_for(staff.rt, staff.session, person_id)
    if purpose is None:
        raise Forbidden("open the person's page and give the purpose of access first")
    return purpose


def _purpose_or_prompt(request: Request, staff: web.Staff, person_id: UUID) -> str | HTMLResponse:
    """The purpose this session gave for this person, or the page asking for it."""
    purpose = users.purpose_for(staff.rt, staff.session, person_id)
    if purpose is not None:
        return purpose
    return web.page(
        request, "purpose.html", staff, title="Purpose of access", person_id=person_id, errors={}
    )


@router.post("/persons/{person_id}/purpose", name="console.purpose")
def give_purpose(
    request: Request,
    person_id: UUID,
    staff: PeoplePost,
    purpose: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        users.set_purpose(staff.rt, staff.session, person_id, purpose.strip())
    except InvalidRequest as refused:
        return web.page(
            request,
            "purpose.html",
            staff,
            status_code=422,
            title="Purpose of access",
            person_id=person_id,
            errors={"purpose": refused.detail},
        )
    return web.redirect(f"/persons/{person_id}")


def _timeline(stay: Any, on: date) -> list[dict[str, Any]]:
    """The 180 days of the stay window as cells: the day, and whether it counts as present
    (an SVG the template draws: no script, no inline style)."""
    present: set[date] = set()
    for counted in stay.trace.get("stays", []):
        start, end = counted.get("counted_from"), counted.get("counted_to")
        if start and end:
            day, last = date.fromisoformat(start), date.fromisoformat(end)
            while day <= last:
                present.add(day)
                day += timedelta(days=1)
    first = stay.window_start
    days = (on - first).days + 1
    return [
        {"day": first + timedelta(days=i), "present": first + timedelta(days=i) in present}
        for i in range(days)
    ]


@router.get("/persons/{person_id}", name="console.person")
def person(request: Request, person_id: UUID, staff: PeopleStaff, policy: PolicyDep) -> Response:
    purpose = _purpose_or_prompt(request, staff, person_id)
    if not isinstance(purpose, str):
        return purpose
    principal = staff.principal(purpose)
    record = enrollment_service.get_person(staff.rt, principal, person_id)
    stay = crossings.person_stay(staff.rt, policy, principal, person_id, None)
    history = (
        crossings.of_person(staff.rt, principal, person_id)
        if staff.user.role == "officer"
        else None
    )
    return web.page(
        request,
        "person.html",
        staff,
        title="Person",
        person=record,
        purpose=purpose,
        stay=stay,
        timeline=_timeline(stay, stay.on),
        crossings=history,
        visa_form={},
        errors={},
    )


@router.get("/persons/{person_id}/captures/{capture_id}.jpg", name="console.capture")
def capture_photo(person_id: UUID, capture_id: UUID, staff: PeopleStaff) -> Response:
    """An enrolled photo on the person's page: to consular staff and officers only, under
    the purpose given for the person, each view audited, never cached (the console's
    responses are no-store)."""
    _, image = enrollment_service.capture_image(
        staff.rt, staff.principal(_purpose(staff, person_id)), person_id, capture_id
    )
    return web.image(image)


# Where a person's latest photo is shown without their page being opened: beside a
# referral, an identification's candidates, an enrollment's duplicate candidates. The view
# is audited with the context as its purpose.
PHOTO_CONTEXTS = {
    "referral": "referral review",
    "identify": "identification candidates",
    "enrollment": "enrollment duplicate check",
}


@router.get("/persons/{person_id}/photo.jpg", name="console.photo")
def latest_photo(
    person_id: UUID,
    staff: PeopleStaff,
    context: Annotated[str, Query(alias="for", max_length=20)] = "",
) -> Response:
    """The person's most recent photo."""
    purpose = users.purpose_for(staff.rt, staff.session, person_id) or PHOTO_CONTEXTS.get(context)
    if purpose is None:
        raise Forbidden("open the person's page and give the purpose of access first")
    _, image = enrollment_service.capture_image(staff.rt, staff.principal(purpose), person_id)
    return web.image(image)


@router.post("/persons/{person_id}/visas", name="console.visas.issue")
def issue_visa(
    request: Request,
    person_id: UUID,
    staff: ConsularPost,
    policy: PolicyDep,
    visa_type: Annotated[str, Form(max_length=4)] = "",
    issuing_state: Annotated[str, Form(max_length=3)] = "",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    entries: Annotated[str, Form(max_length=10)] = "",
    duration_of_stay_days: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    form = {
        "visa_type": visa_type,
        "issuing_state": issuing_state,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "entries": entries,
        "duration_of_stay_days": duration_of_stay_days,
    }
    purpose = _purpose(staff, person_id)
    errors: dict[str, str] = {}
    try:
        body = visa_models.VisaIn.model_validate(
            {
                "person_id": str(person_id),
                "visa_type": visa_type.strip(),
                "issuing_state": issuing_state.strip().upper(),
                "valid_from": valid_from.strip(),
                "valid_until": valid_until.strip(),
                "entries": _entries(entries),
                "duration_of_stay_days": _whole(duration_of_stay_days),
            }
        )
    except ValidationError as invalid:
        errors = web.problems(invalid)
    else:
        try:
            visa_service.issue_visa(staff.rt, staff.principal(purpose), body)
        except InvalidRequest as refused:
            errors[str(refused.extra.get("field") or "visa_type")] = refused.detail
    if not errors:
        return web.redirect(f"/persons/{person_id}")
    principal = staff.principal(purpose)
    stay = crossings.person_stay(staff.rt, policy, principal, person_id, None)
    return web.page(
        request,
        "person.html",
        staff,
        status_code=422,
        title="Person",
        person=enrollment_service.get_person(staff.rt, principal, person_id),
        purpose=purpose,
        stay=stay,
        timeline=_timeline(stay, stay.on),
        crossings=None,
        visa_form=form,
        errors=errors,
    )


def _entries(text: str) -> int | str:
    text = text.strip().upper()
    return int(text) if text.isdigit() else text


def _whole(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text


@router.post("/persons/{person_id}/visas/{visa_id}/revoke", name="console.visas.revoke")
def revoke_visa(person_id: UUID, visa_id: UUID, staff: ConsularPost) -> Response:
    purpose = _purpose(staff, person_id)
    visa_service.revoke_visa(staff.rt, staff.principal(purpose), visa_id, person_id=person_id)
    return web.redirect(f"/persons/{person_id}")


ConsularOnly = Annotated[web.Staff, Depends(web.role("consular"))]


@router.get("/enroll", name="console.enroll")
def enroll_page(request: Request, staff: ConsularOnly) -> HTMLResponse:
    return web.page(request, "enroll.html", staff, title="Enroll", mrz="", errors={})


@router.post("/enroll", name="console.enroll.submit")
def enroll(
    request: Request,
    staff: ConsularPost,
    bio: BiometricsDep,
    photo: Annotated[UploadFile | None, File()] = None,
    mrz: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    errors: dict[str, str] = {}
    quality: list[dict[str, Any]] = []
    candidates: list[dict[str, Any]] = []
    new_photo = ""
    data = b""
    if photo is None or not photo.filename:
        errors["photo"] = "choose the traveller's photo"
    else:
        limit = staff.rt.settings.image_max_bytes
        data = photo.file.read(limit + 1)
        if len(data) > limit:
            errors["photo"] = f"the photo is over {limit} bytes"
    if not mrz.strip():
        errors["mrz"] = "type or scan the document's machine-readable zone"
    if not errors:
        try:
            created = enrollment_service.enroll(
                staff.rt, bio, staff.principal("enrollment"), image=data, mrz_text=mrz
            )
        except BorderError as refused:
            field = "mrz" if refused.code in ("invalid_request",) else "photo"
            if refused.code == "duplicate_identity":
                candidates = list(refused.extra.get("candidates", []))
                kind = intake.sniff(data)
                new_photo = f"data:image/{kind};base64," + base64.b64encode(data).decode()
                field = "duplicate"
            quality = list(refused.extra.get("failed", []))
            errors[str(refused.extra.get("field") or field)] = refused.detail
        else:
            users.set_purpose(staff.rt, staff.session, created.person_id, "enrollment")
            return web.redirect(f"/persons/{created.person_id}")
    return web.page(
        request,
        "enroll.html",
        staff,
        status_code=409 if candidates else 422,
        title="Enroll",
        mrz=mrz,
        errors=errors,
        quality=quality,
        candidates=candidates,
        new_photo=new_photo,
    )


OfficerPost = Annotated[web.Staff, Depends(web.posting("officer"))]


@router.post("/persons/{person_id}/watchlist", name="console.watchlist.add")
def watchlist(
    person_id: UUID,
    staff: OfficerPost,
    bio: BiometricsDep,
    category: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Put the person on the watchlist (a person alert of that category)."""
    purpose = _purpose(staff, person_id)
    try:
        body = enrollment_models.PersonAlertIn.model_validate(
            {"kind": "person", "person_id": str(person_id), "category": category,
             "note": note.strip() or None}
        )  # fmt: skip
    except ValidationError as invalid:
        raise InvalidRequest(
            "; ".join(f"{k or 'alert'}: {v}" for k, v in web.problems(invalid).items()),
            field="category",
        ) from None
    alerts.add(staff.rt, bio, staff.principal(purpose), body)
    return web.redirect(f"/persons/{person_id}")
