"""Schemas of the enrollment routes."""

from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from visa.models import VisaOut


class DocumentOut(BaseModel):
    document_code: str
    issuing_state: str
    document_number: str
    expiry_date: date | None


class CaptureOut(BaseModel):
    capture_id: UUID
    station: str
    quality: dict[str, Any]
    created_at: datetime


class PersonCreated(BaseModel):
    person_id: UUID
    capture_id: UUID
    quality: dict[str, Any]
    document: DocumentOut


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
    added_by: str
    created_at: datetime
