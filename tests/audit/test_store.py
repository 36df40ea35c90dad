import psycopg
import pytest

from audit import service as audit_service
from core import auth
from core.db import transaction
from core.runtime import Runtime
from tests.conftest import in_parallel


def append_events(rt: Runtime, n: int) -> None:
    principal = auth.command_line("test")
    for i in range(n):
        with transaction(rt.pool) as conn:
            audit_service.record(conn, rt.keys, principal, "test.event", detail={"i": i})


def verify(rt: Runtime) -> tuple[bool, int, int | None]:
    verdict = audit_service.verify(rt.pool, rt.keys, auth.command_line("test"))
    return verdict.ok, verdict.events, verdict.first_bad_seq


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_events SET outcome = 'denied' WHERE seq = 2",
            "DELETE FROM audit_events WHERE seq = 2",
            "TRUNCATE audit_events",
        ],
    )
    def test_the_trigger_refuses_changes(self, rt: Runtime, statement: str) -> None:
        append_events(rt, 3)
        with rt.pool.connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.encode())
        assert verify(rt) == (True, 3, None)

    def test_an_event_rolled_back_with_its_change_leaves_no_trace(self, rt: Runtime) -> None:
        append_events(rt, 2)

        def failing_change() -> None:
            with transaction(rt.pool) as conn:
                audit_service.record(conn, rt.keys, auth.command_line("t"), "test.event")
                raise RuntimeError("the change failed")

        with pytest.raises(RuntimeError):
            failing_change()
        append_events(rt, 1)
        assert verify(rt) == (True, 3, None)


class TestTheServiceRole:
    def test_cannot_switch_the_trigger_off(self, rt: Runtime) -> None:
        """DESIGN §14: the service connects as a role that owns no table."""
        with rt.pool.connection() as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")


class TestTamperBySuperuser:
    """A superuser can switch the trigger off (the service's role cannot); the chain still
    names the exact event."""

    @pytest.fixture(autouse=True)
    def _superuser(self, database_url: str) -> None:
        self.superuser_url = database_url

    def tamper(self, rt: Runtime, *statements: str) -> None:
        with psycopg.connect(self.superuser_url) as conn, conn.transaction():
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            for statement in statements:
                conn.execute(statement.encode())
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")

    def test_an_edited_row_is_found_at_its_seq(self, rt: Runtime) -> None:
        append_events(rt, 10)
        self.tamper(rt, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 6")
        assert verify(rt)[::2] == (False, 6)

    def test_an_edited_detail_is_found_at_its_seq(self, rt: Runtime) -> None:
        append_events(rt, 10)
        self.tamper(rt, """UPDATE audit_events SET detail = '{"i": 99}' WHERE seq = 4""")
        assert verify(rt)[::2] == (False, 4)

    def test_a_deleted_row_is_found_at_its_seq(self, rt: Runtime) -> None:
        append_events(rt, 10)
        self.tamper(rt, "DELETE FROM audit_events WHERE seq = 7")
        assert verify(rt)[::2] == (False, 7)

    def test_reordered_rows_are_found(self, rt: Runtime) -> None:
        append_events(rt, 10)
        self.tamper(
            rt,
            "UPDATE audit_events SET seq = 1000 WHERE seq = 3",
            "UPDATE audit_events SET seq = 3 WHERE seq = 8",
            "UPDATE audit_events SET seq = 8 WHERE seq = 1000",
        )
        assert verify(rt)[::2] == (False, 3)


class TestConcurrentAppends:
    def test_parallel_writers_never_fork_the_chain(self, rt: Runtime) -> None:
        in_parallel(lambda: append_events(rt, 15), times=6)
        assert verify(rt) == (True, 90, None)
