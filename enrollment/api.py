"""Routes of enrollment/: persons and captures, identify, verify, watchlist, erasure."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status

from core.auth import Admin, ConsularOrOfficer, KioskOrOfficer, Officer
from core.runtime import RuntimeDep
from enrollment import models, service
from enrollment.intake import ImageTooLarge

router = APIRouter(tags=["enrollment"])


def get_biometrics(request: Request) -> service.Biometrics:
    bio: service.Biometrics | None = getattr(request.state, "bio", None)
    if bio is None:
        raise RuntimeError("no biometrics on the request state: build the app with create_app()")
    return bio


BiometricsDep = Annotated[service.Biometrics, Depends(get_biometrics)]
ImageField = Annotated[UploadFile, File(description="JPEG or PNG, told apart by its bytes")]


def read_image(upload: UploadFile, rt: RuntimeDep) -> bytes:
    """The uploaded bytes, refused as soon as they pass the byte budget."""
    limit = rt.settings.image_max_bytes
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(f"the image is over {limit} bytes", limit_bytes=limit)
    return data


@router.post("/persons", status_code=status.HTTP_201_CREATED, name="persons.create")
def create_person(
    image: ImageField,
    mrz: Annotated[str, Form(max_length=400, description="2 or 3 MRZ lines")],
    principal: ConsularOrOfficer,
    rt: RuntimeDep,
    bio: BiometricsDep,
) -> models.PersonCreated:
    return service.enroll(rt, bio, principal, image=read_image(image, rt), mrz_text=mrz)


@router.get("/persons/{person_id}", name="persons.read")
def read_person(person_id: UUID, principal: ConsularOrOfficer, rt: RuntimeDep) -> models.PersonOut:
    return service.get_person(rt, principal, person_id)


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


@router.delete("/persons/{person_id}", status_code=status.HTTP_204_NO_CONTENT, name="persons.erase")
def erase_person(person_id: UUID, principal: Admin, rt: RuntimeDep, bio: BiometricsDep) -> Response:
    service.erase(rt, bio, principal, person_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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
    return service.watchlist_add(rt, bio, principal, body)


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
