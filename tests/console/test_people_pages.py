"""Consular staff's and officers' pages about people, in a real browser: enroll (quality
per measure, duplicates side by side), the purpose asked once per person, the person page
with its photos and stay timeline, visas, search."""

from collections.abc import Callable
from uuid import UUID

from playwright.sync_api import Page, expect

from tests.conftest import FACES
from tests.console.conftest import (
    Account,
    LiveService,
    check_accessibility,
    enroll,
    follow,
    screenshot,
)
from tests.factories import td3


def count(live: LiveService, table: str) -> int:
    queries = {"persons": "SELECT count(*) FROM persons", "visas": "SELECT count(*) FROM visas"}
    with live.rt.pool.connection() as conn:
        row = conn.execute(queries[table]).fetchone()
    assert row is not None
    return int(row[0])


def image_loaded(page: Page, selector: str) -> bool:
    """The first image ``selector`` finds has loaded (waits up to 10 s; an image the
    server refused never loads)."""
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel);"
        " return i !== null && i.complete && i.naturalWidth > 0; }",
        arg=selector,
        timeout=10_000,
    )
    return True


def give_purpose(page: Page, purpose: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Purpose of access")
    page.get_by_label("Purpose").fill(purpose)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Person")


class TestEnroll:
    def test_enroll_then_the_person_page_with_photo_and_timeline(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("consular")
        follow(page, "Enroll")
        check_accessibility(page)
        page.get_by_label("Photo").set_input_files(str(FACES / "obama.jpg"))
        page.get_by_label("MRZ").fill(td3(number="P1234567"))
        page.get_by_role("button", name="Enroll").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Person")
        expect(page.locator("main")).to_contain_text("ERIKSSON, ANNA MARIA")
        expect(page.locator("main")).to_contain_text("P1234567")
        assert image_loaded(page, "main .photos img")
        expect(page.get_by_role("img", name="Days present in the territory")).to_be_visible()
        check_accessibility(page)
        screenshot(page, "person")
        assert count(live, "persons") == 1

    def test_a_poor_photo_shows_each_failed_measure_and_writes_nothing(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("consular")
        follow(page, "Enroll")
        page.get_by_label("Photo").set_input_files(str(FACES / "obama-240p.jpg"))
        page.get_by_label("MRZ").fill(td3())
        page.get_by_role("button", name="Enroll").click()
        expect(page.locator("#f-photo-error")).to_contain_text("not good enough")
        table = page.get_by_role("table", name="Capture quality")
        expect(table).to_contain_text("face_too_small")
        # The MRZ stays in its field for the next try; nothing was written.
        assert page.get_by_label("MRZ").input_value().startswith("P<UTO")
        assert count(live, "persons") == 0
        check_accessibility(page)

    def test_a_duplicate_shows_the_candidates_photo_beside_the_new_one(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        first = enroll(live, "obama.jpg", td3(number="P0000001"))
        signed_in("consular")
        follow(page, "Enroll")
        page.get_by_label("Photo").set_input_files(str(FACES / "obama2.jpg"))
        page.get_by_label("MRZ").fill(td3(number="P0000002"))
        page.get_by_role("button", name="Enroll").click()
        expect(page.get_by_role("heading", name="Already enrolled?")).to_be_visible()
        expect(page.get_by_role("img", name="The photo just taken")).to_be_visible()
        candidate = page.get_by_role("img", name="Enrolled photo of candidate 1")
        expect(candidate).to_be_visible()
        assert image_loaded(page, "main .photos img[alt^='Enrolled photo']")
        expect(page.get_by_role("link", name="Open")).to_have_attribute(
            "href", f"/console/persons/{first}"
        )
        assert count(live, "persons") == 1
        check_accessibility(page)
        screenshot(page, "enroll-duplicate")


class TestPurpose:
    def test_asked_once_per_person_and_written_into_the_audit_events(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live)
        signed_in("officer")
        page.goto(f"/console/persons/{person_id}")
        check_accessibility(page)
        give_purpose(page, "case 2026/0042")
        # The officer sees the crossings too, and keeps the watchlist.
        expect(page.get_by_role("heading", name="Crossings")).to_be_visible()
        page.get_by_label("Category").select_option("entry_ban")
        page.get_by_label("Reason").fill("liaison officer alert")
        page.get_by_role("button", name="Add to watchlist").click()
        expect(page.locator("main dl.facts")).to_contain_text("on the watchlist")
        page.goto(f"/console/persons/{person_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text("Person")
        with live.rt.pool.connection() as conn:
            purposes = conn.execute(
                "SELECT DISTINCT purpose FROM audit_events"
                " WHERE action = 'persons.read' AND resource_id = %s",
                (str(person_id),),
            ).fetchall()
        assert purposes == [("case 2026/0042",)]

    def test_an_empty_purpose_is_refused_beside_the_field(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live)
        signed_in("officer")
        page.goto(f"/console/persons/{person_id}")
        page.get_by_label("Purpose").fill("   ")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#f-purpose-error")).to_be_visible()
        expect(page.get_by_role("heading", level=1)).to_have_text("Purpose of access")


class TestVisas:
    def test_issue_with_a_bad_span_then_a_good_one_then_revoke(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live)
        signed_in("consular")
        page.goto(f"/console/persons/{person_id}")
        give_purpose(page, "visa application 7")
        form = page.locator("form", has=page.get_by_role("button", name="Issue visa"))
        form.get_by_label("Issuing state").fill("UTO")
        form.get_by_label("Valid from").fill("2027-03-01")
        form.get_by_label("Valid until").fill("2027-02-01")
        form.get_by_label("Entries").select_option("multiple")
        form.get_by_label("Days of stay").fill("30")
        form.get_by_role("button", name="Issue visa").click()
        expect(page.get_by_role("alert")).to_contain_text("is before valid_from")
        assert count(live, "visas") == 0
        form = page.locator("form", has=page.get_by_role("button", name="Issue visa"))
        form.get_by_label("Valid until").fill("2027-04-15")
        form.get_by_role("button", name="Issue visa").click()
        row = page.locator("main table tbody tr", has_text="2027-03-01 to 2027-04-15")
        expect(row).to_contain_text("MULT")
        assert count(live, "visas") == 1
        row.get_by_role("button", name="Revoke visa").click()
        expect(page.locator("main table tbody tr", has_text="2027-03-01")).to_contain_text(
            "revoked"
        )


class TestSearch:
    def test_by_document_and_by_name(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live, mrz=td3(number="X1234567", surname="LINDQVIST"))
        signed_in("consular")
        follow(page, "Search")
        # A search is posted (no name or number in an address or the history); htmx swaps
        # the page's content in place.
        asked: list[dict[str, str]] = []
        page.on(
            "request",
            lambda r: asked.append(r.headers) if r.url.endswith("/console/search") else None,
        )
        page.get_by_label("Document").fill("UTO:X1234567")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("link", name=f"Person {person_id}")).to_be_visible()
        assert [h.get("hx-request") for h in asked if "hx-request" in h] == ["true"]
        assert page.url.endswith("/console/search")
        check_accessibility(page)
        page.goto("/console/search")
        page.get_by_label("Surname").fill("Lindqvist")
        page.get_by_label("Given names").fill("Anna Maria")
        page.get_by_label("Date of birth").fill("1974-08-12")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("link", name=f"Person {person_id}")).to_be_visible()
        page.get_by_label("Document").fill("UTO:NOBODY1")
        page.get_by_label("Surname").fill("")
        page.get_by_label("Given names").fill("")
        page.get_by_label("Date of birth").fill("")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("status")).to_have_text("No person matches.")
        token = page.locator("input[name=csrf]").first.input_value()
        refused = page.request.post(
            "/console/search",
            form={"csrf": token, "surname": "X", "birth_date": "12.08.1974"},
        )
        assert refused.status == 422
        assert "a date is written YYYY-MM-DD" in refused.text()
        assert UUID(str(person_id))
