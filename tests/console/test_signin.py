"""Signing in to the console in a real browser: the sign-in form, the navigation of each
role, activation by a one-time link, sign-out, and the refusals (a kiosk key, a page
outside the role, a post without its CSRF token, an expired session, a locked account)."""

from collections.abc import Callable

import psycopg
import pyotp
import pytest
from playwright.sync_api import Page, expect

from border import users
from core import auth
from tests.conftest import new_key
from tests.console.conftest import (
    Account,
    LiveService,
    check_accessibility,
    new_account,
    screenshot,
    sign_in,
)

NAVIGATION = {
    "consular": ["Search", "Enroll", "API reference"],
    "officer": [
        "Referrals",
        "Identify",
        "Alerts",
        "Overstayers",
        "Search",
        "Statistics",
        "API reference",
    ],
    "auditor": ["Audit log", "Access report", "Dedup overrides", "Statistics", "API reference"],
    "statistician": ["Statistics", "API reference"],
    "admin": ["API clients", "Users", "API reference"],
}


def nav_links(page: Page) -> list[str]:
    return [
        text.strip()
        for text in page.get_by_role("navigation", name="Main")
        .get_by_role("link")
        .all_inner_texts()
    ]


class TestSignIn:
    def test_the_form_is_labelled_and_accessible(self, page: Page) -> None:
        page.goto("/console/login")
        for label in ("Username", "Password", "One-time code"):
            expect(page.get_by_label(label)).to_be_visible()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        check_accessibility(page)
        screenshot(page, "sign-in")

    @pytest.mark.parametrize("role", list(NAVIGATION))
    def test_each_role_sees_its_own_navigation(
        self, page: Page, signed_in: Callable[..., Account], role: str
    ) -> None:
        account = signed_in(role)
        assert nav_links(page) == NAVIGATION[role]
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {account.username}")
        check_accessibility(page)

    def test_a_wrong_code_is_refused_without_saying_which_part_was_wrong(
        self, page: Page, live: LiveService
    ) -> None:
        account = new_account(live.rt, "officer")
        wrong = f"{(int(account.code()) + 1) % 1_000_000:06d}"
        sign_in(page, account, code=wrong)
        expect(page.get_by_role("alert")).to_have_text(
            "the username, password or one-time code is wrong"
        )
        assert page.url.endswith("/console/login")
        assert page.context.cookies() == []

    def test_five_failures_lock_the_account_from_that_address_only(
        self, page: Page, live: LiveService
    ) -> None:
        account = new_account(live.rt, "officer")
        for _ in range(5):
            sign_in(
                page, Account(account.username, "not the password", account.secret, account.user)
            )
        # The right password and code now: still locked from this address.
        sign_in(page, account)
        expect(page.get_by_role("alert")).to_contain_text("too many")
        assert page.context.cookies() == []
        # From another address the account signs in: nobody elsewhere can lock it out.
        session = users.sign_in(
            live.rt,
            username=account.username,
            password=account.password,
            code=pyotp.TOTP(account.secret).at(account_time_step_later()),
            address="198.51.100.7",
        )
        assert session.user.id == account.user.id

    def test_sign_out_ends_the_session(self, page: Page, signed_in: Callable[..., Account]) -> None:
        signed_in("auditor")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/console/login")
        page.goto("/console/audit")
        page.wait_for_url("**/console/login?next=%2Fconsole%2Faudit")


def account_time_step_later() -> int:
    """A moment 30 s on: the code of the current step was used by the browser."""
    import time

    return int(time.time()) + 30


class TestActivation:
    def test_a_new_user_sets_their_own_password_and_authenticator(
        self, page: Page, live: LiveService
    ) -> None:
        created = users.create(
            live.rt, auth.command_line("test"), username="new.officer", role="officer"
        )
        assert created.activation_url is not None
        page.goto(created.activation_url.split("127.0.0.1:8000", 1)[-1])
        expect(page.get_by_role("heading", level=1)).to_have_text("Activate your account")
        secret = page.locator("code.secret").inner_text().strip()
        check_accessibility(page)
        page.get_by_label("Password", exact=True).fill("a long passphrase of mine")
        page.get_by_label("Password again").fill("a long passphrase of mine")
        page.get_by_label("One-time code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Activate").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Account active")
        account = Account("new.officer", "a long passphrase of mine", secret, created.user)
        sign_in(page, account, code=pyotp.TOTP(secret).at(account_time_step_later()))
        page.wait_for_url("**/console/")
        # The link is spent.
        page.goto(created.activation_url.split("127.0.0.1:8000", 1)[-1])
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


class TestRefusals:
    def test_a_kiosk_key_cannot_open_the_console(self, page: Page, live: LiveService) -> None:
        key = new_key(live.rt, "kiosk", "UTO-AIR-1")
        page.set_extra_http_headers({"Authorization": f"Bearer {key}"})
        page.goto("/console/referrals")
        page.wait_for_url("**/console/login?next=%2Fconsole%2Freferrals")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")

    def test_a_consular_user_gets_403_on_the_audit_log(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("consular")
        response = page.goto("/console/audit")
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Not for your role")
        expect(page.get_by_role("alert")).to_contain_text("this page is for auditor")
        check_accessibility(page)

    def test_a_post_without_its_csrf_token_is_refused(
        self, page: Page, signed_in: Callable[..., Account]
    ) -> None:
        signed_in("auditor")
        refused = page.request.post("/console/audit/verify", form={"csrf": "forged"})
        assert refused.status == 403
        missing = page.request.post("/console/logout")
        assert missing.status == 403
        # Still signed in: the forged post changed nothing.
        assert page.goto("/console/audit").status == 200  # type: ignore[union-attr]

    def test_an_expired_session_returns_to_sign_in(
        self, page: Page, signed_in: Callable[..., Account], database_url: str
    ) -> None:
        signed_in("auditor")
        # Sixteen minutes unused: past the 15-minute idle limit.
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "UPDATE user_sessions SET last_seen_at = last_seen_at - interval '16 minutes'"
            )
        page.goto("/console/audit")
        page.wait_for_url("**/console/login?next=%2Fconsole%2Faudit")
