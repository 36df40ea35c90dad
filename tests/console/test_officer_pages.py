"""The officer's pages in a real browser: the referral queue (live capture beside the
enrolled photo, reasons, distance and threshold, the resolution form), identify by photo,
alerts, overstayers with CSV export."""

import csv
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import httpx
from playwright.sync_api import Page, expect

from tests.border.crossing_helpers import AIRPORT, traveller
from tests.conftest import FACES, new_key
from tests.console.conftest import (
    Account,
    LiveService,
    check_accessibility,
    enroll,
    follow,
    screenshot,
)
from tests.console.test_people_pages import image_loaded


def kiosk_crossing(
    live: LiveService,
    *,
    mrz: str,
    picture: str,
    direction: str = "entry",
    at: datetime | None = None,
    role: str = "kiosk",
) -> dict[str, object]:
    """A crossing posted to the API as a kiosk posts it."""
    key = new_key(live.rt, role, AIRPORT if role == "kiosk" else None)
    data = {"mrz": mrz, "direction": direction, "border_point": AIRPORT}
    if at is not None:
        data["at"] = at.isoformat()
    response = httpx.post(
        f"{live.url}/v1/crossings",
        headers={"Authorization": f"Bearer {key}"},
        files={"image": ("live.jpg", (FACES / picture).read_bytes(), "image/jpeg")},
        data=data,
        timeout=60,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def open_referrals(live: LiveService) -> int:
    with live.rt.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM crossings WHERE decision = 'refer' AND outcome IS NULL"
        ).fetchone()
    assert row is not None
    return int(row[0])


class TestReferrals:
    def test_an_impostor_shown_beside_the_holder_and_refused_with_grounds(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        mrz = traveller(number="US0000001")
        enroll(live, "obama.jpg", mrz)
        referred = kiosk_crossing(live, mrz=mrz, picture="biden.jpg")
        assert referred["decision"] == "refer"
        signed_in("officer", AIRPORT)
        follow(page, "Referrals")
        card = page.locator("section.card").first
        expect(card.get_by_role("img", name="Live capture at the kiosk")).to_be_visible()
        expect(
            card.get_by_role("img", name="Enrolled photo of the document's holder")
        ).to_be_visible()
        assert image_loaded(page, "section.card img[alt='Live capture at the kiosk']")
        assert image_loaded(page, "section.card img[alt^='Enrolled photo']")
        expect(card).to_contain_text("FACE_MISMATCH")
        expect(card).to_contain_text("against a threshold of 0.400")
        check_accessibility(page)
        screenshot(page, "referrals")
        # A refusal names its grounds: without them nothing is written.
        card.get_by_label("Note").fill("not the holder of the passport")
        card.get_by_role("button", name="Refuse").click()
        expect(page.locator("section.card .error").first).to_contain_text("grounds")
        assert open_referrals(live) == 1
        card = page.locator("section.card").first
        card.get_by_label("Note").fill("not the holder of the passport")
        card.get_by_label("A", exact=True).check()
        card.get_by_role("button", name="Refuse").click()
        expect(page.get_by_role("status").first).to_have_text("Referral resolved.")
        expect(page.get_by_text("No open referral.")).to_be_visible()
        assert open_referrals(live) == 0

    def test_a_post_without_its_token_resolves_nothing(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        mrz = traveller(number="US0000002")
        enroll(live, "obama.jpg", mrz)
        referred = kiosk_crossing(live, mrz=mrz, picture="biden.jpg")
        signed_in("officer")
        refused = page.request.post(
            f"/console/referrals/{referred['crossing_id']}",
            form={"outcome": "admit", "note": "waved through"},
        )
        assert refused.status == 403
        assert open_referrals(live) == 1


class TestIdentify:
    def test_a_match_with_its_photo_then_no_match(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        person_id = enroll(live, "obama.jpg")
        signed_in("officer")
        follow(page, "Identify")
        page.get_by_label("Photo").set_input_files(str(FACES / "obama2.jpg"))
        page.get_by_role("button", name="Identify").click()
        expect(page.get_by_role("link", name="Open candidate 1")).to_have_attribute(
            "href", f"/console/persons/{person_id}"
        )
        assert image_loaded(page, "main .photos img")
        check_accessibility(page)
        page.get_by_label("Photo").set_input_files(str(FACES / "biden.jpg"))
        page.get_by_role("button", name="Identify").click()
        expect(page.get_by_role("status")).to_contain_text("No match within the threshold")


class TestAlerts:
    def test_add_a_lost_passport_then_end_it(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("officer")
        follow(page, "Alerts")
        page.get_by_label("Issuing state").fill("uto")
        page.get_by_label("Document number").fill("lost1234")
        page.get_by_label("Category").select_option("lost_stolen_document")
        page.get_by_role("button", name="Add alert").click()
        row = page.locator("main table tbody tr", has_text="LOST1234")
        expect(row).to_contain_text("lost stolen document")
        check_accessibility(page)
        row.get_by_role("button", name="End alert 1").click()
        expect(page.get_by_text("No active alert.")).to_be_visible()

    def test_a_bad_number_is_refused_beside_the_field(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("officer")
        follow(page, "Alerts")
        page.get_by_label("Issuing state").fill("UTO")
        page.get_by_label("Document number").fill("no/slashes")
        page.get_by_role("button", name="Add alert").click()
        expect(page.locator("#f-document_number-error")).to_be_visible()
        expect(page.get_by_text("No active alert.")).to_be_visible()


class TestOverstayers:
    def test_listed_and_exported(
        self, page: Page, live: LiveService, signed_in: Callable[..., Account]
    ) -> None:
        # Entered 100 days ago and never left: 10 days over the 90/180 allowance.
        mrz = traveller(number="US0000003")
        person_id = enroll(live, "obama.jpg", mrz)
        entered = datetime.now(UTC) - timedelta(days=100)
        kiosk_crossing(live, mrz=mrz, picture="obama2.jpg", at=entered, role="officer")
        signed_in("officer")
        follow(page, "Overstayers")
        row = page.locator("main table tbody tr", has_text=str(person_id))
        expect(row).to_contain_text(str(entered.date()))
        check_accessibility(page)
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        with open(download.value.path(), encoding="utf-8") as exported:
            rows = list(csv.DictReader(exported))
        assert [r["person_id"] for r in rows] == [str(person_id)]
        assert int(rows[0]["overstay_days"]) >= 10
        assert date.fromisoformat(rows[0]["entry"]) == entered.date()
