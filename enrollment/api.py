"""Routes of enrollment/: persons and captures, identify, verify, watchlist, erasure."""

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from fastapi import (
    APIRouter,
    Body,
    Depends,
    File,
    Form,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)

from core.auth import (
    Auditor,
    ConsularOrDpo,
    ConsularOrOfficer,
    Dpo,
    KioskOrOfficer,
    Officer,
)
from core.errors import InvalidRequest
from core.runtime import RuntimeDep
from enrollment import alerts, chip_check, models, service
from enrollment.intake import ImageTooLarge

router = APIRouter(tags=["enrollment"])


def get_biometrics(request: Request) -> service.Biometrics:
    bio: service.Biometrics | None = getattr(request.state, "bio", None)
    if bio is None:
        raise RuntimeError("no biometrics on the request state: build the app with create_app()")
    return bio


BiometricsDep = Annotated[service.Biometrics, Depends(get_biometrics)]
# DESIGN §12: the data protection officer reads rectification histories; consular staff and
# the dpo rectify.
ImageField = Annotated[UploadFile, File(description="JPEG or PNG, told apart by its bytes")]


def read_image(upload: UploadFile, rt: RuntimeDep) -> bytes:
    """The uploaded bytes, refused as soon as they pass the byte budget."""
    limit = rt.settings.image_max_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"the image is over {limit} bytes", limit_bytes=limit)
    return data


ChipPart = Annotated[
    UploadFile | None, File(description="a passport chip file as read (binary, DESIGN §16)")
]


def read_chip(
    dg1: UploadFile | None, dg2: UploadFile | None, sod: UploadFile | None
) -> chip_check.ChipFiles:
    """The chip's files as posted. A part over ``PART_MAX_BYTES`` is not read further: it
    fails the chip's check (``part_size``), the traveller's outcome, not a refused post."""
    limit = chip_check.PART_MAX_BYTES
    parts: dict[str, bytes | None] = {}
    oversized = []
    for name, upload in (("dg1", dg1), ("dg2", dg2), ("sod", sod)):
        data = None if upload is None else upload.file.read(limit + 1)
        if data is not None and len(data) > limit:
            oversized.append(name)
            data = None
        parts[name] = data
    return chip_check.ChipFiles(
        dg1=parts["dg1"], dg2=parts["dg2"], sod=parts["sod"], oversized=tuple(oversized)
    )


@router.post("/persons", status_code=status.HTTP_201_CREATED, name="persons.create")
def create_person(
    image: ImageField,
    mrz: Annotated[str, Form(max_length=400, description="2 or 3 MRZ lines")],
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
    not_duplicate_of: Annotated[
        list[UUID] | None,
        Form(description="officers: dedup candidates compared and rejected (repeat the field)"),
    ] = None,
    note: Annotated[
        str | None, Form(max_length=2000, description="why the candidates are not this person")
    ] = None,
    dg1: ChipPart = None,
    dg2: ChipPart = None,
    sod: ChipPart = None,
    store_chip_face: Annotated[
        bool, Form(description="keep the chip's photo as a capture (a chip that passed)")
    ] = False,
) -> models.PersonCreated:
    override = None
    if not_duplicate_of:
        if note is None or not note.strip():
            raise InvalidRequest("an enrollment over dedup candidates needs a `note`", field="note")
        override = service.Override(frozenset(not_duplicate_of), note.strip())
    elif note is not None:
        raise InvalidRequest(
            "`note` goes with `not_duplicate_of`, the candidates rejected", field="note"
        )
    return service.enroll(
        rt, bio, principal, image=read_image(image, rt), mrz_text=mrz, override=override,
        chip=read_chip(dg1, dg2, sod), store_chip_face=store_chip_face,
    )  # fmt: skip


@router.get("/persons", name="persons.search")
def search_persons(
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    document: Annotated[str | None, Query(max_length=30, description="STATE:NUMBER")] = None,
    surname: Annotated[str | None, Query(max_length=100)] = None,
    given_names: Annotated[str | None, Query(max_length=100)] = None,
    birth_date: Annotated[date | None, Query(description="YYYY-MM-DD")] = None,
) -> models.PersonsFound:
    return service.find_persons(
        rt, principal, document=document, surname=surname, given_names=given_names,
        birth_date=birth_date,
    )  # fmt: skip


@router.post(
    "/persons/{person_id}/documents",
    status_code=status.HTTP_201_CREATED,
    name="documents.create",
)
def create_document(
    person_id: UUID,
    mrz: Annotated[str, Form(max_length=400, description="2 or 3 MRZ lines")],
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
    image: Annotated[
        UploadFile | None, File(description="optional live face, verified 1:1 first")
    ] = None,
) -> models.DocumentCreated:
    data = None if image is None else read_image(image, rt)
    return service.add_document(rt, bio, principal, person_id, mrz_text=mrz, image=data)


@router.post(
    "/persons/{person_id}/guardians",
    status_code=status.HTTP_201_CREATED,
    name="guardians.create",
)
def create_guardian(
    person_id: UUID, body: models.GuardianIn, principal: ConsularOrOfficer, rt: RuntimeDep
) -> models.GuardianOut:
    return service.add_guardian(rt, principal, person_id, body)


@router.get("/persons/{person_id}", name="persons.read")
def read_person(person_id: UUID, principal: ConsularOrOfficer, rt: RuntimeDep) -> models.PersonOut:
    return service.get_person(rt, principal, person_id)


@router.patch("/persons/{person_id}", name="persons.rectify")
def rectify_person(
    person_id: UUID, body: models.PersonPatch, principal: ConsularOrDpo, rt: RuntimeDep
) -> models.RectificationOut:
    """Rectify biographic fields with a reason; the old values are kept sealed in the
    person's rectification history."""
    return service.rectify(rt, principal, person_id, body)


@router.get("/persons/{person_id}/rectifications", name="rectifications.read")
def read_rectifications(
    person_id: UUID, principal: Dpo, rt: RuntimeDep
) -> models.RectificationsOut:
    """The person's rectifications, oldest first: who, when, why, old and new values. 404
    once the person is erased (the history is sealed with their shredded key)."""
    return service.rectifications(rt, principal, person_id)


@router.post(
    "/persons/{person_id}/captures", status_code=status.HTTP_201_CREATED, name="captures.create"
)
def create_capture(
    person_id: UUID,
    image: ImageField,
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
) -> models.CaptureCreated:
    return service.add_capture(rt, bio, principal, person_id, image=read_image(image, rt))


# DELETE /persons/{person_id} (erasure) is served by border/retention_api.py: it also
# clears the document's blind index from crossings, a table enrollment may not write.


@router.post("/identify", name="identify")
def identify(
    image: ImageField,
    principal: Officer,
    rt: RuntimeDep,
    bio: BiometricsDep,
    k: Annotated[int, Form(ge=1, le=50)] = 5,
) -> models.IdentifyOut:
    return service.identify(rt, bio, principal, image=read_image(image, rt), k=k)


@router.post("/verify", name="verify")
def verify(
    image: ImageField,
    person_id: Annotated[UUID, Form()],
    principal: KioskOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
) -> models.VerifyOut:
    return service.verify(rt, bio, principal, image=read_image(image, rt), person_id=person_id)


@router.post("/watchlist", status_code=status.HTTP_201_CREATED, name="watchlist.add")
def add_to_watchlist(
    body: models.WatchlistIn, principal: Officer, rt: RuntimeDep, bio: BiometricsDep
) -> models.WatchlistCreated:
    return service.watchlist_add(rt, bio, principal, body.person_id, reason=body.reason)


@router.get("/watchlist", name="watchlist.read")
def list_watchlist(principal: Officer, rt: RuntimeDep) -> list[models.WatchlistEntry]:
    return service.watchlist_list(rt, principal)


@router.delete(
    "/watchlist/{entry_id}", status_code=status.HTTP_204_NO_CONTENT, name="watchlist.remove"
)
def remove_from_watchlist(
    entry_id: UUID, principal: Officer, rt: RuntimeDep, bio: BiometricsDep
) -> Response:
    service.watchlist_remove(rt, bio, principal, entry_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/alerts", status_code=status.HTTP_201_CREATED, name="alerts.add")
def add_alert(
    body: Annotated[models.AlertIn, Body()],
    principal: Officer,
    rt: RuntimeDep,
    bio: BiometricsDep,
) -> models.AlertCreated:
    return alerts.add(rt, bio, principal, body)


@router.get("/alerts", name="alerts.read")
def list_alerts(
    principal: Officer,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=100, description="a page's next_after")] = None,
) -> models.AlertsOut:
    return alerts.list_alerts(rt, principal, limit=limit, after=after)


@router.delete("/alerts/{alert_id}", status_code=status.HTTP_204_NO_CONTENT, name="alerts.remove")
def remove_alert(
    alert_id: UUID, principal: Officer, rt: RuntimeDep, bio: BiometricsDep
) -> Response:
    alerts.remove(rt, bio, principal, alert_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/dedup-overrides", name="dedup_overrides.read")
def list_dedup_overrides(
    principal: Auditor,
    rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[datetime | None, Query(description="decided before this instant")] = None,
) -> list[models.OverrideOut]:
    """Enrollments an officer made over dedup candidates: who, when, which candidates."""
    return service.list_overrides(rt, principal, limit=limit, before=before)
