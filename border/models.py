"""Schemas of the routes border/ serves directly: health, API clients, key rotation."""

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["kiosk", "officer", "consular", "auditor", "admin"]


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


class Resolution(BaseModel):
    outcome: Literal["admit", "refuse"]
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
    resolution: Resolution | None = None


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["admit", "refuse"]
    note: str = Field(min_length=1, max_length=2000)


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
