"""Schemas of the routes border/ serves directly: health, API clients, key rotation."""

from datetime import datetime
from typing import Literal
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
