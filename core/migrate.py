"""Numbered SQL migrations, applied once, in order, under an advisory lock, as the schema
owner; then the service's role is granted its rights on every table.

Each package that owns tables ships a ``migrations/`` folder of files named
``NNNN_description.sql``; numbers are unique across the project. The application
(``border``) passes the folders in, so core imports no domain package.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from core.db import APP_ROLE, Conn
from core.errors import ConfigurationError

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x626F7264_0001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(folders: list[Path]) -> list[Migration]:
    """All migrations in ``folders``, ordered by number; duplicates and stray names refused."""
    found: dict[int, Migration] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.sql")):
            match = _NAME.match(path.name)
            if match is None:
                raise ConfigurationError(f"migration file {path} is not named NNNN_description.sql")
            version = int(match.group(1))
            if version in found:
                raise ConfigurationError(
                    f"migration number {version:04d} is used twice: {found[version].name} "
                    f"and {path.name}"
                )
            found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def apply(conn: Conn, folders: list[Path], *, grant_to: str | None = APP_ROLE) -> list[str]:
    """Apply the migrations not yet recorded, then grant ``grant_to`` (the service's role)
    its rights (:func:`grant_service`); return the names applied. Run as the schema owner.

    A session-level advisory lock makes two processes starting at once take turns: the
    second finds everything applied. A recorded migration whose file changed is refused.
    """
    migrations = discover(folders)
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = _applied(conn)
        _check_unchanged(migrations, applied)
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            log.info("applied migration %s", migration.name)
            done.append(migration.name)
        if grant_to is not None:
            # Under the same lock: two processes granting at once would collide on the
            # catalog rows ("tuple concurrently updated").
            grant_service(conn, grant_to)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


@dataclass(frozen=True)
class Applied:
    name: str
    checksum: str
    applied_at: datetime


def _applied(conn: Conn) -> dict[int, Applied]:
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {int(v): Applied(str(n), str(c), a) for v, n, c, a in rows.fetchall()}


def _check_unchanged(migrations: list[Migration], applied: dict[int, Applied]) -> None:
    for migration in migrations:
        done = applied.get(migration.version)
        if done is not None and done.checksum != migration.checksum:
            raise ConfigurationError(
                f"migration {done.name} was changed after it was applied; add a new "
                "numbered migration instead of editing an applied one"
            )


def status(conn: Conn, folders: list[Path]) -> list[tuple[str, datetime | None]]:
    """Every migration with the time it was applied, None when pending; an applied one
    whose file changed is refused. Needs only SELECT on ``schema_migrations``, which the
    service's role has."""
    migrations = discover(folders)
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
    applied = _applied(conn) if exists and exists[0] is not None else {}
    _check_unchanged(migrations, applied)
    return [
        (m.name, applied[m.version].applied_at if m.version in applied else None)
        for m in migrations
    ]


def require_current(conn: Conn, folders: list[Path]) -> None:
    """Refuse to start on a schema that is not current, when the service may not migrate
    it itself (no owner's URL): the operator runs ``border db migrate`` first."""
    try:
        pending = [name for name, at in status(conn, folders) if at is None]
    except psycopg.errors.InsufficientPrivilege:
        raise ConfigurationError(
            "the service's role may not read schema_migrations, so the schema was migrated "
            "without its grants: run `border db migrate` with BORDER_OWNER_DATABASE_URL set "
            "to the schema owner's URL"
        ) from None
    if pending:
        raise ConfigurationError(
            f"the database schema is not current ({len(pending)} migrations pending, from "
            f"{pending[0]}): run `border db migrate` with BORDER_OWNER_DATABASE_URL set to the "
            "schema owner's URL, or set it for `border serve` to migrate at start"
        )


# What the service's role gets on a table not listed in service_privileges (migration
# 0010): the row operations, never TRUNCATE, REFERENCES or TRIGGER.
_ROW_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
_PRIVILEGE_SQL = {
    "SELECT": sql.SQL("SELECT"),
    "INSERT": sql.SQL("INSERT"),
    "UPDATE": sql.SQL("UPDATE"),
    "DELETE": sql.SQL("DELETE"),
}


def grant_service(conn: Conn, role: str = APP_ROLE) -> list[str]:
    """Give the service's role exactly its rights on the current schema; return the names
    of the tables and sequences whose grants changed.

    A table listed in ``service_privileges`` gets the privileges listed there; any other
    table, including the tables of migrations written later, gets SELECT, INSERT, UPDATE
    and DELETE; ``schema_migrations`` is read only; every sequence gets USAGE (nextval).
    Privileges beyond those are revoked. Only what differs is changed, so a run with
    nothing to do writes nothing to the catalog. The role must own nothing: owning a table
    would let it alter the table or switch off its triggers.
    """
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        raise ConfigurationError(
            f"the database has no role {role}, which the service connects as: create it "
            "(LOGIN, no other attribute) as a superuser; docker-compose.yml's init script "
            "shows how"
        )
    declared: dict[str, frozenset[str]] = {"schema_migrations": frozenset({"SELECT"})}
    listed = conn.execute("SELECT to_regclass('service_privileges')").fetchone()
    if listed and listed[0] is not None:
        for name, privileges in conn.execute(
            "SELECT table_name, privileges FROM service_privileges"
        ).fetchall():
            declared[str(name)] = frozenset(str(p) for p in privileges)
    rows = conn.execute(
        """SELECT c.relname, c.relkind = 'S', pg_get_userbyid(c.relowner),
                  pg_has_role(c.relowner, 'USAGE'),
                  array(SELECT a.privilege_type FROM aclexplode(c.relacl) a
                        WHERE a.grantee = %(role)s::regrole)
           FROM pg_class c
           WHERE c.relnamespace = current_schema()::regnamespace
             AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
           ORDER BY c.relname""",
        {"role": role},
    ).fetchall()
    changed: list[str] = []
    for name, is_sequence, owner, ours, held in rows:
        if owner == role:
            raise ConfigurationError(
                f"the service's role {role} owns {name}, so it could alter it: make the "
                f"schema owner its owner (ALTER TABLE {name} OWNER TO <owner>, as a superuser)"
            )
        wanted = frozenset({"USAGE"}) if is_sequence else declared.get(name, _ROW_PRIVILEGES)
        if frozenset(held) == wanted:
            continue
        if not ours:
            raise ConfigurationError(
                f"{name} is owned by {owner}, not by the role migrating, which therefore "
                f"cannot grant {role} its rights on it: make the schema owner its owner, "
                "once, as a superuser"
            )
        _regrant(conn, name, role, is_sequence=bool(is_sequence), privileges=wanted)
        changed.append(str(name))
    if changed:
        log.info("granted %s its rights on %s", role, ", ".join(changed))
    return changed


def _regrant(
    conn: Conn, name: str, role: str, *, is_sequence: bool, privileges: frozenset[str]
) -> None:
    kind = sql.SQL("SEQUENCE" if is_sequence else "TABLE")
    target, grantee = sql.Identifier(name), sql.Identifier(role)
    with conn.transaction():
        conn.execute(sql.SQL("REVOKE ALL ON {} {} FROM {}").format(kind, target, grantee))
        if is_sequence:
            conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(target, grantee))
            return
        unknown = privileges - _PRIVILEGE_SQL.keys()
        if unknown:
            raise ConfigurationError(
                f"service_privileges lists {sorted(unknown)} for {name}; only SELECT, "
                "INSERT, UPDATE and DELETE may be granted"
            )
        if privileges:
            granted = sql.SQL(", ").join(_PRIVILEGE_SQL[p] for p in sorted(privileges))
            conn.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(granted, target, grantee))
