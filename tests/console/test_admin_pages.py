"""The admin's pages in a real browser: API clients (the key shown once) and staff users
(the activation link to hand over), and the API reference for any signed-in staff."""

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import Account, LiveService, check_accessibility, follow, screenshot


class TestClients:
    def test_a_new_kiosk_key_is_shown_once_then_revoked(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("admin")
        follow(page, "API clients")
        page.get_by_label("Name").fill("gate 4")
        page.get_by_label("Role").select_option("kiosk")
        page.get_by_label("Border point").fill("UTO-LAND-1")
        page.get_by_role("button", name="Create client").click()
        key = page.get_by_label("API key").input_value()
        assert len(key) > 30
        check_accessibility(page)
        # Shown once: the list never shows it again.
        follow(page, "API clients")
        assert key not in page.content()
        row = page.locator("main table tbody tr", has_text="gate 4")
        expect(row).to_contain_text("active")
        row.get_by_role("button", name="Revoke the key of gate 4").click()
        expect(page.locator("main table tbody tr", has_text="gate 4")).to_contain_text("revoked")

    def test_a_kiosk_without_a_border_point_is_refused_beside_the_field(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("admin")
        follow(page, "API clients")
        page.get_by_label("Name").fill("gate 5")
        page.get_by_label("Role").select_option("kiosk")
        page.get_by_role("button", name="Create client").click()
        expect(page.locator("main .error").first).to_contain_text("border point")
        assert "gate 5" not in page.locator("main table").inner_text()


class TestUsers:
    def test_a_new_user_gets_an_activation_link_and_can_be_disabled(
        self, page: Page, signed_in: Callable[..., Account], live: LiveService
    ) -> None:
        signed_in("admin")
        follow(page, "Users")
        page.get_by_label("Username").fill("desk.officer")
        page.get_by_label("Role").select_option("officer")
        page.get_by_role("button", name="Create user").click()
        link = page.get_by_label("Activation link").input_value()
        assert "/console/activate/" in link
        check_accessibility(page)
        screenshot(page, "users")
        row = page.locator("main table tbody tr", has_text="desk.officer")
        expect(row).to_contain_text("pending")
        expect(row).to_contain_text("by activation link")
        row.get_by_role("button", name="Disable desk.officer").click()
        expect(page.locator("main table tbody tr", has_text="desk.officer")).to_contain_text(
            "disabled"
        )

    def test_a_bad_username_is_refused_beside_the_field(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("admin")
        follow(page, "Users")
        page.get_by_label("Username").fill("Has Spaces!")
        page.get_by_role("button", name="Create user").click()
        expect(page.locator("#f-username-error")).to_be_visible()
        assert "Has Spaces" not in page.locator("main table").inner_text()


class TestApiReference:
    def test_the_reference_is_drawn_from_the_projects_own_files(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        outside: list[str] = []
        page.on("request", lambda r: outside.append(r.url) if "127.0.0.1" not in r.url else None)
        signed_in("consular")
        follow(page, "API reference")
        expect(page.get_by_text("/v1/crossings").first).to_be_visible(timeout=15_000)
        assert [u for u in outside if not u.startswith("data:")] == []
        check_accessibility(page)
        screenshot(page, "api-reference")
