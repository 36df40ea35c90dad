"""Liveness and readiness (DESIGN §15): /health/live answers whenever the process does;
/health/ready, and /health with it, only when the database answers within a second, the
schema is current and the galleries are loaded. Neither needs a key or writes an audit
event."""

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from border.app import create_app
from border.schema import migration_dirs
from core import migrate
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import runtime_of

READY = ["/health/ready", "/health"]


def audit_count(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    assert row is not None
    return int(row[0])


def latest_migration() -> migrate.Migration:
    return migrate.discover(migration_dirs())[-1]


class TestLive:
    def test_live_answers_ok_without_a_key(self, client: TestClient) -> None:
        response = client.get("/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_live_answers_before_the_lifespan_and_ready_does_not(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        """Without the lifespan (no store, no galleries) the process is alive, not ready."""
        client = TestClient(create_app(settings, face_model), raise_server_exceptions=False)
        assert client.get("/health/live").json() == {"status": "ok"}
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"] == {
            "database": "unavailable",
            "migrations": "unknown",
            "galleries": "not loaded",
        }


class TestReady:
    @pytest.mark.parametrize("path", READY)
    def test_ready_on_a_healthy_app(self, client: TestClient, path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
        assert response.headers["cache-control"] == "no-store"

    def test_probes_write_no_audit_event(self, client: TestClient, database_url: str) -> None:
        before = audit_count(database_url)
        for _ in range(3):
            for path in ["/health/live", *READY]:
                assert client.get(path).status_code == 200
        assert audit_count(database_url) == before

    def test_a_pending_migration_makes_it_unready_and_applying_it_ready_again(
        self, client: TestClient, database_url: str
    ) -> None:
        latest = latest_migration()
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute(
                "DELETE FROM schema_migrations WHERE version = %s RETURNING checksum, applied_at",
                (latest.version,),
            ).fetchone()
        assert row is not None
        before = audit_count(database_url)
        for path in READY:
            response = client.get(path)
            assert response.status_code == 503, path
            body = response.json()
            assert body["error"] == "unavailable"
            assert body["checks"] == {
                "database": "ok",
                "migrations": f"pending: {latest.name}",
                "galleries": "ok",
            }
            assert latest.name in body["detail"]
        assert client.get("/health/live").status_code == 200
        assert audit_count(database_url) == before
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES (%s, %s, %s, %s)",
                (latest.version, latest.name, *row),
            )
        assert client.get("/health/ready").status_code == 200

    def test_a_missing_migrations_table_makes_it_unready(
        self, client: TestClient, database_url: str
    ) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE schema_migrations RENAME TO schema_migrations_away")
        try:
            response = client.get("/health/ready")
        finally:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("ALTER TABLE schema_migrations_away RENAME TO schema_migrations")
        assert response.status_code == 503
        checks = response.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["migrations"].startswith("pending: ")
        assert client.get("/health/ready").status_code == 200


@pytest.fixture
def own_server(tmp_path: Path, face_model: FaceModel) -> Iterator[TestClient]:
    """An app on an embedded PostgreSQL of its own, which this test may stop."""
    settings = Settings(data_dir=tmp_path, pool_min_size=1, pool_timeout_s=1.0)
    with TestClient(create_app(settings, face_model), raise_server_exceptions=False) as client:
        yield client


class TestStoreDown:
    def test_unready_fast_while_the_store_is_down_and_ready_once_it_is_back(
        self, own_server: TestClient
    ) -> None:
        client = own_server
        rt = runtime_of(client)
        server = rt.store.server
        assert server is not None
        with rt.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        assert row is not None
        audited = int(row[0])
        assert client.get("/health/ready").status_code == 200

        server.stop()  # type: ignore[attr-defined]
        try:
            for path in READY:
                started = time.monotonic()
                response = client.get(path)
                assert time.monotonic() - started < 3.5, f"{path} waited on a dead store"
                assert response.status_code == 503, path
                body = response.json()
                assert body["error"] == "unavailable"
                assert body["checks"] == {
                    "database": "unavailable",
                    "migrations": "unknown",
                    "galleries": "ok",
                }
                assert "database" in body["detail"]
                # Nothing of the connection (URL, socket, role) is named.
                assert "postgres" not in response.text.lower()
                assert "border_app" not in response.text
            assert client.get("/health/live").status_code == 200
        finally:
            server.start()  # type: ignore[attr-defined]

        # The pool reconnects in the background: no restart of the service.
        deadline = time.monotonic() + 60
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "the service did not become ready again"
            time.sleep(0.5)
        assert client.get("/health").json() == {"status": "ok"}
        with rt.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        assert row is not None
        assert int(row[0]) == audited
