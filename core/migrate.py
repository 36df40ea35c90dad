"""Numbered SQL migrations, applied at start-up, once, in order, under an advisory lock.

Each package that owns tables ships a ``migrations/`` folder of files named
``NNNN_description.sql``; numbers are unique across the project. The application
(``border``) passes the folders in, so core imports no domain package.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from core.db import Conn
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


def apply(conn: Conn, folders: list[Path]) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied.

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
        rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
        applied = {int(v): (str(n), str(c)) for v, n, c in rows}
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                name, checksum = applied[migration.version]
                if checksum != migration.checksum:
                    raise ConfigurationError(
                        f"migration {name} was changed after it was applied; add a new "
                        "numbered migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            log.info("applied migration %s", migration.name)
            done.append(migration.name)
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
