"""Use cases border/ owns directly: API clients and master key rotation."""

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID, uuid4

from audit import service as audit_service
from border import models
from core import auth
from core import store as core_store
from core.auth import Principal
from core.db import transaction
from core.errors import NotFound
from core.keys import rotation_target
from core.runtime import Runtime


def _client_out(row: core_store.ClientRow) -> models.ClientOut:
    return models.ClientOut(
        client_id=row.id,
        name=row.name,
        role=row.role,
        border_point=row.border_point,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_client(rt: Runtime, principal: Principal, body: models.ClientIn) -> models.ClientCreated:
    api_key = auth.new_api_key()
    row = core_store.ClientRow(
        id=uuid4(),
        name=body.name,
        role=body.role,
        border_point=body.border_point,
        created_at=datetime.now(UTC),
        revoked_at=None,
    )
    with transaction(rt.pool) as conn:
        core_store.insert_client(conn, row, auth.key_digest(api_key))
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "clients.create",
            resource_type="api_client",
            resource_id=row.id,
            detail={"role": row.role, "border_point": row.border_point},
        )
    return models.ClientCreated(**_client_out(row).model_dump(), api_key=api_key)


def list_clients(rt: Runtime, principal: Principal) -> list[models.ClientOut]:
    with transaction(rt.pool) as conn:
        rows = core_store.list_clients(conn)
        audit_service.record(conn, rt.keys, principal, "clients.list", detail={"n": len(rows)})
    return [_client_out(r) for r in rows]


def revoke_client(rt: Runtime, principal: Principal, client_id: UUID) -> models.ClientOut:
    """Revoke a key: it stops working at the next request (keys are looked up each time)."""
    with transaction(rt.pool) as conn:
        row = core_store.revoke_client(conn, client_id, datetime.now(UTC))
        if row is None:
            raise NotFound("api client", client_id)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "clients.revoke",
            resource_type="api_client",
            resource_id=row.id,
        )
    return _client_out(row)


def rotate_keys(
    rt: Runtime, principal: Principal, progress: Callable[[int, int], None] | None = None
) -> models.RotationOut:
    """Move every data key under the newest master key version, then record it."""
    target = rotation_target(rt.settings, rt.keys.master)
    with rt.pool.connection() as conn:
        rewrapped = rt.keys.rotate(conn, target, progress)
    with transaction(rt.pool) as conn:
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "keys.rotate",
            detail={"version": target.current, "rewrapped": rewrapped},
        )
    return models.RotationOut(version=target.current, rewrapped=rewrapped)
