"""Test fixtures: one embedded PostgreSQL for the session, a fresh database per test cloned
from a migrated template, and apps built by ``create_app`` exactly as in production: they
connect as the service's role (``border_app``), so every test also proves that its grants
suffice. Fixtures that tamper with the store use the superuser's ``database_url``."""

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from border import models, service
from border.app import create_app
from border.schema import migration_dirs
from core import auth, db, migrate
from core.runtime import Runtime
from core.settings import Settings
from enrollment.templates import FaceModel

T = TypeVar("T")
FACES = Path(__file__).resolve().parents[1] / "samples" / "faces"
TEMPLATE = "border_template"
# The border point of the kiosk in ``headers`` (tests.border.crossing_helpers.AIRPORT).
KIOSK_BORDER_POINT = "UTO-AIR-1"


@pytest.fixture(autouse=True)
def _no_border_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own BORDER_* variables must not leak into the tests."""
    for name in list(os.environ):
        if name.startswith("BORDER_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's embedded server, reached as its superuser, with a template migrated
    by the owner role. The server stops when the test process exits."""
    data_dir = tmp_path_factory.mktemp("pg")
    store = db.locate(Settings(data_dir=data_dir))
    assert store.server is not None
    admin_url = store.server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(TEMPLATE), sql.Identifier(db.OWNER_ROLE)
            )
        )
    template = as_role(_with_database(admin_url, TEMPLATE), db.OWNER_ROLE)
    with psycopg.connect(template, autocommit=True) as conn:
        migrate.apply(conn, migration_dirs())
    return admin_url


def _with_database(url: str, name: str) -> str:
    return url.replace("/postgres?", f"/{name}?")


def as_role(url: str, role: str) -> str:
    """The same database reached as ``role`` (the embedded server trusts its socket)."""
    return make_conninfo(url, user=role)


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A database of the test's own, migrated, empty, reached as the superuser (to look
    at or tamper with what the service cannot); dropped afterwards."""
    name = f"t_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE), sql.Identifier(db.OWNER_ROLE)
            )
        )
    yield _with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def unmigrated_database_url(pg_admin_url: str) -> Iterator[str]:
    """A database owned by the owner role with nothing migrated yet, reached as the
    superuser; dropped afterwards."""
    name = f"t_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(db.OWNER_ROLE)
            )
        )
    yield _with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def app_database_url(database_url: str) -> str:
    """The test's database as the service connects to it in production: as border_app."""
    return as_role(database_url, db.APP_ROLE)


@pytest.fixture
def owner_database_url(database_url: str) -> str:
    """The test's database as the schema owner, who migrates it."""
    return as_role(database_url, db.OWNER_ROLE)


@pytest.fixture
def settings(tmp_path: Path, app_database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=SecretStr(app_database_url), pool_min_size=1)


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.start(settings, migration_dirs())
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone server for the whole run, started on first use (about
    10 s); its URI. Tests share it, each under collection names of its own."""
    from tests.milvus import standalone_server

    with standalone_server(tmp_path_factory.mktemp("milvus")) as uri:
        yield uri


@pytest.fixture(scope="session")
def face_model() -> FaceModel:
    """The real dlib models, loaded once for the whole run."""
    model = FaceModel()
    model.warm_up()
    return model


@pytest.fixture
def client(settings: Settings, face_model: FaceModel) -> Iterator[TestClient]:
    app = create_app(settings, face_model)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def runtime_of(test_client: TestClient) -> Runtime:
    """The runtime the app's lifespan started."""
    rt: Runtime = test_client.app_state["rt"]
    return rt


def new_key(rt: Runtime, role: str, border_point: str | None = None) -> str:
    """An API key for a new client with ``role``, created as the command line does."""
    body = models.ClientIn(name=f"test {role}", role=role, border_point=border_point)  # type: ignore[arg-type]
    return service.create_client(rt, auth.command_line("test setup"), body).api_key


@pytest.fixture
def headers(client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers for one client of every role; the kiosk is bound to
    KIOSK_BORDER_POINT, as every kiosk key must be (DESIGN §14)."""
    rt = runtime_of(client)
    keys = {
        role: new_key(rt, role, KIOSK_BORDER_POINT if role == "kiosk" else None)
        for role in auth.ROLES
    }
    return {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}


def in_parallel(task: Callable[[], T], times: int) -> list[T]:
    """Run ``task`` on ``times`` threads at once; the first exception is raised here."""
    with ThreadPoolExecutor(max_workers=times) as pool:
        futures = [pool.submit(task) for _ in range(times)]
        return [f.result() for f in futures]
