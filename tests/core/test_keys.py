import base64
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID, uuid4

import psycopg
import pytest

from border import models, service
from border.schema import migration_dirs
from core import auth, crypto
from core import store as core_store
from core.db import Conn, transaction
from core.errors import ConfigurationError
from core.keys import KEY_FILE_NAME, Keyring
from core.runtime import Runtime
from core.settings import Settings
from tests.conftest import in_parallel


@contextmanager
def running(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.start(settings, migration_dirs())
    try:
        yield rt
    finally:
        rt.close()


def with_ring(settings: Settings, ring: str) -> Settings:
    """The same store and data directory, the master key ring given as BORDER_MASTER_KEY."""
    return Settings(**{**settings.model_dump(), "master_key": ring})


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


@pytest.fixture(autouse=True)
def sealed_table(database_url: str) -> None:
    """A stand-in for a domain table, made as a migration makes one: the service's role
    (border_app, where the store has it) may write rows but not create tables."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE sealed (id uuid PRIMARY KEY, blob bytea)")
        conn.execute(
            "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'border_app') THEN"
            " GRANT SELECT, INSERT, UPDATE ON sealed TO border_app; END IF; END $$"
        )


def seal_records(rt: Runtime, owners: list[UUID]) -> None:
    """One sealed value per owner in the stand-in table, bound to its row."""
    with transaction(rt.pool) as conn:
        for owner in owners:
            dek = rt.keys.data_key(conn, owner, create=True)
            assert dek is not None
            blob = crypto.seal(dek, owner.bytes, crypto.aad("sealed", "blob", owner))
            conn.execute("INSERT INTO sealed VALUES (%s, %s)", (owner, blob))


def read_records(rt: Runtime, conn: Conn) -> dict[UUID, bytes]:
    out = {}
    for owner, blob in conn.execute("SELECT id, blob FROM sealed").fetchall():
        dek = rt.keys.data_key(conn, owner)
        assert dek is not None
        out[owner] = crypto.unseal(dek, bytes(blob), crypto.aad("sealed", "blob", owner))
    return out


class TestMasterKeyFile:
    def test_first_start_creates_an_owner_only_key_file(self, settings: Settings) -> None:
        with running(settings):
            path = settings.data_dir / KEY_FILE_NAME
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert set(crypto.read_key_file(path).keys) == {1}

    def test_a_replaced_key_file_fails_loudly_at_start(self, settings: Settings) -> None:
        with running(settings):
            pass
        crypto.write_key_file(
            crypto.MasterKeys({1: crypto.new_key()}), settings.data_dir / KEY_FILE_NAME
        )
        with pytest.raises(ConfigurationError, match="version 1 is not the key"):
            Runtime.start(settings, migration_dirs())

    def test_a_lost_key_file_is_not_silently_replaced(self, settings: Settings) -> None:
        with running(settings):
            pass
        (settings.data_dir / KEY_FILE_NAME).unlink()
        with pytest.raises(ConfigurationError, match="is missing"):
            Runtime.start(settings, migration_dirs())
        assert not (settings.data_dir / KEY_FILE_NAME).exists()


class TestMasterKeyFromEnvironment:
    def test_wrong_key_fails_loudly_at_start(self, settings: Settings) -> None:
        right = with_ring(settings, b64(crypto.new_key()))
        with running(right):
            pass
        wrong = with_ring(settings, b64(crypto.new_key()))
        with pytest.raises(ConfigurationError, match="not the key this store was written with"):
            Runtime.start(wrong, migration_dirs())
        assert not (settings.data_dir / KEY_FILE_NAME).exists()

    def test_rotation_then_retiring_the_old_version(self, settings: Settings) -> None:
        k1, k2 = b64(crypto.new_key()), b64(crypto.new_key())
        owners = [uuid4() for _ in range(5)]
        with running(with_ring(settings, f"1:{k1}")) as rt:
            seal_records(rt, owners)
        # The new version alone cannot read keys still wrapped under version 1.
        with pytest.raises(ConfigurationError, match=r"versions \[1\]"):
            Runtime.start(with_ring(settings, f"2:{k2}"), migration_dirs())
        with running(with_ring(settings, f"1:{k1},2:{k2}")) as rt:
            result = service.rotate_keys(rt, auth.command_line("test"))
        assert result.version == 2
        assert result.rewrapped == len(owners) + 1  # and the system root key
        with running(with_ring(settings, f"2:{k2}")) as rt, rt.pool.connection() as conn:
            assert read_records(rt, conn) == {o: o.bytes for o in owners}


class TestFirstStart:
    def test_processes_starting_together_on_a_new_store_make_one_key(
        self, settings: Settings
    ) -> None:
        # As `border serve --workers 6` does on a new data directory: no key file yet.
        def start() -> bytes:
            with running(settings) as rt:
                return rt.keys.snapshot_key

        keys = in_parallel(start, 6)
        assert len(set(keys)) == 1
        # The key file left on disk is the key the store registered.
        with running(settings) as rt:
            assert rt.keys.snapshot_key == keys[0]


class TestDataKeys:
    def test_one_key_per_owner_kept_across_restarts(self, settings: Settings) -> None:
        owner = uuid4()
        with running(settings) as rt, rt.pool.connection() as conn:
            first = rt.keys.data_key(conn, owner, create=True)
            assert rt.keys.data_key(conn, owner, create=True) == first
            index = rt.keys.blind_index("UTO|L898902C3")
        with running(settings) as rt, rt.pool.connection() as conn:
            assert rt.keys.data_key(conn, owner) == first
            assert rt.keys.blind_index("UTO|L898902C3") == index
            assert rt.keys.data_key(conn, uuid4()) is None

    def test_shredded_key_leaves_its_records_unreadable(self, rt: Runtime) -> None:
        owner = uuid4()
        seal_records(rt, [owner])
        with transaction(rt.pool) as conn:
            assert rt.keys.shred(conn, owner)
            assert rt.keys.data_key(conn, owner) is None
            assert not rt.keys.shred(conn, owner)

    def test_ciphertext_moved_to_another_row_fails(self, rt: Runtime) -> None:
        a, b = uuid4(), uuid4()
        seal_records(rt, [a, b])
        with transaction(rt.pool) as conn:
            conn.execute("UPDATE sealed SET blob = (SELECT blob FROM sealed WHERE id = %s)", (a,))
            dek_b = rt.keys.data_key(conn, b)
            assert dek_b is not None
            (blob,) = conn.execute("SELECT blob FROM sealed WHERE id = %s", (b,)).fetchone() or ()
            with pytest.raises(crypto.DecryptionError):
                crypto.unseal(dek_b, bytes(blob), crypto.aad("sealed", "blob", b))

    def test_keys_and_records_stored_without_plaintext(self, rt: Runtime) -> None:
        owner = uuid4()
        seal_records(rt, [owner])
        with rt.pool.connection() as conn:
            dek = rt.keys.data_key(conn, owner)
            assert dek is not None
            (wrapped,) = (
                conn.execute(
                    "SELECT wrapped FROM data_keys WHERE owner_id = %s", (owner,)
                ).fetchone()
                or ()
            )
            assert dek not in bytes(wrapped)
            (blob,) = conn.execute("SELECT blob FROM sealed").fetchone() or ()
            assert owner.bytes not in bytes(blob)


class TestRotation:
    def test_rotation_keeps_every_record_readable(self, settings: Settings) -> None:
        owners = [uuid4() for _ in range(7)]
        with running(settings) as rt:
            seal_records(rt, owners)
            index = rt.keys.blind_index("UTO|X1234567")
            seen: list[tuple[int, int]] = []
            result = service.rotate_keys(
                rt, auth.command_line("test"), lambda d, t: seen.append((d, t))
            )
            assert (result.version, result.rewrapped) == (2, 8)
            assert seen[-1] == (8, 8)
            with rt.pool.connection() as conn:
                assert read_records(rt, conn) == {o: o.bytes for o in owners}
                versions = conn.execute("SELECT DISTINCT key_version FROM data_keys").fetchall()
                assert versions == [(2,)]
        ring = crypto.read_key_file(settings.data_dir / KEY_FILE_NAME)
        assert set(ring.keys) == {1, 2}
        # Version 1 can now be retired: the store needs only version 2.
        crypto.write_key_file(
            crypto.MasterKeys({2: ring.keys[2]}), settings.data_dir / KEY_FILE_NAME
        )
        with running(settings) as rt, rt.pool.connection() as conn:
            assert read_records(rt, conn) == {o: o.bytes for o in owners}
            assert rt.keys.blind_index("UTO|X1234567") == index

    def test_a_running_service_reads_keys_rotated_by_another_process(
        self, settings: Settings
    ) -> None:
        owners = [uuid4() for _ in range(3)]
        with running(settings) as service_rt, running(settings) as cli_rt:
            seal_records(service_rt, owners)
            service.rotate_keys(cli_rt, auth.command_line("test"))
            with service_rt.pool.connection() as conn:
                assert read_records(service_rt, conn) == {o: o.bytes for o in owners}


class TestRowMacKey:
    def client_row(self, rt: Runtime) -> core_store.ClientRow:
        created = service.create_client(
            rt, auth.command_line("test"), models.ClientIn(name="ops", role="admin")
        )
        with rt.pool.connection() as conn:
            row = core_store.client_by_key(conn, auth.key_digest(created.api_key))
        assert row is not None
        return row

    def test_client_macs_survive_rotation_and_retiring_the_old_version(
        self, settings: Settings
    ) -> None:
        with running(settings) as rt:
            row = self.client_row(rt)
            service.rotate_keys(rt, auth.command_line("test"))
        ring = crypto.read_key_file(settings.data_dir / KEY_FILE_NAME)
        crypto.write_key_file(
            crypto.MasterKeys({2: ring.keys[2]}), settings.data_dir / KEY_FILE_NAME
        )
        with running(settings) as rt:
            assert auth.client_intact(rt.keys, row)

    def test_a_row_sealed_under_another_stores_root_is_refused(self, rt: Runtime) -> None:
        """Someone admin on a test store copies his row, MAC and all, into production."""
        elsewhere = Keyring(rt.keys.master, crypto.new_key())
        row = auth.sealed(elsewhere, self.client_row(rt))
        assert auth.client_intact(elsewhere, row)
        assert not auth.client_intact(rt.keys, row)
