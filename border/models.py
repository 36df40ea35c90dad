"""Schemas of the routes border/ serves directly: health, API clients, key rotation."""

from datetime import date, datetime
from typing import Any, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from enrollment import models as enrollment_models

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
