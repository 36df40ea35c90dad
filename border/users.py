"""Staff accounts and console sessions (DESIGN §11, §14): create, activate, sign in, the
session of a cookie, disable, reset the authenticator, and the purpose per person.

Passwords are argon2id; a TOTP code (RFC 6238, 6 digits, 30 s) is always required and
never accepted twice. Five failures for one account from one address in 15 minutes lock
that pair, and only that pair. Every user row carries a MAC (key derived from the system
root) over what grants access; a row that fails it signs nobody in. The use cases audit,
so they sit in this top layer; their SQL is core's (``core.users_store``), beside the
other rows that grant access.
"""

import base64
import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import argon2
import psycopg
import pyotp

from audit import service as audit_service
from core import auth, crypto
from core import users_store as store
from core.auth import Principal
from core.db import Conn, transaction
from core.errors import BorderError, Conflict, InvalidRequest, NotFound, RateLimited, Unauthorized
from core.keys import Keyring
from core.runtime import Runtime

log = logging.getLogger(__name__)

STAFF_ROLES = ("consular", "officer", "auditor", "admin", "statistician", "dpo")
ACTIVATION_VALID = timedelta(hours=72)
LOCK_FAILURES = 5
LOCK_WINDOW = timedelta(minutes=15)
# Failures under unknown usernames reach the chain folded, per address (DESIGN §14).
ANONYMOUS_EVENT_EVERY = timedelta(minutes=1)
PASSWORD_MIN, PASSWORD_MAX = 12, 128
ISSUER = "Border"

_USERNAME = re.compile(r"^[a-z0-9._-]{2,64}$")
_BORDER_POINT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CODE = re.compile(r"^[0-9]{6}$")
_TABLE = "users"
# One answer whatever failed, so a guess learns nothing about which part was wrong.
_WRONG = "the username, password or one-time code is wrong"
# argon2-cffi's defaults are argon2id (RFC 9106's low-memory profile); one hasher for the
# process, it holds no state.
_HASHER = argon2.PasswordHasher()


@dataclass(frozen=True)
class User:
    id: UUID
    username: str
    role: str
    border_point: str | None
    status: str
    admin_provisioned: bool
    created_at: datetime
    activated_at: datetime | None
    disabled_at: datetime | None


@dataclass(frozen=True)
class Created:
    """A new account (or a reset one): the link to send to its holder (pending accounts),
    or the TOTP provisioning URI for an admin-provisioned one. Shown once."""

    user: User
    activation_url: str | None
    totp_uri: str | None


@dataclass(frozen=True)
class Activation:
    """What an activation page shows: the authenticator to enrol, and whether a password
    is still to be chosen (False after a reset, which keeps the password)."""

    user: User
    totp_secret: str
    totp_uri: str
    needs_password: bool


@dataclass(frozen=True)
class Session:
    """A signed-in browser. ``token`` goes in the cookie; ``csrf_token`` in every form
    that changes state (``check_csrf``)."""

    id: UUID
    token: str
    user: User
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        BorderError.__init__(self, f"no user named {username}")
        self.resource = "user"


class LinkNotFound(NotFound):
    """Unknown, used and expired links get the same answer."""

    def __init__(self) -> None:
        BorderError.__init__(self, "this activation link is unknown, used or expired")
        self.resource = "activation link"


def _now() -> datetime:
    return datetime.now(UTC)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _user(row: store.UserRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=row.role,
        border_point=row.border_point,
        status=row.status,
        admin_provisioned=row.admin_provisioned,
        created_at=row.created_at,
        activated_at=row.activated_at,
        disabled_at=row.disabled_at,
    )


def _mac_fields(row: store.UserRow) -> dict[str, crypto.MacField]:
    # What decides who may sign in and with what powers. totp_last_step is left out: it
    # changes at every sign-in, and rolling it back still needs the password.
    return {
        "username": row.username,
        "role": row.role,
        "border_point": row.border_point,
        "password_hash": row.password_hash,
        "totp_sealed": None if row.totp_sealed is None else bytes(row.totp_sealed),
        "status": row.status,
        "admin_provisioned": row.admin_provisioned,
        "activation_sha256": (
            None if row.activation_sha256 is None else bytes(row.activation_sha256)
        ),
        "activation_expires_at": row.activation_expires_at,
    }


def user_mac(keys: Keyring, row: store.UserRow) -> bytes:
    """The MAC over a user's username, role, border point, password hash, TOTP secret,
    status, admin-provisioned mark and pending activation link."""
    return keys.row_mac(_TABLE, row.id, _mac_fields(row))


def sealed(keys: Keyring, row: store.UserRow) -> store.UserRow:
    """The row with its MAC computed over it as it stands."""
    return replace(row, mac=user_mac(keys, row))


def _intact(keys: Keyring, row: store.UserRow) -> bool:
    if keys.row_intact(_TABLE, row.id, _mac_fields(row), row.mac):
        return True
    log.warning(
        "user %s fails its integrity check: refused; if the row is genuine, disable it and "
        "create the account again",
        row.id,
    )
    return False


def _activation_url(rt: Runtime, token: str) -> str:
    return f"{rt.settings.public_url.rstrip('/')}/console/activate/{token}"


def _totp_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _seal_totp(conn: Conn, keys: Keyring, user_id: UUID, secret: str) -> bytes:
    key = keys.data_key(conn, user_id, create=True)
    assert key is not None
    return crypto.seal(key, secret.encode(), crypto.aad(_TABLE, "totp", user_id))


def _totp_secret(conn: Conn, keys: Keyring, row: store.UserRow) -> str | None:
    """The user's TOTP secret; None when there is none or it does not open."""
    key = keys.data_key(conn, row.id)
    if key is None or row.totp_sealed is None:
        return None
    try:
        blob = bytes(row.totp_sealed)
        return crypto.unseal(key, blob, crypto.aad(_TABLE, "totp", row.id)).decode()
    except crypto.DecryptionError:
        log.warning("user %s: the TOTP secret does not decrypt", row.id)
        return None


def _accepted_step(
    secret: str, code: str | None, last_step: int | None, at: datetime
) -> int | None:
    """The 30 s step whose code this is, within one step of ``at`` either way and after
    ``last_step`` (a code is never accepted twice); None when it is no such code."""
    given = (code or "").replace(" ", "")
    if not _CODE.match(given):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(at.timestamp())
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if crypto.hmac_equal(totp.generate_otp(step).encode(), given.encode()):
            return step
    return None


def _check_password(password: str | None, username: str) -> str:
    if password is None or not password:
        raise InvalidRequest("give a password", field="password")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidRequest(
            f"a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    if password.strip().lower() == username:
        raise InvalidRequest("the password may not be the username", field="password")
    return password


def _password_ok(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        log.warning("a stored password hash is not an argon2 hash")
        return False


@functools.cache
def _dummy_hash() -> str:
    """Verified against for unknown usernames, so they take as long as known ones."""
    return _HASHER.hash(secrets.token_urlsafe(24))


def _new_activation(at: datetime) -> tuple[str, bytes, datetime]:
    token = secrets.token_urlsafe(32)
    return token, _sha256(token), at + ACTIVATION_VALID


def _valid_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise InvalidRequest(
            "a username is 2 to 64 lower-case letters, digits, '.', '_' or '-'",
            field="username",
        )
    return name


def _valid_border_point(border_point: str | None) -> str | None:
    if border_point is None or not border_point.strip():
        return None
    if not _BORDER_POINT.match(border_point.strip()):
        raise InvalidRequest(
            "a border point is 1 to 64 letters, digits, '.', '_' or '-'", field="border_point"
        )
    return border_point.strip()


def _audit_user(
    conn: Conn,
    keys: Keyring,
    row: store.UserRow,
    action: str,
    *,
    outcome: str = "ok",
    role: str | None,
    resource_type: str,
    resource_id: object,
    detail: dict[str, object],
) -> None:
    """An event of the staff member themself: actor ``user:<id>``."""
    audit_service.append(
        conn,
        keys,
        actor=f"user:{row.id}",
        role=role,
        purpose=None,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
        detail=detail,
    )


def create(
    rt: Runtime,
    principal: Principal,
    *,
    username: str,
    role: str,
    border_point: str | None = None,
    password: str | None = None,
) -> Created:
    """A new staff account. Without ``password`` it is pending, with a one-time activation
    link (72 h) through which its holder sets their own password and enrols the TOTP
    secret made now. With one (unattended provisioning) it is active at once, marked
    admin-provisioned, and its TOTP URI is returned."""
    name = _valid_username(username)
    if role not in STAFF_ROLES:
        raise InvalidRequest(
            f"role must be one of {', '.join(STAFF_ROLES)} (kiosks use API keys)", field="role"
        )
    point = _valid_border_point(border_point)
    if password is not None:
        _check_password(password, name)
    now, user_id, secret = _now(), uuid4(), pyotp.random_base32()
    token: str | None = None
    digest: bytes | None = None
    expires: datetime | None = None
    if password is None:
        token, digest, expires = _new_activation(now)
    try:
        with transaction(rt.pool) as conn:
            if store.user_by_name(conn, name) is not None:
                raise Conflict(f"a user named {name} exists", field="username")
            row = sealed(
                rt.keys,
                store.UserRow(
                    id=user_id,
                    username=name,
                    role=role,
                    border_point=point,
                    password_hash=None if password is None else _HASHER.hash(password),
                    totp_sealed=_seal_totp(conn, rt.keys, user_id, secret),
                    totp_last_step=None,
                    status="pending" if password is None else "active",
                    admin_provisioned=password is not None,
                    activation_sha256=digest,
                    activation_expires_at=expires,
                    created_at=now,
                    activated_at=None if password is None else now,
                    disabled_at=None,
                    mac=b"",
                ),
            )
            store.insert_user(conn, row)
            audit_service.record(
                conn,
                rt.keys,
                principal,
                "users.create",
                resource_type="user",
                resource_id=user_id,
                detail={
                    "role": role,
                    "border_point": point,
                    "admin_provisioned": row.admin_provisioned,
                },
            )
    except psycopg.errors.UniqueViolation:
        # Created by someone else between the check and the insert.
        raise Conflict(f"a user named {name} exists", field="username") from None
    return Created(
        user=_user(row),
        activation_url=None if token is None else _activation_url(rt, token),
        totp_uri=_totp_uri(name, secret) if password is not None else None,
    )


def list_users(rt: Runtime, principal: Principal) -> list[User]:
    with transaction(rt.pool) as conn:
        rows = store.list_users(conn)
        audit_service.record(conn, rt.keys, principal, "users.list", detail={"n": len(rows)})
    return [_user(r) for r in rows]


def find(rt: Runtime, username: str) -> User | None:
    """The user of that name, whatever their status; not audited (names are no personal
    data of travellers)."""
    with rt.pool.connection() as conn:
        row = store.user_by_name(conn, username.strip().lower())
    return None if row is None else _user(row)


def disable(rt: Runtime, principal: Principal, username: str) -> User:
    """Disable an account for good: its sessions end at once and a pending link dies.

    Disabling twice keeps the first date. As with API clients, the MAC is rewritten only
    for a row whose MAC held, so disabling a tampered row never blesses it.
    """
    now = _now()
    with transaction(rt.pool) as conn:
        row = store.user_by_name(conn, username.strip().lower(), lock=True)
        if row is None:
            raise UserNotFound(username)
        if row.status != "disabled":
            intact = _intact(rt.keys, row)
            row = replace(
                row,
                status="disabled",
                disabled_at=now,
                activation_sha256=None,
                activation_expires_at=None,
            )
            if intact:
                row = sealed(rt.keys, row)
            store.update_user(conn, row)
        revoked = store.revoke_user_sessions(conn, row.id, now)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "users.disable",
            resource_type="user",
            resource_id=row.id,
            detail={"sessions_revoked": revoked},
        )
    return _user(row)


def reset_totp(rt: Runtime, principal: Principal, username: str) -> Created:
    """A new TOTP secret for a lost or exposed authenticator: the user's sessions end and
    the account is pending again, with a new link whose page asks only for a code of the
    new authenticator (the password stays; a user who never set one still sets it)."""
    now, secret = _now(), pyotp.random_base32()
    token, digest, expires = _new_activation(now)
    with transaction(rt.pool) as conn:
        row = store.user_by_name(conn, username.strip().lower(), lock=True)
        if row is None:
            raise UserNotFound(username)
        if row.status == "disabled":
            raise Conflict(f"user {row.username} is disabled; create a new account")
        if not _intact(rt.keys, row):
            raise Conflict(
                f"user {row.username} fails its integrity check; disable it and create the "
                "account again"
            )
        row = sealed(
            rt.keys,
            replace(
                row,
                totp_sealed=_seal_totp(conn, rt.keys, row.id, secret),
                totp_last_step=None,
                status="pending",
                activation_sha256=digest,
                activation_expires_at=expires,
            ),
        )
        store.update_user(conn, row)
        revoked = store.revoke_user_sessions(conn, row.id, now)
        audit_service.record(
            conn,
            rt.keys,
            principal,
            "users.reset_totp",
            resource_type="user",
            resource_id=row.id,
            detail={"sessions_revoked": revoked},
        )
    return Created(user=_user(row), activation_url=_activation_url(rt, token), totp_uri=None)


def _pending(keys: Keyring, row: store.UserRow | None, at: datetime) -> store.UserRow:
    """The row an activation link opens: pending, unexpired, intact; LinkNotFound else."""
    if (
        row is None
        or row.status != "pending"
        or row.activation_expires_at is None
        or row.activation_expires_at <= at
        or not _intact(keys, row)
    ):
        raise LinkNotFound()
    return row


def activation(rt: Runtime, token: str) -> Activation:
    """What the activation page of ``token`` shows; not audited (no personal data)."""
    with rt.pool.connection() as conn:
        row = _pending(rt.keys, store.user_by_activation(conn, _sha256(token)), _now())
        secret = _totp_secret(conn, rt.keys, row)
    if secret is None:
        raise LinkNotFound()
    return Activation(
        user=_user(row),
        totp_secret=secret,
        totp_uri=_totp_uri(row.username, secret),
        needs_password=row.password_hash is None,
    )


def activate(rt: Runtime, token: str, *, password: str | None, code: str) -> User:
    """Finish an activation: the password (when the account has none yet) and a code from
    the new authenticator, which proves it was enrolled. The link is used up."""
    now = _now()
    with transaction(rt.pool) as conn:
        row = _pending(rt.keys, store.user_by_activation(conn, _sha256(token), lock=True), now)
        needs_password = row.password_hash is None
        password_hash = row.password_hash
        if needs_password:
            password_hash = _HASHER.hash(_check_password(password, row.username))
        secret = _totp_secret(conn, rt.keys, row)
        if secret is None:
            raise LinkNotFound()
        step = _accepted_step(secret, code, row.totp_last_step, now)
        if step is None:
            raise InvalidRequest(
                "the one-time code is wrong: type the 6 digits the authenticator shows now"
                " (its clock must be right)",
                field="code",
            )
        row = sealed(
            rt.keys,
            replace(
                row,
                password_hash=password_hash,
                totp_last_step=step,
                status="active",
                activation_sha256=None,
                activation_expires_at=None,
                activated_at=now,
            ),
        )
        store.update_user(conn, row)
        _audit_user(
            conn,
            rt.keys,
            row,
            "users.activate",
            role=row.role,
            resource_type="user",
            resource_id=row.id,
            detail={"admin_provisioned": row.admin_provisioned, "password_set": needs_password},
        )
    return _user(row)


def failure_key(username: str, address: str) -> bytes:
    """What sign-in failures are counted under: one account from one address."""
    return _sha256(f"{username.strip().lower()}|{address}")


def _csrf_token(keys: Keyring, token: str) -> str:
    digest = crypto.mac(keys.csrf_key, token.encode())
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _session(
    keys: Keyring, token: str, row: store.SessionRow, user: store.UserRow, expires_at: datetime
) -> Session:
    return Session(
        id=row.id,
        token=token,
        user=_user(user),
        csrf_token=_csrf_token(keys, token),
        created_at=row.created_at,
        expires_at=expires_at,
        last_seen_at=row.last_seen_at,
    )


def sign_in(rt: Runtime, *, username: str, password: str, code: str, address: str) -> Session:
    """A new session for the right username, password and current code, from ``address``
    (the caller's, as ``core.auth.caller_address`` gives it).

    Every failure is the same Unauthorized. A pair of account and address that failed 5
    times in 15 minutes is refused with RateLimited before anything is checked, until the
    oldest of those 5 is 15 minutes old; another address is not affected.
    """
    name = username.strip().lower()
    key = failure_key(name, address)
    # Every attempt costs a password hash: an address that keeps failing, whatever the
    # usernames it tries, waits (the service's authentication throttle, DESIGN §14).
    throttled = f"sign-in:{address}"
    wait = rt.throttle.retry_after(throttled)
    if wait is not None:
        raise RateLimited(
            f"too many failed sign-ins from this address; retry in {wait:.0f} s",
            retry_after_s=round(wait, 1),
        )
    now = _now()
    with transaction(rt.pool) as conn:
        store.lock_failures(conn, key)
        store.delete_failures_before(conn, now - LOCK_WINDOW)
        row = store.user_by_name(conn, name) if _USERNAME.match(name) else None
        failures = store.failure_times(conn, key, now - LOCK_WINDOW)
        if len(failures) >= LOCK_FAILURES:
            wait = (failures[-LOCK_FAILURES] + LOCK_WINDOW - now).total_seconds()
            refusal: BorderError = RateLimited(
                f"too many failed sign-ins; retry in {wait:.0f} s",
                retry_after_s=round(max(wait, 0.0), 1),
            )
            _note_locked(conn, rt.keys, key, row, address, now, since=failures[-1])
        else:
            session = _try_sign_in(conn, rt, row, password, code, address, now)
            if session is not None:
                store.delete_failures(conn, key)
                return session
            refusal = Unauthorized(_WRONG)
            _note_failure(conn, rt.keys, key, row, address, now)
    rt.throttle.failed(throttled)
    raise refusal


def _try_sign_in(
    conn: Conn,
    rt: Runtime,
    row: store.UserRow | None,
    password: str,
    code: str,
    address: str,
    now: datetime,
) -> Session | None:
    # The password is checked (against a dummy for an unknown user) whatever else is
    # wrong, so the time taken tells nothing.
    stored_hash = row.password_hash if row is not None else None
    password_ok = _password_ok(stored_hash or _dummy_hash(), password)
    if row is None or not password_ok:
        return None
    # Read again under the row's lock, only now (a guess holds no lock through its hash):
    # two sign-ins racing with one code from two addresses must not both use it.
    row = store.user_by_name(conn, row.username, lock=True)
    if row is None or row.password_hash is None:
        return None
    if row.password_hash != stored_hash and not _password_ok(row.password_hash, password):
        return None
    stored_hash = row.password_hash
    if row.status != "active" or not _intact(rt.keys, row):
        return None
    secret = _totp_secret(conn, rt.keys, row)
    step = None if secret is None else _accepted_step(secret, code, row.totp_last_step, now)
    if step is None:
        return None
    new_hash = _HASHER.hash(password) if _HASHER.check_needs_rehash(stored_hash) else stored_hash
    row = sealed(rt.keys, replace(row, totp_last_step=step, password_hash=new_hash))
    store.update_user(conn, row)
    store.delete_sessions_expired(conn, now)
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=rt.settings.session_max_s)
    session_row = store.SessionRow(
        id=uuid4(),
        token_sha256=_sha256(token),
        user_id=row.id,
        created_at=now,
        last_seen_at=now,
        expires_at=expires_at,
        revoked_at=None,
        address=address,
    )
    store.insert_session(conn, session_row)
    _audit_user(
        conn,
        rt.keys,
        row,
        "sessions.create",
        role=row.role,
        resource_type="session",
        resource_id=session_row.id,
        detail={"address": address},
    )
    return _session(rt.keys, token, session_row, row, expires_at)


def _note_failure(
    conn: Conn,
    keys: Keyring,
    key: bytes,
    row: store.UserRow | None,
    address: str,
    now: datetime,
) -> None:
    """Count a failed sign-in; audit it under the account when there is one (the lockout
    bounds those events), else folded per address."""
    if row is not None:
        store.insert_failure(
            conn, key, address=address, user_id=row.id, locked=False, audited=True, at=now
        )
        _audit_user(
            conn,
            keys,
            row,
            "sessions.create",
            outcome="unauthorized",
            role=None,
            resource_type="user",
            resource_id=row.id,
            detail={"address": address},
        )
        return
    _note_anonymous(conn, keys, key, address, now, locked=False, outcome="unauthorized")


def _note_locked(
    conn: Conn,
    keys: Keyring,
    key: bytes,
    row: store.UserRow | None,
    address: str,
    now: datetime,
    *,
    since: datetime,
) -> None:
    """Audit a refusal of a locked pair: for an account, the first of each lock only."""
    if row is None:
        _note_anonymous(conn, keys, key, address, now, locked=True, outcome="rate_limited")
        return
    if store.locked_audited_since(conn, key, since):
        return
    store.insert_failure(
        conn, key, address=address, user_id=row.id, locked=True, audited=True, at=now
    )
    _audit_user(
        conn,
        keys,
        row,
        "sessions.create",
        outcome="rate_limited",
        role=None,
        resource_type="user",
        resource_id=row.id,
        detail={"address": address},
    )


def _note_anonymous(
    conn: Conn,
    keys: Keyring,
    key: bytes,
    address: str,
    now: datetime,
    *,
    locked: bool,
    outcome: str,
) -> None:
    """A failure under a username nobody holds: counted, and audited at most once a minute
    per address with the failures since the last event. The username is never recorded
    (it may be a password typed in the wrong field)."""
    address_key = _sha256(f"address|{address}")
    store.lock_failures(conn, address_key)
    last, since_last = store.anonymous_failures(conn, address)
    due = last is None or now - last >= ANONYMOUS_EVENT_EVERY
    store.insert_failure(
        conn, key, address=address, user_id=None, locked=locked, audited=due, at=now
    )
    if due:
        audit_service.append(
            conn,
            keys,
            actor=audit_service.ANONYMOUS,
            role=None,
            purpose=None,
            action="sessions.create",
            outcome=outcome,
            resource_type="address",
            resource_id=address,
            detail={"address": address, "failures": since_last + 1},
        )


def session(rt: Runtime, token: str | None) -> Session | None:
    """The live session of a cookie's token: None when it is unknown or revoked, idle for
    longer than ``session_idle_s``, older than ``session_max_s`` (or past the expiry set
    at sign-in), or its user is no longer active or fails the row MAC. A use is recorded
    at most every 30 s (less for shorter idle limits), to spare writes."""
    if not token:
        return None
    now = _now()
    settings = rt.settings
    with transaction(rt.pool) as conn:
        row = store.session_by_token(conn, _sha256(token))
        if row is None or row.revoked_at is not None:
            return None
        expires_at = min(row.expires_at, row.created_at + timedelta(seconds=settings.session_max_s))
        idle = (now - row.last_seen_at).total_seconds()
        if now >= expires_at or idle > settings.session_idle_s:
            return None
        user = store.user_by_id(conn, row.user_id)
        if user is None or user.status != "active" or not _intact(rt.keys, user):
            return None
        if idle >= min(30.0, settings.session_idle_s / 10):
            store.touch_session(conn, row.id, now)
            row = replace(row, last_seen_at=now)
    return _session(rt.keys, token, row, user, expires_at)


def sign_out(rt: Runtime, session: Session) -> None:
    """End the session; signing out twice is harmless (and audited once)."""
    now = _now()
    with transaction(rt.pool) as conn:
        if store.revoke_session(conn, session.id, now):
            audit_service.record(
                conn,
                rt.keys,
                principal(session),
                "sessions.revoke",
                resource_type="session",
                resource_id=session.id,
            )


def check_csrf(rt: Runtime, session: Session, given: str | None) -> bool:
    """Whether a form's CSRF token is the session's (compared in constant time)."""
    if not given:
        return False
    expected = _csrf_token(rt.keys, session.token)
    return crypto.hmac_equal(given.encode(), expected.encode())


def principal(session: Session, purpose: str | None = None) -> Principal:
    """The signed-in user as the services know callers; audited as ``user:<id>``."""
    user = session.user
    return Principal(
        client_id=None,
        role=user.role,
        border_point=user.border_point,
        purpose=purpose,
        user_id=user.id,
    )


def set_purpose(rt: Runtime, session: Session, person_id: UUID, purpose: str) -> None:
    """Record why the user opens this person (a case reference), for the rest of the
    session; giving another replaces it."""
    text = purpose.strip()
    if not auth.PURPOSE.match(text):
        raise InvalidRequest(
            "a purpose is a case reference: 1 to 200 letters, digits, spaces and . , : / ( ) ' -",
            field="purpose",
        )
    with transaction(rt.pool) as conn:
        store.set_purpose(conn, session.id, person_id, text, _now())


def purpose_for(rt: Runtime, session: Session, person_id: UUID) -> str | None:
    with rt.pool.connection() as conn:
        return store.purpose(conn, session.id, person_id)


def names(conn: Conn, actors: Iterable[str]) -> dict[str, str]:
    """Usernames of the ``user:<id>`` actors among these (for auditors); others omitted."""
    ids: dict[str, UUID] = {}
    for actor in actors:
        kind, _, rest = actor.partition(":")
        if kind != "user":
            continue
        try:
            ids[actor] = UUID(rest)
        except ValueError:
            continue
    if not ids:
        return {}
    found = store.usernames(conn, list(set(ids.values())))
    return {actor: found[uid] for actor, uid in ids.items() if uid in found}
