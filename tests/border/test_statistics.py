"""Migration statistics (DESIGN §12) on the real store: counts kept on write by crossings
and resolutions, small-cell and complementary suppression, CSV, the errors, and erasure
leaving the aggregates as they were."""

import csv
import io
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from border import statistics
from border import statistics_store as store
from tests.border.crossing_helpers import AIRPORT, LAND, Clock, cross, grey_jpeg, traveller
from tests.conftest import in_parallel, runtime_of

Headers = dict[str, dict[str, str]]
K = 5  # the default policy's [statistics] min_cell
DAY = date(2026, 3, 10)


def seed(client: TestClient, *counts: store.Count) -> None:
    """Counts written through the same upsert the crossings use."""
    with runtime_of(client).pool.connection() as conn, conn.transaction():
        store.add(conn, list(counts))


def at_point(point: str, count: int, day: date = DAY, **keys: str) -> store.Count:
    values = {
        "border_point": point, "nationality": "USA", "direction": "entry", "decision": "admit",
        "visa_type": "none", "age_band": "25-34", "protection": "none",
    } | keys  # fmt: skip
    return store.Count(day=day, count=count, **values)


def ask(client: TestClient, headers: Headers, role: str = "statistician", **params: str) -> Any:
    response = client.get("/v1/statistics", headers=headers[role], params=params)
    assert response.status_code == 200, response.json()
    return response.json()


def by_point(body: Any) -> dict[str, int | None]:
    return {c["border_point"]: c["count"] for c in body["cells"]}


def everything(client: TestClient) -> list[tuple[Any, ...]]:
    """Every row of every aggregate table, to compare before and after."""
    rows: list[tuple[Any, ...]] = []
    with runtime_of(client).pool.connection() as conn:
        for query in (
            "SELECT 'd', * FROM statistics_daily ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
            "SELECT 'm', * FROM statistics_monthly ORDER BY 2, 3, 4, 5, 6, 7, 8, 9, 10, 11",
        ):
            rows.extend(conn.execute(query).fetchall())
    return rows


def counted(client: TestClient, group_by: tuple[str, ...], day: date) -> dict[tuple[str, ...], int]:
    """The raw counts of one day, unsuppressed, as the store holds them."""
    with runtime_of(client).pool.connection() as conn:
        cells = store.cells(
            conn, group_by=group_by, first=day, last=day, months_from=day, months_to=day
        )
    return dict(cells)


class TestSuppression:
    def test_a_cell_of_k_minus_one_is_suppressed_and_one_of_k_shown(
        self, client: TestClient, headers: Headers
    ) -> None:
        seed(client, at_point("A", K - 1), at_point("B", K - 2), at_point("C", K), at_point("D", 9))
        body = ask(
            client, headers, **{"from": "2026-03-01", "to": "2026-03-31"}, group_by="border_point"
        )

        assert body["k"] == K
        assert by_point(body) == {"A": None, "B": None, "C": K, "D": 9}
        assert [c["suppressed"] for c in body["cells"]] == [True, True, False, False]
        assert body["suppressed"] == 2
        assert "total" not in body

    def test_one_cell_alone_under_k_takes_the_next_smallest_with_it(
        self, client: TestClient, headers: Headers
    ) -> None:
        seed(client, at_point("A", K - 1), at_point("B", 40), at_point("C", 7), at_point("D", 9))
        body = ask(
            client, headers, **{"from": "2026-03-10", "to": "2026-03-10"}, group_by="border_point"
        )

        # A month's total (from another query) minus B, C and D would give A away.
        assert by_point(body) == {"A": None, "B": 40, "C": None, "D": 9}
        assert body["suppressed"] == 2

    def test_two_keys_suppress_within_each_row_and_column(
        self, client: TestClient, headers: Headers
    ) -> None:
        seed(
            client,
            at_point("A", 20, date(2026, 1, 5)), at_point("B", 3, date(2026, 1, 9)),
            at_point("C", 30, date(2026, 1, 20)), at_point("A", 25, date(2026, 2, 5)),
            at_point("B", 12, date(2026, 2, 6)), at_point("C", 28, date(2026, 2, 7)),
        )  # fmt: skip
        body = ask(
            client, headers, **{"from": "2026-01-01", "to": "2026-02-28"},
            group_by="month,border_point",
        )  # fmt: skip
        cells = {(c["month"], c["border_point"]): c["count"] for c in body["cells"]}

        # January's B alone under k: overall, the smallest other cell goes too (February's
        # B, 12); then each month holds one suppressed cell, and takes its smallest other
        # (A, 20 and 25). Every row and column now hides none or at least two.
        assert cells == {
            ("2026-01", "A"): None, ("2026-01", "B"): None, ("2026-01", "C"): 30,
            ("2026-02", "A"): None, ("2026-02", "B"): None, ("2026-02", "C"): 28,
        }  # fmt: skip
        for group in ({"2026-01", "2026-02"}, {"A", "B", "C"}):
            for name in group:
                hidden = [c for c in body["cells"] if name in c.values() and c["count"] is None]
                assert len(hidden) != 1, name

    def test_suppression_rules_without_the_store(self) -> None:
        assert statistics.suppress([(("A",), 4), (("B",), 5)], 5) == [True, True]
        assert statistics.suppress([(("A",), 5), (("B",), 5)], 5) == [False, False]
        assert statistics.suppress([(("A",), 1), (("B",), 2), (("C",), 9)], 5) == [
            True, True, False,
        ]  # fmt: skip
        assert statistics.suppress([(("A",), 1)], 5) == [True]
        assert statistics.suppress([], 5) == []


class TestCsv:
    def test_keys_in_group_by_order_then_count_empty_when_suppressed(
        self, client: TestClient, headers: Headers
    ) -> None:
        seed(
            client,
            at_point("A", 8), at_point("B", 2), at_point("C", 6),
            at_point("A", 11, direction="exit"), at_point("=cmd", 9, direction="exit"),
        )  # fmt: skip
        response = client.get(
            "/v1/statistics",
            headers=headers["officer"] | {"Accept": "text/csv"},
            params={"from": "2026-03-10", "to": "2026-03-10", "group_by": "direction,border_point"},
        )

        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert rows == [
            ["direction", "border_point", "count"],
            ["entry", "A", "8"], ["entry", "B", ""], ["entry", "C", ""],
            ["exit", "'=cmd", "9"], ["exit", "A", "11"],
        ]  # fmt: skip


class TestCountedOnWrite:
    def test_a_crossing_counts_once_and_under_each_reason(
        self, client: TestClient, headers: Headers
    ) -> None:
        clock = Clock.start()
        born = date(clock.today.year - 30, 1, 1)
        admitted = cross(
            client, headers["officer"], mrz=traveller("USA", "US1000001", birth_date=born),
            border_point=LAND, at=clock.now,
        )  # fmt: skip
        referred = cross(
            client, headers["kiosk"], mrz=traveller("USA", "US1000002", birth_date=born),
            image=grey_jpeg(), border_point=AIRPORT, at=clock.now,
        )  # fmt: skip
        assert admitted["decision"] == "admit"
        assert referred["decision"] == "refer"
        day = statistics_day(client, referred["crossing_id"])
        keys = ("border_point", "nationality", "direction", "decision", "visa_type", "age_band")

        assert counted(client, keys, day) == {
            (LAND, "USA", "entry", "admit", "none", "25-34"): 1,
            (AIRPORT, "USA", "entry", "refer", "none", "25-34"): 1,
        }
        codes = {r["code"] for r in referred["reasons"]}
        assert counted(client, ("decision", "reason"), day) == {
            ("admit", "none"): 1, **{("refer", code): 1 for code in codes},
        }  # fmt: skip

    def test_a_resolution_moves_the_referral_to_its_outcome_with_its_flags(
        self, client: TestClient, headers: Headers
    ) -> None:
        clock = Clock.start()
        referred = cross(
            client, headers["kiosk"], mrz=traveller("SYR", "SY0000001"), image=grey_jpeg(),
            at=clock.now,
        )  # fmt: skip
        day = statistics_day(client, referred["crossing_id"])
        assert counted(client, ("decision", "protection"), day) == {("refer", "none"): 1}

        response = client.post(
            f"/v1/crossings/{referred['crossing_id']}/resolution",
            headers=headers["officer"],
            json={
                "outcome": "protection", "note": "asks for asylum at the desk",
                "protection": ["unaccompanied_minor", "asylum_request"],
            },
        )  # fmt: skip
        assert response.status_code == 200, response.json()

        assert counted(client, ("decision", "protection"), day) == {
            ("protection", "asylum_request+unaccompanied_minor"): 1
        }
        assert counted(client, ("nationality", "reason"), day) == {
            ("SYR", r["code"]): 1 for r in referred["reasons"]
        }

    def test_erasing_the_traveller_leaves_the_aggregates_as_they_were(
        self, client: TestClient, headers: Headers
    ) -> None:
        clock = Clock.start()
        body = cross(client, headers["officer"], mrz=traveller("USA", "US2000001"), at=clock.now)
        assert body["person_id"] is not None
        before = everything(client)
        assert before

        response = client.delete(f"/v1/persons/{body['person_id']}", headers=headers["admin"])
        assert response.status_code == 204

        assert everything(client) == before

    def test_crossings_at_once_at_one_point_are_all_counted(
        self, client: TestClient, headers: Headers
    ) -> None:
        clock = Clock.start()
        numbers = iter(range(10))

        def one() -> Any:
            mrz = traveller("USA", f"US30000{next(numbers):02d}")
            return cross(client, headers["kiosk"], mrz=mrz, image=grey_jpeg(), at=clock.now)

        bodies = in_parallel(one, 6)
        day = statistics_day(client, bodies[0]["crossing_id"])
        assert counted(client, ("border_point", "decision"), day) == {(AIRPORT, "refer"): 6}
        assert counted(client, ("nationality", "direction"), day) == {("USA", "entry"): 6}


def statistics_day(client: TestClient, crossing_id: str) -> date:
    """The host day a crossing was counted under."""
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute("SELECT day FROM crossings WHERE id = %s", (crossing_id,)).fetchone()
    assert row is not None
    day: date = row[0]
    return day


class TestAccess:
    @pytest.mark.parametrize("role", ["statistician", "officer", "auditor"])
    def test_readers_are_answered_and_audited_without_personal_data(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        seed(client, at_point("A", 9))
        body = ask(
            client,
            headers,
            role,
            **{"from": "2026-03-01", "to": "2026-03-31"},
            group_by="nationality",
        )
        assert body["cells"] == [{"nationality": "USA", "count": 9, "suppressed": False}]
        with runtime_of(client).pool.connection() as conn:
            row = conn.execute(
                "SELECT role, resource_id, detail FROM audit_events"
                " WHERE action = 'statistics.read' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        assert row[0] == role
        assert row[1] is None
        assert row[2] == {
            "from": "2026-03-01", "to": "2026-03-31", "group_by": ["nationality"],
            "cells": 1, "suppressed": 0,
        }  # fmt: skip

    @pytest.mark.parametrize("role", ["kiosk", "consular", "admin", "dpo"])
    def test_other_roles_are_refused(self, client: TestClient, headers: Headers, role: str) -> None:
        response = client.get(
            "/v1/statistics",
            headers=headers[role],
            params={"from": "2026-03-01", "to": "2026-03-31", "group_by": "month"},
        )
        assert response.status_code == 403


class TestBadInput:
    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "month,colour"}, "group_by"),
            ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "person_id"}, "group_by"),
            ({"from": "2026-01-01", "to": "2026-01-31", "group_by": "month,month"}, "group_by"),
            ({"from": "2026-01-01", "to": "2026-01-31", "group_by": ""}, "group_by"),
            ({"from": "2026-01-01", "to": "2026-01-31"}, "group_by"),
            ({"from": "2020-01-01", "to": "2025-01-01", "group_by": "month"}, "to"),
            ({"from": "2026-02-01", "to": "2026-01-31", "group_by": "month"}, "to"),
            ({"to": "2026-01-31", "group_by": "month"}, "from"),
            ({"from": "2026-01-01", "group_by": "month"}, "to"),
            ({"from": "2026-13-01", "to": "2026-01-31", "group_by": "month"}, "from"),
        ],
    )
    def test_is_refused_naming_the_field(
        self, client: TestClient, headers: Headers, params: dict[str, str], field: str
    ) -> None:
        before = everything(client)
        response = client.get("/v1/statistics", headers=headers["statistician"], params=params)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert response.json()["field"] == field
        assert everything(client) == before

    def test_five_years_exactly_is_allowed(self, client: TestClient, headers: Headers) -> None:
        body = ask(client, headers, **{"from": "2021-01-01", "to": "2025-12-31"}, group_by="month")
        assert body["cells"] == []


class TestRanges:
    def test_partial_months_are_read_from_the_days(
        self, client: TestClient, headers: Headers
    ) -> None:
        seed(
            client,
            at_point("A", 6, date(2026, 1, 31)), at_point("A", 7, date(2026, 2, 1)),
            at_point("A", 8, date(2026, 2, 28)), at_point("A", 9, date(2026, 3, 1)),
            at_point("A", 10, date(2026, 3, 2)),
        )  # fmt: skip
        body = ask(client, headers, **{"from": "2026-01-31", "to": "2026-03-01"}, group_by="month")
        assert [(c["month"], c["count"]) for c in body["cells"]] == [
            ("2026-01", 6), ("2026-02", 15), ("2026-03", 9),
        ]  # fmt: skip
        weeks = ask(client, headers, **{"from": "2026-02-01", "to": "2026-03-02"}, group_by="week")
        assert [c["week"] for c in weeks["cells"]] == ["2026-W05", "2026-W09", "2026-W10"]
        assert sum(c["count"] for c in weeks["cells"]) == 7 + 8 + 9 + 10
