"""API clients, keys and roles; every route is authenticated by default, deny by default."""

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, replace
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from core import store as core_store
from core.errors import Forbidden, InvalidRequest, RateLimited, Unauthorized
from core.runtime import get_runtime

ROLES = ("kiosk", "officer", "consular", "auditor", "admin")
KEY_PREFIX = "border_"
_PURPOSE = re.compile(r"^[\w .,:/()'-]{1,200}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling, and why: the audit log records each of these fields."""

    client_id: UUID | None
    role: str
    border_point: str | None
    purpose: str | None

    @property
    def actor(self) -> str:
        """The API client's id, or ``cli:<uid>`` for an operator at the command line."""
        return f"cli:{os.getuid()}" if self.client_id is None else str(self.client_id)


def command_line(purpose: str) -> Principal:
    """The operator running a ``border`` command: whoever can read the data directory and
    its key file holds every power, so the command line acts as admin."""
    return Principal(client_id=None, role="admin", border_point=None, purpose=purpose)


def new_api_key() -> str:
    """A random 256-bit key, URL-safe; shown once and stored only as its SHA-256."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode()).digest()


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    return key.strip()


def _purpose(request: Request) -> str | None:
    purpose = request.headers.get("x-purpose")
    if purpose is None or not purpose.strip():
        return None
    if not _PURPOSE.match(purpose.strip()):
        raise InvalidRequest(
            "X-Purpose must be 1-200 letters, digits, spaces or simple punctuation"
        )
    return purpose.strip()


def authenticate(request: Request) -> Principal:
    """Resolve the caller from its key; a missing, unknown or revoked key is a 401.

    The principal is left on ``request.state`` so that a refusal later in the request is
    still audited under the caller's name.
    """
    rt = get_runtime(request)
    address = f"addr:{request.client.host if request.client else 'unknown'}"
    header = request.headers.get("authorization", "")
    presented = f"key:{key_digest(header).hex()}"
    wait = rt.throttle.retry_after(address, presented)
    if wait is not None:
        raise RateLimited(
            f"too many failed authentications; retry in {wait:.0f} s",
            retry_after_s=round(wait, 1),
        )
    try:
        key = _bearer(request)
    except Unauthorized:
        rt.throttle.failed(address, presented)
        raise
    with rt.pool.connection() as conn:
        client = core_store.client_by_key(conn, key_digest(key))
    if client is None:
        rt.throttle.failed(address, presented)
        raise Unauthorized("unknown or revoked API key")
    principal = Principal(
        client_id=client.id, role=client.role, border_point=client.border_point, purpose=None
    )
    # Set before the purpose is checked, so a bad X-Purpose is audited under the caller.
    request.state.principal = principal
    principal = request.state.principal = replace(principal, purpose=_purpose(request))
    return principal


class RoleCheck:
    """Dependency that admits the roles given and refuses every other with a 403."""

    def __init__(self, *roles: str) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        self.roles = roles

    def __call__(self, request: Request) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            principal = authenticate(request)
        if principal.role not in self.roles:
            raise Forbidden(
                f"role {principal.role} may not do this; allowed: {', '.join(self.roles)}"
            )
        return principal


def require_role(*roles: str) -> RoleCheck:
    return RoleCheck(*roles)


def check_access(request: Request, dependant: Dependant) -> None:
    """Run a route's authentication and role checks by hand.

    FastAPI parses a JSON body before it solves dependencies, so a malformed body would
    otherwise be answered 422 to a caller with no key or the wrong role; the error handler
    calls this first, so such callers get their 401 or 403.
    """
    for dep in dependant.dependencies:
        if dep.call is authenticate or isinstance(dep.call, RoleCheck):
            dep.call(request)
        check_access(request, dep)


KioskOrOfficer = Annotated[Principal, Depends(require_role("kiosk", "officer"))]
Officer = Annotated[Principal, Depends(require_role("officer"))]
Consular = Annotated[Principal, Depends(require_role("consular"))]
ConsularOrOfficer = Annotated[Principal, Depends(require_role("consular", "officer"))]
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
