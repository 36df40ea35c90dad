"""Routes border/ serves directly: API clients and key rotation (admin)."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response, status

from border import models, service
from core.auth import Admin
from core.runtime import RuntimeDep

router = APIRouter(tags=["admin"])


@router.post("/clients", status_code=status.HTTP_201_CREATED, name="clients.create")
def create_client(
    body: Annotated[models.ClientIn, Body()], principal: Admin, rt: RuntimeDep
) -> models.ClientCreated:
    return service.create_client(rt, principal, body)


@router.get("/clients", name="clients.list")
def list_clients(principal: Admin, rt: RuntimeDep) -> list[models.ClientOut]:
    return service.list_clients(rt, principal)


@router.delete(
    "/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT, name="clients.revoke"
)
def revoke_client(client_id: UUID, principal: Admin, rt: RuntimeDep) -> Response:
    service.revoke_client(rt, principal, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/keys/rotate", name="keys.rotate")
def rotate_keys(principal: Admin, rt: RuntimeDep) -> models.RotationOut:
    return service.rotate_keys(rt, principal)
