"""Schemas of the routes border/ serves directly: health, API clients, key rotation."""

from datetime import date, datetime
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from enrollment import models as enrollment_models
from visa import models as visa_models

Role = Literal["kiosk", "officer", "consular", "auditor", "admin", "statistician", "dpo"]


class Health(BaseModel):
    status: Literal["ok"]


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .@()-]+$")
    role: Role
    border_point: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    )


class ClientOut(BaseModel):
    client_id: UUID
    name: str
    role: str
    border_point: str | None
    created_at: datetime
    revoked_at: datetime | None


class ClientCreated(ClientOut):
    api_key: str = Field(description="Shown once; only its SHA-256 is stored.")


class RotationOut(BaseModel):
    version: int
    rewrapped: int


class ReasonOut(BaseModel):
    code: str
    detail: str
    grounds_for_refusal: bool


class Match(BaseModel):
    distance: float
    threshold: float
    matched: bool


Outcome = Literal["admit", "refuse", "protection"]
# Schengen Borders Code Annex V Part B: the letters of the standard refusal form.
Ground = Literal["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"]
ProtectionFlag = Literal["asylum_request", "possible_trafficking_victim", "unaccompanied_minor"]


class Resolution(BaseModel):
    outcome: Outcome
    grounds: list[str] | None = None
    protection: list[str] | None = None
    linked_reasons: list[ReasonOut] | None = Field(
        default=None, description="a link's re-judgement as the linked person's"
    )
    note: str | None
    resolved_by: str
    resolved_at: datetime


class CrossingOut(BaseModel):
    crossing_id: UUID
    person_id: UUID | None
    direction: Literal["entry", "exit"]
    border_point: str
    at: datetime
    decision: Literal["admit", "refer"]
    reasons: list[ReasonOut]
    match: Match | None
    stay: dict[str, Any] | None
    rule_set: str
    visa_id: UUID | None
    accompanied_by: UUID | None
    candidates: list[enrollment_models.Candidate] | None = Field(
        default=None,
        description="DOCUMENT_CHANGED: the enrolled persons the face matches (officers only)",
    )
    resolution: Resolution | None = None
    late: bool = Field(
        description="recorded more than 10 minutes after `at` (listed by GET "
        "/v1/crossings?late=true)"
    )
    chip: enrollment_models.ChipSummary | None = Field(
        default=None, description="the passport chip's check, when its files were presented"
    )


class KioskCrossingOut(BaseModel):
    """What a kiosk learns of the crossing it posted (DESIGN §12): the decision and the
    reasons shown to the traveller, alert reasons masked. No person id, stay figures, match
    distance or visa: an officer reads those through the crossing routes."""

    # Forbidding extras keeps an officer's full record from passing for this shape.
    model_config = ConfigDict(extra="forbid")

    crossing_id: UUID
    decision: Literal["admit", "refer"]
    reasons: list[ReasonOut]


class ResolutionIn(BaseModel):
    """An officer's resolution: ``refuse`` names its grounds (Annex V letters), ``protection``
    its flags; ``link_person_id`` joins a changed document to one of the candidates."""

    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    note: str = Field(min_length=1, max_length=2000)
    grounds: list[Ground] | None = Field(default=None, min_length=1, max_length=10)
    protection: list[ProtectionFlag] | None = Field(default=None, min_length=1, max_length=3)
    link_person_id: UUID | None = None

    @model_validator(mode="after")
    def _outcome_fields(self) -> Self:
        if self.outcome == "refuse" and not self.grounds:
            raise PydanticCustomError(
                "grounds_required",
                "a refusal names its grounds: the letters A-J of the standard form",
                {"field": "grounds"},
            )
        if self.outcome != "refuse" and self.grounds:
            raise PydanticCustomError(
                "grounds_not_allowed", "grounds go only with a refusal", {"field": "grounds"}
            )
        if self.outcome == "protection" and not self.protection:
            raise PydanticCustomError(
                "protection_required",
                "a protection hand-over names its flags (asylum_request, "
                "possible_trafficking_victim, unaccompanied_minor)",
                {"field": "protection"},
            )
        if self.outcome != "protection" and self.protection:
            raise PydanticCustomError(
                "protection_not_allowed",
                "protection flags go only with the protection outcome",
                {"field": "protection"},
            )
        return self


class StayOut(BaseModel):
    on: date
    window_start: date
    days_used: int
    days_remaining: int
    overstay: bool
    in_territory: bool
    authorised_until: date | None
    rule_set: str
    trace: dict[str, Any]


class Overstayer(BaseModel):
    person_id: UUID
    entry: date
    authorised_until: date | None
    overstay_days: int
    limits_exceeded: list[str]
    visa_id: UUID | None


class ExportCapture(BaseModel):
    capture_id: UUID
    media_type: Literal["image/jpeg", "image/png"] | None = Field(
        description="the image as enrolled, JPEG or PNG (told by its bytes); null when the "
        "capture was erased while the export ran"
    )
    image_base64: str | None


class ExportAuditEvent(BaseModel):
    """An audit event about the person: who did what, when and why (its detail, which may
    name other persons or alerts, is left out)."""

    seq: int
    at: datetime
    actor: str
    role: str | None
    action: str
    purpose: str | None
    outcome: str


class SubjectExport(BaseModel):
    """Everything held on a person (DESIGN §12 subject access), streamed as one JSON
    document; ``audit_events`` and ``captures`` come last."""

    person_id: UUID
    exported_at: datetime
    withheld: list[str] = Field(description="kinds of data held but not exported")
    withheld_note: str
    person: enrollment_models.SubjectPerson
    visas: list[visa_models.VisaOut]
    crossings: list[CrossingOut]
    audit_events: list[ExportAuditEvent]
    captures: list[ExportCapture]


class RetentionDue(BaseModel):
    """A person whose file retention erases on ``due_on`` (DESIGN §12): ids, dates and
    kinds only. ``reason``: ``crossing``, ``overstay``, ``refusal`` (the longest period
    that applies) or ``national`` (a host national's last capture goes)."""

    person_id: UUID
    due_on: date
    reason: Literal["crossing", "overstay", "refusal", "national"]


class RetentionDueOut(BaseModel):
    """The persons due within ``within_days`` of ``on`` (overdue ones included: the daily
    run has not reached them yet), soonest first; ``more`` when ``limit`` cut the list."""

    on: date
    within_days: int
    persons: list[RetentionDue]
    more: bool
