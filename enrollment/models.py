"""Schemas of the enrollment routes."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from visa.models import VisaOut


class DocumentOut(BaseModel):
    document_id: UUID | None = None
    document_code: str
    issuing_state: str
    document_number: str
    expiry_date: date | None


class CaptureOut(BaseModel):
    capture_id: UUID
    station: str
    quality: dict[str, Any]
    created_at: datetime
    source: Literal["live", "chip"] = Field(
        default="live", description="the live camera, or the passport chip's photo (DG2)"
    )


class ChipSummary(BaseModel):
    """The passport chip's check (DESIGN §16), as officers see it."""

    passive_authentication: Literal["passed", "failed", "no_trust_anchor"]
    failed_check: str | None = Field(
        default=None, description="the check that failed (docs/documents.md lists them)"
    )
    face_distance: float | None = Field(
        default=None, description="the live face against the chip's photo"
    )


class PersonCreated(BaseModel):
    person_id: UUID
    capture_id: UUID
    quality: dict[str, Any]
    document: DocumentOut
    chip: ChipSummary | None = Field(
        default=None, description="when the chip's files were presented"
    )
    chip_capture_id: UUID | None = Field(
        default=None, description="the chip's photo, stored as a capture (store_chip_face)"
    )


class CaptureCreated(BaseModel):
    person_id: UUID
    capture_id: UUID
    quality: dict[str, Any]


class PersonOut(BaseModel):
    person_id: UUID
    status: str
    surname: str
    given_names: str
    nationality: str
    birth_date: date | None
    sex: str
    created_at: datetime
    watchlisted: bool
    documents: list[DocumentOut]
    captures: list[CaptureOut]
    visas: list[VisaOut]
    guardians: list["GuardianOut"] = []


class Candidate(BaseModel):
    person_id: UUID
    distance: float


class IdentifyOut(BaseModel):
    candidates: list[Candidate]
    threshold: float


class VerifyOut(BaseModel):
    match: bool
    distance: float
    threshold: float


class WatchlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person_id: UUID
    reason: str = Field(min_length=1, max_length=500)


class WatchlistCreated(BaseModel):
    entry_id: UUID


class WatchlistEntry(BaseModel):
    entry_id: UUID
    person_id: UUID
    reason: str
    category: str
    added_by: str
    created_at: datetime


class DocumentCreated(BaseModel):
    person_id: UUID
    document: DocumentOut


class PersonRef(BaseModel):
    person_id: UUID


class PersonsFound(BaseModel):
    persons: list[PersonRef]


AlertCategory = Literal[
    "lost_stolen_document",
    "invalidated_document",
    "entry_ban",
    "wanted",
    "missing_person",
    "watch",
]
# A person is not a document: their alerts take the four categories about people.
PersonCategory = Literal["entry_ban", "wanted", "missing_person", "watch"]
IcaoCode = Annotated[str, Field(pattern=r"^[A-Z]{1,3}$")]
Note = Annotated[str | None, Field(default=None, max_length=500)]


# Categories about a document itself, not about its holder.
DOCUMENT_CATEGORIES: Final = frozenset({"lost_stolen_document", "invalidated_document"})


@dataclass(frozen=True)
class AlertFact:
    """An alert that bears on a traveller: its kind (``document``, ``name``, ``person`` for
    the holder's own, ``face`` for another person's whom the live face matches on the
    watchlist) and its category. Never its note."""

    kind: str
    category: str


class DocumentAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["document"]
    issuing_state: IcaoCode
    document_number: str = Field(pattern=r"^[A-Z0-9]{1,20}$")
    category: AlertCategory
    note: Note = None


class PersonAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["person"]
    person_id: UUID
    category: PersonCategory
    note: Note = None


class NameAlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["name"]
    surname: str = Field(min_length=1, max_length=100)
    given_names: str = Field(default="", max_length=100)
    birth_date: str = Field(
        pattern=r"^\d{4}(-\d{2}-\d{2})?$", description="YYYY-MM-DD, or a bare YYYY"
    )
    category: AlertCategory
    note: Note = None


AlertIn = Annotated[DocumentAlertIn | PersonAlertIn | NameAlertIn, Field(discriminator="kind")]


class AlertCreated(BaseModel):
    alert_id: UUID
    kind: str


class AlertOut(BaseModel):
    alert_id: UUID
    kind: Literal["document", "person", "name"]
    category: str
    issuing_state: str | None = None
    document_number: str | None = None
    person_id: UUID | None = None
    surname: str | None = None
    given_names: str | None = None
    birth_date: str | None = None
    note: str | None = None
    added_by: str
    created_at: datetime


class AlertsOut(BaseModel):
    alerts: list[AlertOut]
    next_after: str | None


class GuardianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guardian_person_id: UUID
    relationship: Literal["parent", "legal_guardian", "authorised_adult"]
    evidence: str = Field(min_length=1, max_length=500)
    valid_until: date | None = None


class GuardianOut(BaseModel):
    guardian_link_id: UUID
    minor_id: UUID
    guardian_person_id: UUID
    relationship: str
    valid_until: date | None
    created_at: datetime


class OverrideOut(BaseModel):
    override_id: UUID
    person_id: UUID
    capture_id: UUID
    not_duplicate_of: list[UUID]
    decided_by: str
    decided_at: datetime


PersonOut.model_rebuild()


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
NameText = Annotated[str, Field(max_length=100)]


class PersonPatch(BaseModel):
    """A rectification of biographic data (DESIGN §12): the fields to change and why.
    Names are kept in their MRZ form (A-Z and single spaces: accents are dropped)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field(description="why the data is rectified, 1..500 characters")
    surname: NameText | None = Field(default=None, min_length=1)
    given_names: NameText | None = None
    nationality: IcaoCode | None = None
    birth_date: date | None = Field(default=None, description="YYYY-MM-DD")
    sex: Literal["M", "F", "X"] | None = None


class RectificationOut(BaseModel):
    rectification_id: UUID
    fields: list[str]
    old_values: dict[str, str]
    new_values: dict[str, str]
    reason: str
    rectified_by: str
    role: str
    rectified_at: datetime


class RectificationsOut(BaseModel):
    person_id: UUID
    rectifications: list[RectificationOut]


class SubjectPerson(BaseModel):
    """What enrollment holds on a person, for their subject-access export."""

    person_id: UUID
    status: str
    surname: str
    given_names: str
    nationality: str
    birth_date: date | None
    sex: str
    created_at: datetime
    updated_at: datetime
    documents: list[DocumentOut]
    captures: list[CaptureOut]
    guardians: list[GuardianOut]
    rectifications: list[RectificationOut]
