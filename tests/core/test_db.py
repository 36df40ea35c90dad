"""The store's two roles (DESIGN §14): the service connects as border_app, which is no
superuser, owns nothing and holds only its row privileges, so it cannot switch off the audit
trigger or change the schema; migrations run as the owner and grant it what it needs."""

from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from pydantic import SecretStr

from audit import service as audit_service
from border.schema import migration_dirs
from core import auth, db, migrate
from core.db import transaction
from core.errors import ConfigurationError
from core.runtime import Runtime
from core.settings import Settings
from tests.conftest import as_role

Privileges = dict[str, set[str]]

# What the service must never do to the audit log, each with the refusal's words: the
# privilege check's, not the trigger's ("append-only"), which only stops a role that may.
TAMPERING = [
    ("ALTER TABLE audit_events DISABLE TRIGGER USER", "must be owner"),
    ("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete", "must be owner"),
    ("ALTER TABLE audit_events DISABLE TRIGGER ALL", "must be owner"),
    ("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1", "permission denied"),
    ("DELETE FROM audit_events WHERE seq = 1", "permission denied"),
    ("TRUNCATE audit_events", "permission denied"),
    ("DROP TABLE audit_events", "must be owner"),
    ("DROP TRIGGER audit_events_no_truncate ON audit_events", "must be owner"),
    ("CREATE OR REPLACE FUNCTION audit_events_refuse_change() RETURNS trigger"
     " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$", "permission denied for schema"),
    ("ALTER TABLE audit_events ADD COLUMN note text", "must be owner"),
    ("SET session_replication_role = replica", "permission denied"),
    ("CREATE TABLE shadow (id int)", "permission denied"),
]  # fmt: skip


def privileges(conn: psycopg.Connection[TupleRow], role: str) -> Privileges:
    """The table privileges ``role`` holds, table by table."""
    rows = conn.execute(
        """SELECT c.relname, array(SELECT a.privilege_type FROM aclexplode(c.relacl) a
                                   WHERE a.grantee = %s::regrole)
           FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')""",
        (role,),
    ).fetchall()
    return {str(name): set(held) for name, held in rows}


def write(folder: Path, name: str, text: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return [*migration_dirs(), folder]


class TestServiceRole:
    def test_the_service_connects_as_border_app_which_is_no_superuser(self, rt: Runtime) -> None:
        with rt.pool.connection() as conn:
            row = conn.execute(
                "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication,"
                " rolbypassrls FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        assert row == (db.APP_ROLE, False, False, False, False, False)

    def test_the_service_role_owns_nothing(self, rt: Runtime, database_url: str) -> None:
        with psycopg.connect(database_url) as conn:
            owned = conn.execute(
                """SELECT 'relation ' || relname FROM pg_class WHERE relowner = %(r)s::regrole
                   UNION ALL SELECT 'routine ' || proname FROM pg_proc
                             WHERE proowner = %(r)s::regrole
                   UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
                             WHERE nspowner = %(r)s::regrole
                   UNION ALL SELECT 'type ' || typname FROM pg_type
                             WHERE typowner = %(r)s::regrole
                   UNION ALL SELECT 'database ' || datname FROM pg_database
                             WHERE datdba = %(r)s::regrole""",
                {"r": db.APP_ROLE},
            ).fetchall()
            tables = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace"
            ).fetchall()
        assert owned == []
        assert tables == [(db.OWNER_ROLE,)]

    @pytest.mark.parametrize(("statement", "refusal"), TAMPERING)
    def test_the_service_cannot_touch_the_audit_log(
        self, rt: Runtime, database_url: str, statement: str, refusal: str
    ) -> None:
        with transaction(rt.pool) as conn:
            audit_service.record(conn, rt.keys, auth.command_line("test"), "test.event")
        with (
            rt.pool.connection() as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match=refusal),
        ):
            conn.execute(statement.encode())
        with psycopg.connect(database_url) as conn:
            triggers = conn.execute(
                "SELECT tgname, tgenabled FROM pg_trigger"
                " WHERE tgrelid = 'audit_events'::regclass ORDER BY tgname"
            ).fetchall()
            events = conn.execute("SELECT count(*) FROM audit_events").fetchone()
        assert events == (1,)
        assert triggers == [
            ("audit_events_no_truncate", "O"),
            ("audit_events_no_update_delete", "O"),
        ]

    def test_the_audit_log_is_read_and_appended_only(self, database_url: str) -> None:
        with psycopg.connect(database_url) as conn:
            assert privileges(conn, db.APP_ROLE)["audit_events"] == {"SELECT", "INSERT"}

    def test_tables_the_code_never_updates_or_deletes_from_are_not_granted_it(
        self, database_url: str
    ) -> None:
        with psycopg.connect(database_url) as conn:
            held = privileges(conn, db.APP_ROLE)
        assert held["schema_migrations"] == {"SELECT"}
        assert held["service_privileges"] == set()
        for table in ("master_key_versions", "dedup_overrides", "alert_indexes"):
            assert held[table] == {"SELECT", "INSERT"}, table
        for table in ("documents", "captures", "guardians"):
            assert held[table] == {"SELECT", "INSERT", "DELETE"}, table
        assert held["data_keys"] == {"SELECT", "INSERT", "UPDATE", "DELETE"}
        assert not any({"TRUNCATE", "REFERENCES", "TRIGGER"} & p for p in held.values())


class TestGrants:
    def test_a_table_of_a_later_migration_is_granted_to_the_service(
        self, owner_database_url: str, app_database_url: str, tmp_path: Path
    ) -> None:
        folders = write(
            tmp_path, "0900_later.sql",
            "CREATE SEQUENCE later_seq; CREATE TABLE later (id bigint PRIMARY KEY, v text);",
        )  # fmt: skip
        with psycopg.connect(owner_database_url, autocommit=True) as conn:
            assert migrate.apply(conn, folders) == ["0900_later.sql"]
        with psycopg.connect(app_database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO later VALUES (nextval('later_seq'), 'a')")
            conn.execute("UPDATE later SET v = 'b'")
            assert conn.execute("SELECT v FROM later").fetchall() == [("b",)]
            conn.execute("DELETE FROM later")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("TRUNCATE later")

    def test_a_later_table_listed_in_service_privileges_gets_only_those(
        self, owner_database_url: str, app_database_url: str, tmp_path: Path
    ) -> None:
        folders = write(
            tmp_path, "0900_journal.sql",
            "CREATE TABLE journal (id int PRIMARY KEY);"
            " INSERT INTO service_privileges VALUES ('journal', '{SELECT,INSERT}');",
        )  # fmt: skip
        with psycopg.connect(owner_database_url, autocommit=True) as conn:
            migrate.apply(conn, folders)
        with psycopg.connect(app_database_url, autocommit=True) as conn:
            conn.execute("INSERT INTO journal VALUES (1)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM journal")

    def test_privileges_beyond_the_service_s_are_taken_back_at_the_next_run(
        self, database_url: str, owner_database_url: str
    ) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("GRANT ALL ON audit_events, persons TO border_app")
        with psycopg.connect(owner_database_url, autocommit=True) as conn:
            migrate.apply(conn, migration_dirs())
            held = privileges(conn, db.APP_ROLE)
        assert held["audit_events"] == {"SELECT", "INSERT"}
        assert held["persons"] == {"SELECT", "INSERT", "UPDATE"}

    def test_a_run_with_nothing_to_change_writes_nothing(self, owner_database_url: str) -> None:
        with psycopg.connect(owner_database_url, autocommit=True) as conn:
            assert migrate.grant_service(conn) == []

    def test_a_missing_service_role_is_named(self, owner_database_url: str) -> None:
        with (
            psycopg.connect(owner_database_url, autocommit=True) as conn,
            pytest.raises(ConfigurationError, match="no role border_nobody"),
        ):
            migrate.apply(conn, migration_dirs(), grant_to="border_nobody")

    def test_a_table_the_service_role_owns_is_refused(
        self, database_url: str, owner_database_url: str
    ) -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE rogue (id int)")
            conn.execute("ALTER TABLE rogue OWNER TO border_app")
        with (
            psycopg.connect(owner_database_url, autocommit=True) as conn,
            pytest.raises(ConfigurationError, match="border_app owns rogue"),
        ):
            migrate.grant_service(conn)


class TestRequireCurrent:
    def test_the_service_refuses_a_schema_that_is_behind(
        self, unmigrated_database_url: str, tmp_path: Path
    ) -> None:
        settings = Settings(
            data_dir=tmp_path, database_url=SecretStr(as_role(unmigrated_database_url, db.APP_ROLE))
        )
        with pytest.raises(ConfigurationError, match="run `border db migrate`") as refused:
            Runtime.start(settings, migration_dirs())
        assert "BORDER_OWNER_DATABASE_URL" in str(refused.value)
        assert "\n" not in str(refused.value)

    def test_with_the_owner_s_url_the_service_migrates_at_start(
        self, unmigrated_database_url: str, tmp_path: Path
    ) -> None:
        settings = Settings(
            data_dir=tmp_path,
            database_url=SecretStr(as_role(unmigrated_database_url, db.APP_ROLE)),
            owner_database_url=SecretStr(as_role(unmigrated_database_url, db.OWNER_ROLE)),
            pool_min_size=1,
        )
        rt = Runtime.start(settings, migration_dirs())
        try:
            with rt.pool.connection() as conn:
                assert migrate.status(conn, migration_dirs())[-1][1] is not None
                assert conn.execute("SELECT current_user").fetchone() == (db.APP_ROLE,)
        finally:
            rt.close()


class TestEmbeddedStore:
    def test_it_makes_both_roles_and_hands_the_service_its_own(self, tmp_path: Path) -> None:
        rt = Runtime.start(Settings(data_dir=tmp_path, pool_min_size=1), migration_dirs())
        try:
            assert conninfo_to_dict(rt.store.url)["user"] == db.APP_ROLE
            assert rt.store.owner_url is not None
            assert conninfo_to_dict(rt.store.owner_url)["user"] == db.OWNER_ROLE
            with rt.pool.connection() as conn:
                assert conn.execute(
                    "SELECT current_user, pg_get_userbyid(datdba) FROM pg_database"
                    " WHERE datname = current_database()"
                ).fetchone() == (db.APP_ROLE, db.OWNER_ROLE)
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
                    conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        finally:
            rt.close()

    def test_a_store_made_by_the_superuser_is_taken_over(self, tmp_path: Path) -> None:
        """A data directory from before the roles: the superuser made and migrated the
        database and owns every table. The next start hands it to the owner role."""
        store = db.locate(Settings(data_dir=tmp_path))
        try:
            assert store.server is not None
            admin = store.server.get_uri()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("DROP DATABASE border")
                conn.execute("CREATE DATABASE border")
            with psycopg.connect(store.server.get_uri(database="border"), autocommit=True) as conn:
                migrate.apply(conn, migration_dirs(), grant_to=None)
            rt = Runtime.start(Settings(data_dir=tmp_path, pool_min_size=1), migration_dirs())
            try:
                with psycopg.connect(store.server.get_uri(database="border")) as conn:
                    owners = conn.execute(
                        "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                        " WHERE relnamespace = 'public'::regnamespace UNION"
                        " SELECT DISTINCT pg_get_userbyid(proowner) FROM pg_proc"
                        " WHERE pronamespace = 'public'::regnamespace"
                    ).fetchall()
                assert owners == [(db.OWNER_ROLE,)]
                with transaction(rt.pool) as conn:
                    audit_service.record(conn, rt.keys, auth.command_line("test"), "test.event")
            finally:
                rt.close()
        finally:
            store.close()
