from pathlib import Path

import psycopg
import pytest

from border.schema import migration_dirs
from core import migrate
from core.errors import ConfigurationError
from tests.conftest import in_parallel


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


class TestDiscover:
    def test_project_migrations_are_numbered_uniquely_and_in_order(self) -> None:
        versions = [m.version for m in migrate.discover(migration_dirs())]
        assert versions == sorted(set(versions))
        assert versions[:2] == [1, 2]

    def test_duplicate_numbers_are_refused(self, tmp_path: Path) -> None:
        write(tmp_path / "a", "0007_one.sql", "SELECT 1;")
        write(tmp_path / "b", "0007_two.sql", "SELECT 1;")
        with pytest.raises(ConfigurationError, match="used twice"):
            migrate.discover([tmp_path / "a", tmp_path / "b"])

    def test_badly_named_files_are_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "7_oops.sql", "SELECT 1;")
        with pytest.raises(ConfigurationError, match="NNNN_description"):
            migrate.discover([tmp_path])


class TestApply:
    def test_applied_once_and_recorded(self, database_url: str, tmp_path: Path) -> None:
        write(tmp_path, "0900_extra.sql", "CREATE TABLE extra (id int);")
        folders = [*migration_dirs(), tmp_path]
        with psycopg.connect(database_url, autocommit=True) as conn:
            assert migrate.apply(conn, folders) == ["0900_extra.sql"]
            assert migrate.apply(conn, folders) == []
            rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version")
            assert [r[0] for r in rows][-1] == 900

    def test_an_edited_applied_migration_is_refused(
        self, database_url: str, tmp_path: Path
    ) -> None:
        write(tmp_path, "0900_extra.sql", "CREATE TABLE extra (id int);")
        with psycopg.connect(database_url, autocommit=True) as conn:
            migrate.apply(conn, [*migration_dirs(), tmp_path])
            write(tmp_path, "0900_extra.sql", "CREATE TABLE extra (id bigint);")
            with pytest.raises(ConfigurationError, match="changed after it was applied"):
                migrate.apply(conn, [*migration_dirs(), tmp_path])

    def test_a_failing_migration_leaves_nothing_half_done(
        self, database_url: str, tmp_path: Path
    ) -> None:
        write(tmp_path, "0900_bad.sql", "CREATE TABLE half (id int); SELECT * FROM nowhere;")
        with psycopg.connect(database_url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.UndefinedTable):
                migrate.apply(conn, [*migration_dirs(), tmp_path])
            assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
            assert conn.execute(
                "SELECT count(*) FROM schema_migrations WHERE version = 900"
            ).fetchone() == (0,)

    def test_processes_starting_at_once_take_turns(self, database_url: str, tmp_path: Path) -> None:
        # pg_sleep makes the first migrator hold the lock while the others arrive.
        write(tmp_path, "0900_slow.sql", "SELECT pg_sleep(0.3); CREATE TABLE slow (id int);")
        folders = [*migration_dirs(), tmp_path]

        def start() -> list[str]:
            with psycopg.connect(database_url, autocommit=True) as conn:
                return migrate.apply(conn, folders)

        results = in_parallel(start, times=4)
        assert sorted(results) == [[], [], [], ["0900_slow.sql"]]


class TestStatus:
    def test_a_migration_is_pending_until_applied(self, database_url: str, tmp_path: Path) -> None:
        write(tmp_path, "0900_extra.sql", "CREATE TABLE extra (id int);")
        folders = [*migration_dirs(), tmp_path]
        with psycopg.connect(database_url, autocommit=True) as conn:
            assert migrate.status(conn, folders)[-1] == ("0900_extra.sql", None)
            with pytest.raises(ConfigurationError, match="1 migrations pending, from 0900"):
                migrate.require_current(conn, folders)
            migrate.apply(conn, folders)
            name, applied_at = migrate.status(conn, folders)[-1]
            assert name == "0900_extra.sql"
            assert applied_at is not None
            migrate.require_current(conn, folders)

    def test_a_store_never_migrated_has_everything_pending(
        self, unmigrated_database_url: str
    ) -> None:
        with psycopg.connect(unmigrated_database_url, autocommit=True) as conn:
            rows = migrate.status(conn, migration_dirs())
        assert [at for _, at in rows] == [None] * len(migrate.discover(migration_dirs()))
