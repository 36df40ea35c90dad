"""Routes border/ serves directly: API clients and key rotation (admin), and the API's
own OpenAPI schema (any caller with a key)."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from audit import service as audit_service
from border import models, service
from core.auth import ROLES, Admin, Principal, require_role
from core.db import transaction
from core.runtime import RuntimeDep

# Every role: the schema holds no personal data, but like every /v1 route it needs a key.
AnyRole = Annotated[Principal, Depends(require_role(*ROLES))]

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


_SCHEMA_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The OpenAPI schema of this API (the same as `border openapi` prints)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.get(
    "/openapi.json",
    name="openapi.read",
    tags=["meta"],
    response_class=JSONResponse,
    responses=_SCHEMA_RESPONSE,
)
def openapi_schema(request: Request, principal: AnyRole, rt: RuntimeDep) -> JSONResponse:
    """The OpenAPI schema of this API, for any caller with a key (docs/api.md renders it)."""
    schema = request.app.openapi()
    with transaction(rt.pool) as conn:
        audit_service.record(conn, rt.keys, principal, "openapi.read")
    return JSONResponse(schema)
