"""Use cases border/ owns directly: API clients and master key rotation."""

import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

from audit import service as audit_service
from border import models
from core import auth
from core import store as core_store
from core.auth import Principal
from core.db import transaction
from core.errors import InvalidRequest, NotFound
from core.keys import rotation_target
from core.runtime import Runtime

log = logging.getLogger(__name__)


def _client_out(row: core_store.ClientRow) -> models.ClientOut:
    return models.ClientOut(
        client_id=row.id,
        name=row.name,
        role=row.role,
        border_point=row.border_point,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _client_detail(row: core_store.ClientRow) -> dict[str, str | None]:
    """What the chain records of a client: ids and codes, never its name or key."""
    return {"role": row.role, "border_point": row.border_point}


def create_client(rt: Runtime, principal: Principal, body: models.ClientIn) -> models.ClientCreated:
    """A new client and its key (shown once), sealed with its MAC and recorded in the chain.

    A kiosk key must name its border point (DESIGN §14): unbound, it could post anywhere.
    """
    if body.role == "kiosk" and body.border_point is None:
        raise InvalidRequest(
            "a kiosk key must be bound to its border point: give border_point"
            " (--border-point at the command line)",
            field="border_point",
        )
    api_key = auth.new_api_key()
    row = auth.sealed(
        rt.keys,
        core_store.ClientRow(
            id=uuid4(),
            name=body.name,
            role=body.role,
            border_point=body.border_point,
            key_sha256=auth.key_digest(api_key),
            created_at=datetime.now(UTC),
            revoked_at=None,
            mac=None,
        ),
    )
    with transaction(rt.pool) as conn:
        core_store.insert_client(conn, row)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "clients.create",
            resource_type="api_client",
            resource_id=row.id,
            detail=_client_detail(row),
        )
    return models.ClientCreated(**_client_out(row).model_dump(), api_key=api_key)


def list_clients(rt: Runtime, principal: Principal) -> list[models.ClientOut]:
    with transaction(rt.pool) as conn:
        rows = core_store.list_clients(conn)
        audit_service.record(conn, rt.keys, principal, "clients.list", detail={"n": len(rows)})
    return [_client_out(r) for r in rows]


def revoke_client(rt: Runtime, principal: Principal, client_id: UUID) -> models.ClientOut:
    """Revoke a key: it stops working at the next request (keys are looked up each time).

    Revoking twice keeps the first revocation. The MAC is rewritten only for a row whose
    MAC held: a tampered row is revoked all the same but stays unvouched for, so revoking
    it never blesses what an insider wrote into it.
    """
    with transaction(rt.pool) as conn:
        row = core_store.lock_client(conn, client_id)
        if row is None:
            raise NotFound("api client", client_id)
        if row.revoked_at is None:
            at = datetime.now(UTC)
            intact = auth.client_intact(rt.keys, row)
            row = replace(row, revoked_at=at)
            if intact:
                row = auth.sealed(rt.keys, row)
            else:
                log.warning("API client %s revoked; its row had failed its integrity check", row.id)
            core_store.set_client_revocation(conn, row.id, at, row.mac if intact else None)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "clients.revoke",
            resource_type="api_client",
            resource_id=row.id,
            detail=_client_detail(row),
        )
    return _client_out(row)


def seal_clients(
    rt: Runtime, principal: Principal, *, client_ids: Collection[UUID] | None = None
) -> list[models.ClientOut]:
    """Give a MAC to clients written before rows carried one, so their keys work again.

    Run by an operator on purpose, never at start-up: it vouches for the rows as they
    stand, so check them first (``border clients list``). Only rows without a MAC are
    touched (one whose MAC fails stays refused), only those named when ``client_ids`` is
    given, and never a kiosk bound to no border point. Each sealed client is a chain event.
    """
    sealed: list[models.ClientOut] = []
    with transaction(rt.pool) as conn:
        for row in core_store.lock_unsealed_clients(conn):
            if client_ids is not None and row.id not in client_ids:
                continue
            if row.role == "kiosk" and row.border_point is None:
                log.warning("kiosk client %s is bound to no border point: not sealed", row.id)
                continue
            row = auth.sealed(rt.keys, row)
            assert row.mac is not None
            core_store.set_client_mac(conn, row.id, row.mac)
            audit_service.record(
                conn,
                rt.keys,
                principal,
                "clients.seal",
                resource_type="api_client",
                resource_id=row.id,
                detail=_client_detail(row),
            )
            sealed.append(_client_out(row))
    return sealed


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
