"""SQL for the staff accounts: users, user_sessions, login_failures, session_purposes.

Functions take a connection and never commit; the caller owns the transaction. The rules
(who may sign in, MACs, lockout) are in ``border.users``.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from core.db import Conn


@dataclass(frozen=True)
class UserRow:
    id: UUID
    username: str
    role: str
    border_point: str | None
    password_hash: str | None
    totp_sealed: bytes | None
    totp_last_step: int | None
    status: str
    admin_provisioned: bool
    activation_sha256: bytes | None
    activation_expires_at: datetime | None
    created_at: datetime
    activated_at: datetime | None
    disabled_at: datetime | None
    mac: bytes


@dataclass(frozen=True)
class SessionRow:
    id: UUID
    token_sha256: bytes
    user_id: UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    address: str


# Every query names its columns in full (literal SQL, as psycopg's typing wants); the
# user's are those of UserRow, in its order.
_BY_NAME = (
    "SELECT id, username, role, border_point, password_hash, totp_sealed, totp_last_step,"
    " status, admin_provisioned, activation_sha256, activation_expires_at, created_at,"
    " activated_at, disabled_at, mac FROM users WHERE username = %(u)s"
)
_BY_ACTIVATION = (
    "SELECT id, username, role, border_point, password_hash, totp_sealed, totp_last_step,"
    " status, admin_provisioned, activation_sha256, activation_expires_at, created_at,"
    " activated_at, disabled_at, mac FROM users WHERE activation_sha256 = %(d)s"
)


def _user_params(row: UserRow) -> dict[str, object]:
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "border_point": row.border_point,
        "password_hash": row.password_hash,
        "totp_sealed": row.totp_sealed,
        "totp_last_step": row.totp_last_step,
        "status": row.status,
        "admin_provisioned": row.admin_provisioned,
        "activation_sha256": row.activation_sha256,
        "activation_expires_at": row.activation_expires_at,
        "created_at": row.created_at,
        "activated_at": row.activated_at,
        "disabled_at": row.disabled_at,
        "mac": row.mac,
    }


def insert_user(conn: Conn, row: UserRow) -> None:
    """Raises psycopg.errors.UniqueViolation when the username is taken."""
    conn.execute(
        "INSERT INTO users (id, username, role, border_point, password_hash, totp_sealed,"
        " totp_last_step, status, admin_provisioned, activation_sha256, activation_expires_at,"
        " created_at, activated_at, disabled_at, mac)"
        " VALUES (%(id)s, %(username)s, %(role)s, %(border_point)s, %(password_hash)s,"
        " %(totp_sealed)s, %(totp_last_step)s, %(status)s, %(admin_provisioned)s,"
        " %(activation_sha256)s, %(activation_expires_at)s, %(created_at)s, %(activated_at)s,"
        " %(disabled_at)s, %(mac)s)",
        _user_params(row),
    )


def update_user(conn: Conn, row: UserRow) -> None:
    """Write every field that may change (all but id, username, role, border point and
    creation) as the row holds them."""
    conn.execute(
        "UPDATE users SET password_hash = %(password_hash)s, totp_sealed = %(totp_sealed)s,"
        " totp_last_step = %(totp_last_step)s, status = %(status)s,"
        " activation_sha256 = %(activation_sha256)s,"
        " activation_expires_at = %(activation_expires_at)s, activated_at = %(activated_at)s,"
        " disabled_at = %(disabled_at)s, mac = %(mac)s"
        " WHERE id = %(id)s",
        _user_params(row),
    )


def user_by_name(conn: Conn, username: str, *, lock: bool = False) -> UserRow | None:
    """The user, locked until the end of the transaction with ``lock``."""
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        if lock:
            return cur.execute(_BY_NAME + " FOR UPDATE", {"u": username}).fetchone()
        return cur.execute(_BY_NAME, {"u": username}).fetchone()


def user_by_id(conn: Conn, user_id: UUID) -> UserRow | None:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(
            "SELECT id, username, role, border_point, password_hash, totp_sealed, totp_last_step,"
            " status, admin_provisioned, activation_sha256, activation_expires_at, created_at,"
            " activated_at, disabled_at, mac FROM users WHERE id = %(id)s",
            {"id": user_id},
        ).fetchone()


def user_by_activation(conn: Conn, digest: bytes, *, lock: bool = False) -> UserRow | None:
    """The user whose pending activation link has this SHA-256, expired or not."""
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        if lock:
            return cur.execute(_BY_ACTIVATION + " FOR UPDATE", {"d": digest}).fetchone()
        return cur.execute(_BY_ACTIVATION, {"d": digest}).fetchone()


def list_users(conn: Conn) -> list[UserRow]:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(
            "SELECT id, username, role, border_point, password_hash, totp_sealed, totp_last_step,"
            " status, admin_provisioned, activation_sha256, activation_expires_at, created_at,"
            " activated_at, disabled_at, mac FROM users ORDER BY created_at, username"
        ).fetchall()


def usernames(conn: Conn, user_ids: list[UUID]) -> dict[UUID, str]:
    rows = conn.execute(
        "SELECT id, username FROM users WHERE id = ANY(%(ids)s)", {"ids": user_ids}
    ).fetchall()
    return {UUID(str(r[0])): str(r[1]) for r in rows}


def insert_session(conn: Conn, row: SessionRow) -> None:
    conn.execute(
        "INSERT INTO user_sessions"
        " (id, token_sha256, user_id, created_at, last_seen_at, expires_at, revoked_at, address)"
        " VALUES (%(id)s, %(token)s, %(user_id)s, %(created_at)s, %(last_seen_at)s,"
        " %(expires_at)s, %(revoked_at)s, %(address)s)",
        {
            "id": row.id,
            "token": row.token_sha256,
            "user_id": row.user_id,
            "created_at": row.created_at,
            "last_seen_at": row.last_seen_at,
            "expires_at": row.expires_at,
            "revoked_at": row.revoked_at,
            "address": row.address,
        },
    )


def session_by_token(conn: Conn, digest: bytes) -> SessionRow | None:
    with conn.cursor(row_factory=class_row(SessionRow)) as cur:
        return cur.execute(
            "SELECT id, token_sha256, user_id, created_at, last_seen_at, expires_at, revoked_at,"
            " address FROM user_sessions WHERE token_sha256 = %(t)s",
            {"t": digest},
        ).fetchone()


def touch_session(conn: Conn, session_id: UUID, at: datetime) -> None:
    """Record a use; never moves ``last_seen_at`` back (two requests may race)."""
    conn.execute(
        "UPDATE user_sessions SET last_seen_at = greatest(last_seen_at, %(at)s) WHERE id = %(id)s",
        {"id": session_id, "at": at},
    )


def revoke_session(conn: Conn, session_id: UUID, at: datetime) -> bool:
    """Whether the session was live until now."""
    cur = conn.execute(
        "UPDATE user_sessions SET revoked_at = %(at)s WHERE id = %(id)s AND revoked_at IS NULL",
        {"id": session_id, "at": at},
    )
    return cur.rowcount > 0


def revoke_user_sessions(conn: Conn, user_id: UUID, at: datetime) -> int:
    """Revoke every session of the user not revoked yet; return how many."""
    cur = conn.execute(
        "UPDATE user_sessions SET revoked_at = %(at)s WHERE user_id = %(u)s AND revoked_at IS NULL",
        {"u": user_id, "at": at},
    )
    return cur.rowcount


def delete_sessions_expired(conn: Conn, before: datetime) -> None:
    """Sessions past their absolute expiry serve nobody (their purposes go with them)."""
    conn.execute("DELETE FROM user_sessions WHERE expires_at < %(b)s", {"b": before})


def set_purpose(conn: Conn, session_id: UUID, person_id: UUID, purpose: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO session_purposes (session_id, person_id, purpose, at)"
        " VALUES (%(s)s, %(p)s, %(purpose)s, %(at)s)"
        " ON CONFLICT (session_id, person_id)"
        " DO UPDATE SET purpose = excluded.purpose, at = excluded.at",
        {"s": session_id, "p": person_id, "purpose": purpose, "at": at},
    )


def purpose(conn: Conn, session_id: UUID, person_id: UUID) -> str | None:
    row = conn.execute(
        "SELECT purpose FROM session_purposes WHERE session_id = %(s)s AND person_id = %(p)s",
        {"s": session_id, "p": person_id},
    ).fetchone()
    return None if row is None else str(row[0])


def lock_failures(conn: Conn, key_sha256: bytes) -> None:
    """Until the end of the transaction: attempts on one key (an account and address, or
    an address) take turns, so none slips past the count of another."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(%(k)s)",
        {"k": int.from_bytes(key_sha256[:8], "big", signed=True)},
    )


def delete_failures_before(conn: Conn, before: datetime) -> None:
    conn.execute("DELETE FROM login_failures WHERE at < %(b)s", {"b": before})


def failure_times(conn: Conn, key_sha256: bytes, since: datetime) -> list[datetime]:
    """When the key failed since then (attempts refused while locked aside), oldest first."""
    rows = conn.execute(
        "SELECT at FROM login_failures WHERE key_sha256 = %(k)s AND at >= %(s)s AND NOT locked"
        " ORDER BY at",
        {"k": key_sha256, "s": since},
    ).fetchall()
    return [r[0] for r in rows]


def locked_audited_since(conn: Conn, key_sha256: bytes, since: datetime) -> bool:
    """Whether a refusal of the locked key was audited since then."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM login_failures WHERE key_sha256 = %(k)s"
        " AND at >= %(s)s AND locked AND audited)",
        {"k": key_sha256, "s": since},
    ).fetchone()
    return bool(row and row[0])


def anonymous_failures(conn: Conn, address: str) -> tuple[datetime | None, int]:
    """For failures under unknown usernames from this address: when the last one was
    audited (None if none kept), and how many came after it."""
    row = conn.execute(
        "WITH last AS (SELECT max(at) AS at FROM login_failures"
        "  WHERE user_id IS NULL AND address = %(a)s AND audited)"
        " SELECT (SELECT at FROM last), count(*) FROM login_failures"
        " WHERE user_id IS NULL AND address = %(a)s"
        " AND at > coalesce((SELECT at FROM last), '-infinity')",
        {"a": address},
    ).fetchone()
    assert row is not None
    return row[0], int(row[1])


def insert_failure(
    conn: Conn,
    key_sha256: bytes,
    *,
    address: str,
    user_id: UUID | None,
    locked: bool,
    audited: bool,
    at: datetime,
) -> None:
    conn.execute(
        "INSERT INTO login_failures (key_sha256, address, user_id, locked, audited, at)"
        " VALUES (%(k)s, %(a)s, %(u)s, %(l)s, %(au)s, %(at)s)",
        {"k": key_sha256, "a": address, "u": user_id, "l": locked, "au": audited, "at": at},
    )


def delete_failures(conn: Conn, key_sha256: bytes) -> None:
    conn.execute("DELETE FROM login_failures WHERE key_sha256 = %(k)s", {"k": key_sha256})
