"""The resources a process holds for its lifetime: settings, store, pool, key ring."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from core import db, migrate
from core.db import Conn
from core.keys import Keyring
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

    @classmethod
    def start(cls, settings: Settings, migration_dirs: list[Path]) -> "Runtime":
        """Locate the store, open the pool, migrate, load and check the keys.

        Any failure closes what was opened and raises with a message saying what to fix.
        """
        store = db.locate(settings)
        try:
            pool = db.open_pool(store.url, settings)
        except BaseException:
            store.close()
            raise
        try:
            with pool.connection() as conn:
                applied = migrate.apply(conn, migration_dirs)
                if applied:
                    log.info("migrations applied: %s", ", ".join(applied))
                keys = Keyring.open(conn, settings)
        except BaseException:
            pool.close()
            store.close()
            raise
        throttle = AuthThrottle(settings.auth_max_failures, settings.auth_failure_window_s)
        return cls(settings=settings, store=store, pool=pool, keys=keys, throttle=throttle)

    def close(self) -> None:
        self.pool.close()
        self.store.close()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime | None = getattr(request.state, "rt", None)
    if runtime is None:
        raise RuntimeError(
            "no runtime on the request state: build the app with border.app.create_app(), "
            "whose lifespan starts it"
        )
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
