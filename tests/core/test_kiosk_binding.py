"""DESIGN §14: a kiosk key must name a border point, or it could post at any point."""

from datetime import UTC, datetime
from uuid import uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from border import models, service
from border.cli import app as cli
from core import auth
from core import store as core_store
from core.errors import InvalidRequest
from core.settings import Settings
from tests.conftest import new_key, runtime_of


def count_clients(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM api_clients").fetchone()
    assert row is not None
    return int(row[0])


class TestKioskWithoutBorderPoint:
    def test_the_api_refuses_it(self, client: TestClient, database_url: str) -> None:
        admin = {"Authorization": f"Bearer {new_key(runtime_of(client), 'admin')}"}
        before = count_clients(database_url)
        response = client.post("/v1/clients", headers=admin, json={"name": "gate", "role": "kiosk"})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert response.json()["field"] == "border_point"
        assert count_clients(database_url) == before

    def test_the_command_line_refuses_it(self, settings: Settings, database_url: str) -> None:
        env = {"BORDER_DATA_DIR": str(settings.data_dir), "BORDER_DATABASE_URL": database_url}
        result = CliRunner().invoke(
            cli, ["clients", "create", "--name", "gate", "--role", "kiosk"], env=env
        )
        assert result.exit_code == 2
        assert "border_point" in result.stderr or "border point" in result.stderr
        assert auth.KEY_PREFIX not in result.stdout
        assert count_clients(database_url) == 0

    def test_the_service_refuses_it_whoever_calls(self, client: TestClient) -> None:
        body = models.ClientIn(name="gate", role="kiosk")
        with pytest.raises(InvalidRequest) as refused:
            service.create_client(runtime_of(client), auth.command_line("test"), body)
        assert refused.value.extra["field"] == "border_point"

    def test_other_roles_need_none(self, client: TestClient) -> None:
        admin = {"Authorization": f"Bearer {new_key(runtime_of(client), 'admin')}"}
        response = client.post(
            "/v1/clients", headers=admin, json={"name": "desk", "role": "officer"}
        )
        assert response.status_code == 201

    def test_an_unbound_kiosk_row_already_in_the_store_is_no_client(
        self, client: TestClient
    ) -> None:
        """A row written before the rule, even with a MAC that holds, authenticates nobody:
        401, like any row that is not a valid client."""
        rt = runtime_of(client)
        key = auth.new_api_key()
        row = core_store.ClientRow(
            id=uuid4(),
            name="old gate",
            role="kiosk",
            border_point=None,
            key_sha256=auth.key_digest(key),
            created_at=datetime.now(UTC),
            revoked_at=None,
            mac=None,
        )
        row = auth.sealed(rt.keys, row)
        with rt.pool.connection() as conn, conn.transaction():
            core_store.insert_client(conn, row)
        response = client.post(
            "/v1/crossings",
            headers={"Authorization": f"Bearer {key}"},
            data={"mrz": "x", "direction": "entry", "border_point": "ANY-POINT"},
        )
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
