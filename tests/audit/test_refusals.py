"""The tally of unauthenticated refusals (DESIGN §14): at most one event per address per
window, counts never lost, memory and events bounded whatever the number of addresses."""

from collections import Counter
from collections.abc import Iterable

from audit import service as audit_service
from audit.service import RefusalCount, RefusalTally
from core import auth
from core.db import transaction
from core.runtime import Runtime
from tests.conftest import in_parallel


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def total(counts: Iterable[RefusalCount | None]) -> int:
    return sum(c.refused for c in counts if c is not None)


def codes(counts: Iterable[RefusalCount | None]) -> Counter[str]:
    out: Counter[str] = Counter()
    for c in counts:
        if c is not None:
            out.update(c.codes)
    return out


class TestOneEventPerAddressPerWindow:
    def test_a_flood_from_one_address_is_one_event_then_its_count(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock)
        first = tally.note("198.51.100.7", "unauthorized", 401)
        assert [(c.address, c.refused, c.codes) for c in first] == [
            ("198.51.100.7", 1, {"401 unauthorized": 1})
        ]
        quiet = [tally.note("198.51.100.7", "not_found", 404) for _ in range(59)]
        assert quiet == [[]] * 59
        clock.now += 60
        (after,) = tally.note("198.51.100.7", "unauthorized", 401)
        # The 59 refused since the first event, and this one.
        assert (after.address, after.refused) == ("198.51.100.7", 60)
        assert after.codes == {"404 not_found": 59, "401 unauthorized": 1}

    def test_addresses_are_counted_apart(self) -> None:
        tally = RefusalTally(clock=Clock())
        due = [
            c for a in ("10.0.0.1", "10.0.0.2") for _ in range(5) for c in tally.note(a, "x", 404)
        ]
        assert [(c.address, c.refused) for c in due] == [("10.0.0.1", 1), ("10.0.0.2", 1)]

    def test_threads_make_one_event_and_lose_no_count(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock)

        def flood() -> list[RefusalCount]:
            return [c for _ in range(500) for c in tally.note("203.0.113.9", "not_found", 404)]

        due = [c for batch in in_parallel(flood, 8) for c in batch]
        assert len(due) == 1
        assert total([*due, tally.drain()]) == 8 * 500

    def test_a_quiet_address_is_swept_into_a_summary_after_its_window(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock)
        for _ in range(10):
            tally.note("192.0.2.1", "unauthorized", 401)
        clock.now += 61
        due = tally.note("192.0.2.2", "not_found", 404)
        summary = [c for c in due if c.address is None]
        assert [(c.refused, c.addresses, c.top) for c in summary] == [(9, 1, (("192.0.2.1", 9),))]
        assert len(tally) == 1  # the quiet address is forgotten
        assert tally.drain() is None


class TestBounded:
    def test_many_addresses_never_grow_the_tally_past_its_cap(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock, max_addresses=100)
        due: list[RefusalCount] = []
        for i in range(1000):
            for _ in range(2):
                due += tally.note(f"10.1.{i // 250}.{i % 250}", "unauthorized", 401)
                assert len(tally) <= 100
            clock.now += 0.01
        rest = tally.drain()
        assert total([*due, rest]) == 2000
        assert codes([*due, rest]) == {"401 unauthorized": 2000}
        # One event per new address, and a summary each time the cap was reached.
        summaries = [c for c in due if c.address is None]
        assert len(due) - len(summaries) == 1000
        assert 1 <= len(summaries) <= 10

    def test_events_per_window_are_budgeted_and_the_rest_summarised(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock, max_events=5)
        due = [c for i in range(20) for c in tally.note(f"10.2.0.{i}", "not_found", 404)]
        assert [c.refused for c in due] == [1] * 5
        clock.now += 60
        swept = tally.note("10.2.1.1", "not_found", 404)
        assert total(swept) == 16  # the 15 over the budget, and this one
        assert total([*due, *swept, tally.drain()]) == 21


class TestNoCountIsLost:
    def test_a_count_that_could_not_be_written_goes_with_the_next_event(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock)
        (failed,) = tally.note("192.0.2.5", "unauthorized", 401)
        tally.restore(failed)
        tally.note("192.0.2.5", "unauthorized", 401)
        clock.now += 60
        (written,) = tally.note("192.0.2.5", "unauthorized", 401)
        assert written.refused == 3

    def test_a_summary_that_could_not_be_written_is_written_with_the_next(self) -> None:
        clock = Clock()
        tally = RefusalTally(clock=clock)
        tally.note("192.0.2.6", "unauthorized", 401)
        tally.note("192.0.2.6", "unauthorized", 401)
        failed = tally.drain()
        assert failed is not None
        tally.restore(failed)
        tally.note("192.0.2.7", "not_found", 404)
        tally.note("192.0.2.7", "not_found", 404)
        last = tally.drain()
        assert last is not None
        assert (last.refused, last.addresses) == (2, 2)
        assert last.codes == {"401 unauthorized": 1, "404 not_found": 1}

    def test_drain_empties_the_tally(self) -> None:
        tally = RefusalTally(clock=Clock())
        assert tally.drain() is None
        tally.note("192.0.2.8", "x", 404)
        tally.note("192.0.2.8", "x", 404)
        drained = tally.drain()
        assert drained is not None
        assert drained.refused == 1
        assert len(tally) == 0
        assert tally.drain() is None


class TestRecordRefusals:
    def test_events_name_the_address_or_summarise_and_chain(self, rt: Runtime) -> None:
        tally = RefusalTally(clock=Clock())
        (one,) = tally.note("192.0.2.9", "unauthorized", 401)
        tally.note("192.0.2.9", "not_found", 404)
        summary = tally.drain()
        assert summary is not None
        with transaction(rt.pool) as conn:
            audit_service.record_refusals(conn, rt.keys, one, action="audit.verify", outcome="x")
            audit_service.record_refusals(conn, rt.keys, summary)
        with rt.pool.connection() as conn:
            rows = conn.execute(
                "SELECT actor, role, action, outcome, resource_type, resource_id, detail"
                " FROM audit_events ORDER BY seq"
            ).fetchall()
        assert [r[:6] for r in rows] == [
            ("anonymous", None, "audit.verify", "x", "address", "192.0.2.9"),
            ("anonymous", None, "refusals.unauthenticated", "refused", None, None),
        ]
        assert rows[0][6]["refused"] == 1
        assert rows[1][6]["refused"] == 1
        assert rows[1][6]["codes"] == {"404 not_found": 1}
        assert rows[1][6]["addresses"] == 1
        assert rows[1][6]["top"] == {"192.0.2.9": 1}
        verdict = audit_service.verify(rt.pool, rt.keys, auth.command_line("test"))
        assert verdict.ok
