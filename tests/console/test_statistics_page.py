"""The Statistics page in a real browser: the form (From, To, Group by), the table with its
suppressed cells, the CSV export, a refused field, and who may open it."""

import csv
import io
from collections.abc import Callable
from datetime import date

import pytest
from playwright.sync_api import Page, expect

from border import statistics_store as store
from tests.console.conftest import Account, LiveService, check_accessibility, follow, screenshot


def seed(live: LiveService) -> None:
    """March 2026 at three border points: 40, 9 and 3 crossings (3 is under k = 5, alone,
    so 9 is suppressed with it)."""
    keys = {
        "nationality": "USA", "direction": "entry", "decision": "admit", "visa_type": "none",
        "age_band": "25-34", "protection": "none",
    }  # fmt: skip
    with live.rt.pool.connection() as conn, conn.transaction():
        store.add(
            conn,
            [
                store.Count(day=date(2026, 3, 10), border_point=point, count=n, **keys)
                for point, n in (("UTO-AIR-1", 40), ("UTO-LAND-2", 9), ("UTO-SEA-3", 3))
            ],
        )


def rows(page: Page) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator("main table tbody tr").all()
    ]


class TestStatisticsPage:
    def test_a_statistician_chooses_a_range_and_keys_and_exports_the_table(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        seed(live)
        signed_in("statistician")
        follow(page, "Statistics")
        expect(page.get_by_role("heading", level=1)).to_have_text("Statistics")
        page.get_by_label("From").fill("2026-03-01")
        page.get_by_label("To").fill("2026-03-31")
        for key in ("Month", "Border point"):
            page.get_by_label(key, exact=True).check()
        page.get_by_role("button", name="Show").click()

        expect(page.locator("main table caption")).to_contain_text("2 cells suppressed")
        assert rows(page) == [
            ["2026-03", "UTO-AIR-1", "40"],
            ["2026-03", "UTO-LAND-2", "suppressed"],
            ["2026-03", "UTO-SEA-3", "suppressed"],
        ]
        check_accessibility(page)
        screenshot(page, "statistics")

        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
        assert list(csv.reader(io.StringIO(text))) == [
            ["month", "border_point", "count"],
            ["2026-03", "UTO-AIR-1", "40"],
            ["2026-03", "UTO-LAND-2", ""],
            ["2026-03", "UTO-SEA-3", ""],
        ]

    def test_no_key_chosen_is_refused_on_the_form(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("auditor")
        page.goto("/console/statistics?from=2026-03-01&to=2026-03-31")
        expect(page.locator("#f-group_by-error")).to_contain_text("group_by")
        expect(page.locator("main table")).to_have_count(0)
        check_accessibility(page)

    def test_a_range_ending_before_it_starts_marks_the_to_field(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("officer")
        page.goto("/console/statistics?from=2026-03-31&to=2026-03-01&group_by=month")
        expect(page.get_by_label("To")).to_have_attribute("aria-invalid", "true")

    @pytest.mark.parametrize("role", ["consular", "admin"])
    def test_other_roles_are_refused(
        self, page: Page, signed_in: Callable[..., Account], role: str
    ) -> None:
        signed_in(role)
        response = page.goto("/console/statistics")
        assert response is not None
        assert response.status == 403
