"""API clients, keys and roles; every route is authenticated by default, deny by default."""

import functools
import hashlib
import ipaddress
import logging
import os
import re
import secrets
from dataclasses import dataclass, replace
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant

from core import crypto, logs
from core import store as core_store
from core.errors import Forbidden, InvalidRequest, RateLimited, Unauthorized
from core.keys import Keyring
from core.runtime import Runtime, get_runtime
from core.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("kiosk", "officer", "consular", "auditor", "admin", "statistician", "dpo")
KEY_PREFIX = "border_"
# What a purpose of access may hold: a case or file reference, nothing a spreadsheet or a
# log reader would take for code.
PURPOSE = re.compile(r"^[\w .,:/()'-]{1,200}$")
_CLIENTS_TABLE = "api_clients"
# One answer for every key that is not a working client: an unknown key, a revoked one and
# a row that fails its MAC look alike to the caller (the log tells them apart).
_NO_CLIENT = "unknown or revoked API key"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Principal:
    """Who is calling, and why: the audit log records each of these fields."""

    client_id: UUID | None
    role: str
    border_point: str | None
    purpose: str | None
    # A staff member signed in to the console (DESIGN §11); then client_id is None.
    user_id: UUID | None = None

    @property
    def actor(self) -> str:
        """The API client's id, ``user:<id>`` for a staff member in the console, or
        ``cli:<uid>`` for an operator at the command line."""
        if self.user_id is not None:
            return f"user:{self.user_id}"
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


def _client_fields(row: core_store.ClientRow) -> dict[str, crypto.MacField]:
    # What decides who a key is and what it may do; the name is only a label.
    return {
        "role": row.role,
        "border_point": row.border_point,
        "key_sha256": bytes(row.key_sha256),
        "revoked_at": row.revoked_at,
    }


def client_mac(keys: Keyring, row: core_store.ClientRow) -> bytes:
    """The MAC over a client's id, role, border point, key hash and revocation."""
    return keys.row_mac(_CLIENTS_TABLE, row.id, _client_fields(row))


def sealed(keys: Keyring, row: core_store.ClientRow) -> core_store.ClientRow:
    """The row with its MAC computed over it as it stands."""
    return replace(row, mac=client_mac(keys, row))


def client_intact(keys: Keyring, row: core_store.ClientRow) -> bool:
    """Whether the row is as the service wrote it: False when its MAC is missing or wrong."""
    return keys.row_intact(_CLIENTS_TABLE, row.id, _client_fields(row), row.mac)


@functools.lru_cache(maxsize=16)
def trusted_networks(text: str) -> tuple[IPNetwork, ...]:
    """Parse ``BORDER_TRUSTED_PROXIES``: addresses or CIDR networks, comma-separated.

    Raises ValueError naming the entry that is neither.
    """
    networks = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"BORDER_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _ip(text: str) -> IPAddress | None:
    """An address as a hop writes it: bare, ``v4:port`` or ``[v6]:port``; None if not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(request: Request, settings: Settings) -> str:
    """The caller's address: the peer's, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right, where each proxy
    appended the address it saw, and the first address that is not a trusted proxy is the
    caller: anything further left was written by the caller and proves nothing. An entry
    that is not an address is answered for by the trusted hop that passed it on.
    """
    peer = request.client.host if request.client else "unknown"
    try:
        networks = trusted_networks(settings.trusted_proxies)
    except ValueError as exc:
        # Believe no proxy rather than every one; the settings should refuse this at start.
        log.error("%s; X-Forwarded-For is ignored", exc)
        return peer
    address = _ip(peer)
    if not _is_trusted(address, networks):
        return peer
    hops = [hop for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")]
    for hop in reversed(hops):
        forwarded = _ip(hop)
        if forwarded is None:
            break
        address = forwarded
        if not _is_trusted(address, networks):
            break
    return str(address)


def caller_address(request: Request, settings: Settings) -> str:
    """The address a caller is counted under, by the throttle and the refusal tally alike:
    the caller's (a trusted proxy's X-Forwarded-For believed), an IPv4-mapped address as
    its IPv4, an IPv6 one by its /64 (one host usually holds a whole /64: a single machine
    could otherwise spread its guesses over 2^64 addresses), anything else cut to 64
    characters."""
    host = client_address(request, settings)
    ip = _ip(host)
    if ip is None:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


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
    if not PURPOSE.match(purpose.strip()):
        raise InvalidRequest(
            "X-Purpose must be 1-200 letters, digits, spaces or simple punctuation"
        )
    return purpose.strip()


def _client(rt: Runtime, request: Request) -> core_store.ClientRow:
    """The working client whose key the request presents; Unauthorized otherwise."""
    key = _bearer(request)
    with rt.pool.connection() as conn:
        row = core_store.client_by_key(conn, key_digest(key))
    if row is None:
        raise Unauthorized(_NO_CLIENT)
    if not client_intact(rt.keys, row):
        # Written or altered behind the service's back (or before rows carried a MAC).
        log.warning(
            "API client %s fails its integrity check (MAC %s): refused; if the row is "
            "genuine, re-create the client or seal it on purpose",
            row.id,
            "missing" if row.mac is None else "wrong",
        )
        raise Unauthorized(_NO_CLIENT)
    if row.revoked_at is not None:
        raise Unauthorized(_NO_CLIENT)
    if row.role == "kiosk" and row.border_point is None:
        # Such a key could post crossings at any point (DESIGN §14): it is no client.
        log.warning("kiosk client %s is bound to no border point: refused", row.id)
        raise Unauthorized(_NO_CLIENT)
    return row


def authenticate(request: Request) -> Principal:
    """Resolve the caller from its key; a missing, unknown, revoked or tampered key is a 401.

    The key is checked first, so a valid key always gets through: only failures meet the
    throttle, which counts them per caller address and per presented key and answers 429
    once either has failed too often. Nobody can lock a key out by failing from its
    address. The principal is left on ``request.state`` so that a refusal later in the
    request is still audited under the caller's name.
    """
    rt = get_runtime(request)
    try:
        client = _client(rt, request)
    except Unauthorized:
        address = f"addr:{caller_address(request, rt.settings)}"
        header = request.headers.get("authorization")
        # A key is counted wherever it is tried from; a missing header is no key: counted
        # by address only, or every caller who forgot it would share one bucket.
        presented = [] if not header else [f"key:{key_digest(header).hex()}"]
        wait = rt.throttle.failure(address, *presented)
        if wait is not None:
            raise RateLimited(
                f"too many failed authentications; retry in {wait:.0f} s",
                retry_after_s=round(wait, 1),
            ) from None
        raise
    principal = Principal(
        client_id=client.id, role=client.role, border_point=client.border_point, purpose=None
    )
    # Set before the purpose is checked, so a bad X-Purpose is audited under the caller.
    request.state.principal = principal
    logs.note(actor=principal.actor)
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
Dpo = Annotated[Principal, Depends(require_role("dpo"))]
ConsularOrDpo = Annotated[Principal, Depends(require_role("consular", "dpo"))]
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
