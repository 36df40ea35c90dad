"""The console works with the keyboard alone: sign in, reach a page through the
navigation, press a button, all without the mouse."""

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.console.conftest import Account, LiveService, check_accessibility, new_account


def focused(page: Page) -> str:
    label: str = page.evaluate(
        "() => { const e = document.activeElement;"
        " const named = e.labels && e.labels.length ? e.labels[0].innerText : e.innerText;"
        " return (named || e.value || '').trim(); }"
    )
    return label


def tab_to(page: Page, name: str, most: int = 40) -> None:
    for _ in range(most):
        page.keyboard.press("Tab")
        if focused(page) == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


def test_sign_in_open_the_audit_log_and_verify_by_keyboard(page: Page, live: LiveService) -> None:
    account = new_account(live.rt, "auditor")
    page.goto("/console/login")
    # The sign-in page starts in its first field.
    assert focused(page) == "Username"
    page.keyboard.type(account.username)
    tab_to(page, "Password")
    page.keyboard.type(account.password)
    tab_to(page, "One-time code")
    page.keyboard.type(account.code())
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")
    # The first Tab of a page reaches the skip link, which leads to the content.
    page.keyboard.press("Tab")
    assert focused(page) == "Skip to content"
    tab_to(page, "Audit log")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    tab_to(page, "Verify chain")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Chain holds:")
    check_accessibility(page)


def test_every_role_reaches_each_of_its_pages_by_tab(
    page: Page, signed_in: Callable[..., Account]
) -> None:
    signed_in("officer")
    for name in ("Referrals", "Identify", "Alerts", "Overstayers", "Search"):
        page.goto("/console/")
        tab_to(page, name)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
