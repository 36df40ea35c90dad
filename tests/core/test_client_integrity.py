"""DESIGN §14: every api_clients row carries a MAC, so a database insider who writes rows
gets no working key; creating and revoking clients are chain events."""

import logging
from datetime import UTC, datetime
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from border import service
from border.cli import app as cli
from border.schema import migration_dirs
from core import auth, crypto
from core.runtime import Runtime
from core.settings import Settings
from tests.conftest import new_key, runtime_of

AIRPORT = "UTO-AIR-1"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_id(database_url: str, key: str) -> UUID:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT id FROM api_clients WHERE key_sha256 = %s", (auth.key_digest(key),)
        ).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def insider(database_url: str, query: str, params: dict[str, object]) -> None:
    """What someone with write access to the database does, behind the service's back."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(query.encode(), params)


def lists_clients(client: TestClient, key: str) -> int:
    """The status an admin-only route gives this key."""
    return int(client.get("/v1/clients", headers=bearer(key)).status_code)


def chain_events(database_url: str, action: str) -> list[tuple[str, str, dict[str, object]]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT resource_id, actor, detail FROM audit_events WHERE action = %s ORDER BY seq",
            (action,),
        ).fetchall()
    return [(str(r[0]), str(r[1]), dict(r[2])) for r in rows]


class TestInsertedRows:
    def test_an_inserted_admin_row_with_a_valid_looking_key_hash_is_no_client(
        self, client: TestClient, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        key, row_id = auth.new_api_key(), uuid4()
        insider(
            database_url,
            "INSERT INTO api_clients (id, name, role, key_sha256, created_at)"
            " VALUES (%(id)s, 'backdoor', 'admin', %(key)s, now())",
            {"id": row_id, "key": auth.key_digest(key)},
        )
        with caplog.at_level(logging.WARNING, logger="core.auth"):
            response = client.get("/v1/clients", headers=bearer(key))
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(str(row_id) in w for w in warnings), warnings
        assert not any(key in w or key[len(auth.KEY_PREFIX) :] in w for w in warnings)

    def test_an_inserted_row_with_a_made_up_mac_is_no_client(
        self, client: TestClient, database_url: str
    ) -> None:
        key = auth.new_api_key()
        insider(
            database_url,
            "INSERT INTO api_clients (id, name, role, key_sha256, created_at, mac)"
            " VALUES (%(id)s, 'backdoor', 'admin', %(key)s, now(), %(mac)s)",
            {"id": uuid4(), "key": auth.key_digest(key), "mac": crypto.new_key()},
        )
        assert lists_clients(client, key) == 401


class TestAlteredRows:
    def test_a_role_raised_by_sql_authenticates_nobody(
        self, client: TestClient, database_url: str
    ) -> None:
        key = new_key(runtime_of(client), "officer")
        assert lists_clients(client, key) == 403
        insider(
            database_url,
            "UPDATE api_clients SET role = 'admin' WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )
        assert lists_clients(client, key) == 401

    def test_a_mac_copied_from_another_row_does_not_vouch_for_this_one(
        self, client: TestClient, database_url: str
    ) -> None:
        rt = runtime_of(client)
        admin, officer = new_key(rt, "admin"), new_key(rt, "officer")
        insider(
            database_url,
            "UPDATE api_clients SET role = 'admin',"
            " mac = (SELECT mac FROM api_clients WHERE key_sha256 = %(admin)s)"
            " WHERE key_sha256 = %(officer)s",
            {"admin": auth.key_digest(admin), "officer": auth.key_digest(officer)},
        )
        assert lists_clients(client, officer) == 401
        assert lists_clients(client, admin) == 200

    def test_a_key_hash_swapped_into_an_admin_row_opens_nothing(
        self, client: TestClient, database_url: str
    ) -> None:
        admin, mine = new_key(runtime_of(client), "admin"), auth.new_api_key()
        insider(
            database_url,
            "UPDATE api_clients SET key_sha256 = %(mine)s WHERE key_sha256 = %(admin)s",
            {"mine": auth.key_digest(mine), "admin": auth.key_digest(admin)},
        )
        assert lists_clients(client, mine) == 401

    def test_a_kiosk_moved_to_another_border_point_is_no_client(
        self, client: TestClient, database_url: str
    ) -> None:
        key = new_key(runtime_of(client), "kiosk", AIRPORT)
        assert lists_clients(client, key) == 403
        insider(
            database_url,
            "UPDATE api_clients SET border_point = 'UTO-LAND-9' WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )
        assert lists_clients(client, key) == 401

    def test_a_revocation_cleared_by_sql_does_not_bring_the_key_back(
        self, client: TestClient, database_url: str
    ) -> None:
        rt = runtime_of(client)
        key = new_key(rt, "admin")
        service.revoke_client(rt, auth.command_line("test"), client_id(database_url, key))
        assert lists_clients(client, key) == 401
        insider(
            database_url,
            "UPDATE api_clients SET revoked_at = NULL WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )
        assert lists_clients(client, key) == 401

    def test_revoking_a_tampered_row_does_not_vouch_for_it(
        self, client: TestClient, database_url: str
    ) -> None:
        """The MAC is rewritten on revocation only for a row whose MAC held: otherwise an
        admin revoking a suspicious row would bless the insider's version of it."""
        rt = runtime_of(client)
        key = new_key(rt, "officer")
        insider(
            database_url,
            "UPDATE api_clients SET role = 'admin' WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )
        service.revoke_client(rt, auth.command_line("test"), client_id(database_url, key))
        insider(
            database_url,
            "UPDATE api_clients SET revoked_at = NULL WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )
        assert lists_clients(client, key) == 401


class TestUnsealedRows:
    """Rows written before the MAC existed have none: they are refused until an operator
    seals them on purpose, never blessed automatically at start-up."""

    def unseal(self, database_url: str, key: str) -> None:
        insider(
            database_url,
            "UPDATE api_clients SET mac = NULL WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(key)},
        )

    def test_a_row_without_a_mac_is_refused_until_sealed(
        self, client: TestClient, database_url: str
    ) -> None:
        rt = runtime_of(client)
        key = new_key(rt, "admin")
        self.unseal(database_url, key)
        assert lists_clients(client, key) == 401
        sealed = service.seal_clients(rt, auth.command_line("clients seal"))
        assert [c.client_id for c in sealed] == [client_id(database_url, key)]
        assert lists_clients(client, key) == 200
        events = chain_events(database_url, "clients.seal")
        assert [(e[0], e[2]) for e in events] == [
            (str(client_id(database_url, key)), {"role": "admin", "border_point": None})
        ]

    def test_a_restart_does_not_seal_anything(
        self, settings: Settings, client: TestClient, database_url: str
    ) -> None:
        key = new_key(runtime_of(client), "admin")
        self.unseal(database_url, key)
        Runtime.start(settings, migration_dirs()).close()
        assert lists_clients(client, key) == 401

    def test_sealing_leaves_rows_with_a_mac_and_unbound_kiosks_alone(
        self, client: TestClient, database_url: str
    ) -> None:
        rt = runtime_of(client)
        officer, kiosk = new_key(rt, "officer"), new_key(rt, "kiosk", AIRPORT)
        insider(
            database_url,
            "UPDATE api_clients SET role = 'admin' WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(officer)},
        )
        insider(
            database_url,
            "UPDATE api_clients SET mac = NULL, border_point = NULL WHERE key_sha256 = %(key)s",
            {"key": auth.key_digest(kiosk)},
        )
        assert service.seal_clients(rt, auth.command_line("clients seal")) == []
        assert lists_clients(client, officer) == 401
        assert lists_clients(client, kiosk) == 401

    def test_only_the_clients_named_are_sealed(self, client: TestClient, database_url: str) -> None:
        rt = runtime_of(client)
        first, second = new_key(rt, "admin"), new_key(rt, "admin")
        self.unseal(database_url, first)
        self.unseal(database_url, second)
        named = client_id(database_url, second)
        sealed = service.seal_clients(rt, auth.command_line("clients seal"), client_ids=[named])
        assert [c.client_id for c in sealed] == [named]
        assert (lists_clients(client, first), lists_clients(client, second)) == (401, 200)


class TestChainEvents:
    def test_api_create_and_revoke_are_chain_events_without_the_key(
        self, client: TestClient, database_url: str
    ) -> None:
        admin = new_key(runtime_of(client), "admin")
        created = client.post(
            "/v1/clients",
            headers=bearer(admin),
            json={"name": "gate 4", "role": "kiosk", "border_point": AIRPORT},
        )
        assert created.status_code == 201, created.text
        body = created.json()
        revoked = client.delete(f"/v1/clients/{body['client_id']}", headers=bearer(admin))
        assert revoked.status_code == 204
        admin_id = str(client_id(database_url, admin))
        expected = (body["client_id"], admin_id, {"role": "kiosk", "border_point": AIRPORT})
        assert chain_events(database_url, "clients.create")[-1] == expected
        assert chain_events(database_url, "clients.revoke") == [expected]
        self.assert_no_key_in_the_log(database_url, body["api_key"])
        auditor = bearer(new_key(runtime_of(client), "auditor"))
        assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True

    def test_cli_create_and_revoke_are_chain_events_without_the_key(
        self, settings: Settings, database_url: str
    ) -> None:
        env = {"BORDER_DATA_DIR": str(settings.data_dir), "BORDER_DATABASE_URL": database_url}
        runner = CliRunner()
        created = runner.invoke(
            cli,
            ["clients", "create", "--name", "gate 5", "--role", "kiosk", "--border-point", AIRPORT],
            env=env,
        )
        assert created.exit_code == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        new_id = str(client_id(database_url, key))
        revoked = runner.invoke(cli, ["clients", "revoke", new_id], env=env)
        assert revoked.exit_code == 0, revoked.stderr
        for action in ("clients.create", "clients.revoke"):
            [(resource, actor, detail)] = chain_events(database_url, action)
            assert resource == new_id
            assert actor.startswith("cli:")
            assert detail == {"role": "kiosk", "border_point": AIRPORT}
        self.assert_no_key_in_the_log(database_url, key)

    def assert_no_key_in_the_log(self, database_url: str, key: str) -> None:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT row_to_json(a)::text FROM audit_events a").fetchall()
        secret = key[len(auth.KEY_PREFIX) :]
        digest = auth.key_digest(key).hex()
        assert not any(secret in r[0] or digest in r[0] for r in rows)


class TestRowMac:
    """The MAC helper takes the fields, so a staff accounts table can use it too."""

    key = crypto.new_key()

    def test_field_boundaries_and_absence_are_told_apart(self) -> None:
        row = uuid4()
        mac = crypto.row_mac
        assert mac(self.key, "t", row, {"a": "x", "b": "yz"}) != mac(
            self.key, "t", row, {"a": "xy", "b": "z"}
        )
        assert mac(self.key, "t", row, {"a": None}) != mac(self.key, "t", row, {"a": ""})
        assert mac(self.key, "t", row, {"a": b"x"}) != mac(self.key, "t", row, {"a": "x"})
        assert mac(self.key, "t", row, {"a": "x"}) != mac(self.key, "u", row, {"a": "x"})
        assert mac(self.key, "t", row, {"a": "x"}) != mac(self.key, "t", uuid4(), {"a": "x"})

    def test_the_same_instant_in_any_zone_gives_the_same_mac(self) -> None:
        row, at = uuid4(), datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
        other_zone = at.astimezone(datetime.now().astimezone().tzinfo)
        assert crypto.row_mac(self.key, "t", row, {"at": at}) == crypto.row_mac(
            self.key, "t", row, {"at": other_zone}
        )

    def test_a_naive_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="time zone"):
            crypto.row_mac(self.key, "t", uuid4(), {"at": datetime(2024, 5, 1)})
