"""The auditor's pages in a real browser: the audit log (newest first, filters, paging,
actor names, chain verification, CSV export) and the access report for one person."""

import csv
import io
import re
from collections.abc import Callable

import psycopg
from playwright.sync_api import Page, expect

from border import users
from core import auth
from enrollment import service as enrollment_service
from tests.console.conftest import (
    Account,
    LiveService,
    check_accessibility,
    enroll,
    follow,
    screenshot,
)
from tests.factories import photo, td3


def seqs(page: Page) -> list[int]:
    cells = page.locator("main table tbody tr td:first-child").all_inner_texts()
    return [int(c) for c in cells if c.strip().isdigit()]


class TestAuditLog:
    def test_newest_first_with_actor_names_filters_and_paging(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        # Sixty events by one admin user: more than a page of fifty.
        admin = users.create(
            live.rt, auth.command_line("test"), username="admin.one", role="admin",
            password="a long admin passphrase",
        ).user  # fmt: skip
        principal = auth.Principal(None, "admin", None, None, user_id=admin.id)
        for _ in range(60):
            users.list_users(live.rt, principal)
        signed_in("auditor")
        follow(page, "Audit log")
        shown = seqs(page)
        assert len(shown) == 50
        assert shown == sorted(shown, reverse=True)
        expect(page.locator("main table").first).to_contain_text("admin.one")
        check_accessibility(page)
        screenshot(page, "audit-log")
        page.get_by_role("link", name="Older events").click()
        older = seqs(page)
        assert older
        assert max(older) < min(shown)
        # Filters: the admin's events by their username.
        page.goto("/console/audit")
        page.get_by_label("Actor").fill("admin.one")
        page.get_by_label("Action").fill("users.list")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("main table tbody tr")
        # Waits for the filtered table: the unfiltered one also has fifty rows.
        expect(page.locator("main table tbody td:nth-child(5)")).to_have_text(["users.list"] * 50)
        expect(rows).to_have_count(50)
        page.get_by_role("link", name="Older events").click()
        expect(rows).to_have_count(10)

    def test_a_bad_filter_is_shown_beside_its_field_and_nothing_is_read(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("auditor")
        response = page.goto("/console/audit?person=not-an-id")
        assert response is not None
        assert response.status == 422
        expect(page.locator("#f-person-error")).to_have_text("a person is named by their id")
        expect(page.get_by_label("Person", exact=True)).to_have_attribute("aria-invalid", "true")

    def test_verify_chain_says_it_holds_then_names_the_first_bad_seq(
        self, page: Page, signed_in: Callable[..., Account], database_url: str
    ) -> None:
        signed_in("auditor")
        page.goto("/console/audit")
        page.get_by_role("button", name="Verify chain").click()
        expect(page.get_by_role("status")).to_contain_text("Chain holds:")
        expect(page.locator("dl.facts dd code")).to_have_text(re.compile("^[0-9a-f]{64}$"))
        with psycopg.connect(database_url) as conn, conn.transaction():
            conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
            conn.execute("UPDATE audit_events SET action = 'forged' WHERE seq = 2")
            conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        page.goto("/console/audit")
        page.get_by_role("button", name="Verify chain").click()
        expect(page.get_by_role("alert")).to_contain_text("Chain broken at seq 2 (altered)")

    def test_csv_export_holds_the_filtered_events(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("auditor")
        page.goto("/console/audit?action=sessions.create")
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        text = open(download.value.path(), encoding="utf-8").read()  # noqa: SIM115
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows
        assert all(r["action"] == "sessions.create" for r in rows)
        assert rows[0]["actor_name"].startswith("auditor-")


class TestAccessReport:
    def test_who_touched_a_person_and_why(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live, "obama.jpg")
        officer = users.create(
            live.rt, auth.command_line("test"), username="officer.two", role="officer",
            password="a long officer passphrase",
        ).user  # fmt: skip
        reader = auth.Principal(None, "officer", None, "case 2026/77", user_id=officer.id)
        enrollment_service.get_person(live.rt, reader, person_id)
        signed_in("auditor")
        follow(page, "Access report")
        page.get_by_label("Person", exact=True).fill(str(person_id))
        page.get_by_role("button", name="Show").click()
        row = page.locator("main table tbody tr", has_text="officer.two")
        expect(row).to_contain_text("persons.read")
        expect(row).to_contain_text("case 2026/77")
        check_accessibility(page)


class TestDedupOverrides:
    def test_an_officers_override_is_listed_with_their_name(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        first = enroll(live, "obama.jpg", td3(number="P0000001"))
        officer = users.create(
            live.rt, auth.command_line("test"), username="officer.three", role="officer",
            password="a long officer passphrase",
        ).user  # fmt: skip
        created = enrollment_service.enroll(
            live.rt,
            live.bio,
            auth.Principal(None, "officer", None, "twins", user_id=officer.id),
            image=photo("obama2.jpg"),
            mrz_text=td3(number="P0000002", surname="OTHER"),
            override=enrollment_service.Override(frozenset({first}), "twin brother, checked"),
        )
        signed_in("auditor")
        follow(page, "Dedup overrides")
        row = page.locator("main table tbody tr", has_text=str(created.person_id))
        expect(row).to_contain_text("officer.three")
        expect(row).to_contain_text(str(first))
        check_accessibility(page)
