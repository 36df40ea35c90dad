"""Routes of the crossing flow: crossings, resolutions, stay figures, overstayers."""

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile, status

from border import crossings, models
from core.auth import ConsularOrOfficer, KioskOrOfficer, Officer
from core.errors import InvalidRequest
from core.runtime import RuntimeDep
from enrollment.api import BiometricsDep, ChipPart, read_chip, read_image
from visa.policy import Policy

router = APIRouter(tags=["crossings"])


def get_policy(request: Request) -> Policy:
    policy: Policy | None = getattr(request.state, "policy", None)
    if policy is None:
        raise RuntimeError("no policy on the request state: build the app with create_app()")
    return policy


PolicyDep = Annotated[Policy, Depends(get_policy)]


@router.post(
    "/crossings",
    status_code=status.HTTP_201_CREATED,
    name="crossings.create",
    responses={
        201: {
            "description": "the crossing recorded: an officer gets the whole record "
            "(CrossingOut); a kiosk gets only its id, the decision and the reasons "
            "(KioskCrossingOut)"
        }
    },
)
def create_crossing(
    image: Annotated[UploadFile, File(description="the live capture, JPEG or PNG")],
    mrz: Annotated[str, Form(max_length=400)],
    direction: Annotated[Literal["entry", "exit"], Form()],
    border_point: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
    principal: KioskOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
    policy: PolicyDep,
    at: Annotated[
        str | None, Form(max_length=40, description="ISO 8601 datetime with zone; default now")
    ] = None,
    accompanied_by: Annotated[
        UUID | None, Form(description="the accompanying adult's person id (officers)")
    ] = None,
    accompanied_by_crossing: Annotated[
        UUID | None,
        Form(description="the adult's own admitted crossing here, in the last 30 minutes"),
    ] = None,
    dg1: ChipPart = None,
    dg2: ChipPart = None,
    sod: ChipPart = None,
) -> models.CrossingOut | models.KioskCrossingOut:
    request = crossings.CrossingIn(
        image=read_image(image, rt),
        mrz=mrz,
        direction=direction,
        border_point=border_point,
        at=at,
        accompanied_by=accompanied_by,
        accompanied_by_crossing=accompanied_by_crossing,
        chip=read_chip(dg1, dg2, sod),
    )
    return crossings.cross(rt, bio, policy, principal, request)


@router.post("/crossings/{crossing_id}/resolution", name="crossings.resolve")
def resolve_crossing(
    crossing_id: UUID,
    body: models.ResolutionIn,
    principal: Officer,
    rt: RuntimeDep,
    bio: BiometricsDep,
    policy: PolicyDep,
) -> models.CrossingOut:
    return crossings.resolve(rt, bio, policy, principal, crossing_id, body)


@router.get("/crossings", name="crossings.read")
def list_crossings(
    principal: Officer,
    rt: RuntimeDep,
    person_id: Annotated[UUID | None, Query(description="a person's crossings")] = None,
    border_point: Annotated[
        str | None,
        Query(max_length=64, description="without person_id: that point's queue or late list"),
    ] = None,
    late: Annotated[
        bool,
        Query(description="the crossings recorded more than 10 minutes after their time"),
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[models.CrossingOut]:
    """A person's crossings; without ``person_id``, the referrals awaiting an officer, or
    with ``late=true`` the crossings recorded late, the most recently recorded first."""
    if person_id is not None:
        if late:
            raise InvalidRequest("give person_id or late, not both", field="late")
        return crossings.of_person(rt, principal, person_id)
    if late:
        return crossings.late_crossings(rt, principal, border_point, limit)
    return crossings.open_referrals(rt, principal, border_point, limit)


@router.get("/persons/{person_id}/stay", name="stay.read")
def person_stay(
    person_id: UUID,
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    policy: PolicyDep,
    on: Annotated[date | None, Query(description="YYYY-MM-DD; default today")] = None,
) -> models.StayOut:
    return crossings.person_stay(rt, policy, principal, person_id, on)


@router.get("/overstayers", name="overstayers.read")
def list_overstayers(
    principal: Officer,
    rt: RuntimeDep,
    policy: PolicyDep,
    on: Annotated[date | None, Query(description="YYYY-MM-DD; default today")] = None,
) -> list[models.Overstayer]:
    return crossings.overstayers(rt, policy, principal, on)
