"""The resources a process holds for its lifetime: settings, store, pool, key ring."""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from core import db, migrate
from core.db import Conn
from core.keys import Keyring
from core.metrics import Metrics
from core.settings import Settings
from core.throttle import AuthThrottle

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    store: db.Store
    pool: ConnectionPool[Conn]
    keys: Keyring
    throttle: AuthThrottle
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def start(
        cls, settings: Settings, migration_dirs: list[Path], metrics: Metrics | None = None
    ) -> "Runtime":
        """Locate the store, migrate it (or check it is current), open the pool as the
        service's role, load and check the keys. ``metrics`` are the service's figures
        (the domain series are counted where their events happen); a command's own if none.

        Any failure closes what was opened and raises with a message saying what to fix.
        """
        store = _open_store(settings, migration_dirs)
        try:
            pool = db.open_pool(store.url, settings)
        except BaseException:
            store.close()
            raise
        try:
            with pool.connection() as conn:
                keys = _check(conn, store, settings, migration_dirs)
        except BaseException:
            pool.close()
            store.close()
            raise
        throttle = AuthThrottle(settings.auth_max_failures, settings.auth_failure_window_s)
        return cls(
            settings=settings,
            store=store,
            pool=pool,
            keys=keys,
            throttle=throttle,
            metrics=metrics or Metrics(),
        )

    def close(self) -> None:
        self.pool.close()
        self.store.close()


def prepare(settings: Settings, migration_dirs: list[Path]) -> db.Store:
    """Do once what every process's first start would otherwise do at the same moment:
    start the embedded server and create its roles and database, migrate (or check that
    the schema is current), create and register the master key. ``border serve`` calls it
    before it starts its workers, so a configuration fault ends there, once, and the
    workers find everything made. The caller closes the store when the workers are done;
    until then it keeps the embedded server up between them.
    """
    store = _open_store(settings, migration_dirs)
    try:
        with db.connect(store.url, source=store.source) as conn:
            _check(conn, store, settings, migration_dirs)
    except BaseException:
        store.close()
        raise
    return store


def _open_store(settings: Settings, migration_dirs: list[Path]) -> db.Store:
    """The store, migrated as its owner when the owner's URL is known: always for the
    embedded store, for an external one only with ``BORDER_OWNER_DATABASE_URL``."""
    store = db.locate(settings)
    try:
        if store.owner_url is not None:
            with db.connect(store.owner_url, source=store.owner_source) as conn:
                applied = migrate.apply(conn, migration_dirs)
            if applied:
                log.info("migrations applied: %s", ", ".join(applied))
    except BaseException:
        store.close()
        raise
    return store


def _check(conn: Conn, store: db.Store, settings: Settings, migration_dirs: list[Path]) -> Keyring:
    """Refuse a schema that is behind, then open the key ring (made on a new store)."""
    if store.owner_url is None:
        # The service's role cannot migrate; it only refuses a schema that is behind.
        migrate.require_current(conn, migration_dirs)
    return Keyring.open(conn, settings)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.state, "rt", None)
    if runtime is None:
        raise RuntimeError(
            "no runtime on the request state: build the app with border.app.create_app(), "
            "whose lifespan starts it"
        )
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
