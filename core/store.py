"""SQL for the core tables: api_clients, master_key_versions, data_keys.

Functions take a connection and never commit; the caller owns the transaction.
"""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row

from core.db import Conn


@dataclass(frozen=True)
class ClientRow:
    """An API client as stored. ``mac`` vouches for id, role, border point, key hash and
    revocation (core.auth.client_mac); None on rows from before it existed."""

    id: UUID
    name: str
    role: str
    border_point: str | None
    key_sha256: bytes
    created_at: datetime
    revoked_at: datetime | None
    mac: bytes | None


@dataclass(frozen=True)
class DataKeyRow:
    owner_id: UUID
    key_version: int
    wrapped: bytes


def insert_client(conn: Conn, client: ClientRow) -> None:
    conn.execute(
        "INSERT INTO api_clients"
        " (id, name, role, border_point, key_sha256, created_at, revoked_at, mac)"
        " VALUES (%(id)s, %(name)s, %(role)s, %(border_point)s, %(key)s, %(created_at)s,"
        " %(revoked_at)s, %(mac)s)",
        {
            "id": client.id,
            "name": client.name,
            "role": client.role,
            "border_point": client.border_point,
            "key": client.key_sha256,
            "created_at": client.created_at,
            "revoked_at": client.revoked_at,
            "mac": client.mac,
        },
    )


def client_by_key(conn: Conn, key_sha256: bytes) -> ClientRow | None:
    """The client holding this key hash, revoked or not: the caller checks its MAC first,
    so a revocation cleared behind the service's back is told from a live key."""
    with conn.cursor(row_factory=class_row(ClientRow)) as cur:
        return cur.execute(
            "SELECT id, name, role, border_point, key_sha256, created_at, revoked_at, mac"
            " FROM api_clients WHERE key_sha256 = %(key)s",
            {"key": key_sha256},
        ).fetchone()


def list_clients(conn: Conn) -> list[ClientRow]:
    with conn.cursor(row_factory=class_row(ClientRow)) as cur:
        return cur.execute(
            "SELECT id, name, role, border_point, key_sha256, created_at, revoked_at, mac"
            " FROM api_clients ORDER BY created_at, id"
        ).fetchall()


def lock_client(conn: Conn, client_id: UUID) -> ClientRow | None:
    """The client, locked until the end of the transaction; None when there is none."""
    with conn.cursor(row_factory=class_row(ClientRow)) as cur:
        return cur.execute(
            "SELECT id, name, role, border_point, key_sha256, created_at, revoked_at, mac"
            " FROM api_clients WHERE id = %(id)s FOR UPDATE",
            {"id": client_id},
        ).fetchone()


def lock_unsealed_clients(conn: Conn) -> list[ClientRow]:
    """Clients without a MAC (written before there was one), locked, oldest first."""
    with conn.cursor(row_factory=class_row(ClientRow)) as cur:
        return cur.execute(
            "SELECT id, name, role, border_point, key_sha256, created_at, revoked_at, mac"
            " FROM api_clients WHERE mac IS NULL ORDER BY created_at, id FOR UPDATE"
        ).fetchall()


def set_client_revocation(
    conn: Conn, client_id: UUID, revoked_at: datetime, mac: bytes | None
) -> None:
    """Record a revocation; ``mac`` None leaves the stored MAC as it is."""
    conn.execute(
        "UPDATE api_clients SET revoked_at = %(at)s, mac = coalesce(%(mac)s, mac)"
        " WHERE id = %(id)s",
        {"id": client_id, "at": revoked_at, "mac": mac},
    )


def set_client_mac(conn: Conn, client_id: UUID, mac: bytes) -> None:
    conn.execute(
        "UPDATE api_clients SET mac = %(mac)s WHERE id = %(id)s", {"id": client_id, "mac": mac}
    )


# Held while a process checks, and on a new store creates, the master key and the system
# root key: two processes starting on a fresh store together must not make two keys.
_KEY_SETUP_LOCK = 0x626F7264_0004


def lock_key_setup(conn: Conn) -> None:
    """Until the end of the transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_KEY_SETUP_LOCK,))


def master_key_checks(conn: Conn) -> dict[int, bytes]:
    rows = conn.execute("SELECT version, key_check FROM master_key_versions").fetchall()
    return {int(v): bytes(c) for v, c in rows}


def register_master_key(conn: Conn, version: int, key_check: bytes, at: datetime) -> None:
    conn.execute(
        "INSERT INTO master_key_versions (version, key_check, created_at)"
        " VALUES (%(v)s, %(c)s, %(at)s) ON CONFLICT (version) DO NOTHING",
        {"v": version, "c": key_check, "at": at},
    )


def data_key_versions(conn: Conn) -> set[int]:
    rows = conn.execute("SELECT DISTINCT key_version FROM data_keys").fetchall()
    return {int(r[0]) for r in rows}


def get_data_key(conn: Conn, owner_id: UUID) -> DataKeyRow | None:
    with conn.cursor(row_factory=class_row(DataKeyRow)) as cur:
        return cur.execute(
            "SELECT owner_id, key_version, wrapped FROM data_keys WHERE owner_id = %(o)s",
            {"o": owner_id},
        ).fetchone()


def insert_data_key(conn: Conn, row: DataKeyRow, at: datetime) -> DataKeyRow:
    """Insert a wrapped key unless the owner already has one; return the key that stands."""
    conn.execute(
        "INSERT INTO data_keys (owner_id, key_version, wrapped, created_at)"
        " VALUES (%(o)s, %(v)s, %(w)s, %(at)s) ON CONFLICT (owner_id) DO NOTHING",
        {"o": row.owner_id, "v": row.key_version, "w": row.wrapped, "at": at},
    )
    stored = get_data_key(conn, row.owner_id)
    assert stored is not None
    return stored


def delete_data_key(conn: Conn, owner_id: UUID) -> bool:
    cur = conn.execute("DELETE FROM data_keys WHERE owner_id = %(o)s", {"o": owner_id})
    return cur.rowcount > 0


def count_data_keys_below(conn: Conn, version: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM data_keys WHERE key_version < %(v)s", {"v": version}
    ).fetchone()
    return int(row[0]) if row else 0


def lock_data_keys_below(conn: Conn, version: int, limit: int) -> list[DataKeyRow]:
    with conn.cursor(row_factory=class_row(DataKeyRow)) as cur:
        return cur.execute(
            "SELECT owner_id, key_version, wrapped FROM data_keys WHERE key_version < %(v)s"
            " ORDER BY owner_id LIMIT %(n)s FOR UPDATE SKIP LOCKED",
            {"v": version, "n": limit},
        ).fetchall()


def rewrap_data_key(conn: Conn, row: DataKeyRow) -> None:
    conn.execute(
        "UPDATE data_keys SET key_version = %(v)s, wrapped = %(w)s WHERE owner_id = %(o)s",
        {"o": row.owner_id, "v": row.key_version, "w": row.wrapped},
    )
