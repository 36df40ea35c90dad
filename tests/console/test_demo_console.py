"""`border demo --console`: the demo's store stays, the console is served with a sign-in
for each role, and a newcomer finds it populated (an open referral for the officer)."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Browser, expect

from tests.console.conftest import check_accessibility

ACCOUNT = re.compile(r"^\s+(\w+)\s+username (\S+)\s+password (\S+)\s+TOTP key (\S+)$")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, dict[str, tuple[str, str, str]]]]:
    """The demo with its console on a free port: the console's address and the sign-ins
    it printed, by role."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "border", "demo", "--console", "--port", str(port),
         "--data-dir", str(tmp_path / "demo")],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    accounts: dict[str, tuple[str, str, str]] = {}
    seen: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            found = ACCOUNT.match(line.rstrip("\n"))
            if found:
                accounts[found[1]] = (found[2], found[3], found[4])
            if line.startswith("the console: "):
                break
        else:
            raise AssertionError("".join(seen[-40:]))
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the console did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", accounts
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_console_is_served_populated_with_a_sign_in_per_role(
    browser: Browser, demo: tuple[str, dict[str, tuple[str, str, str]]]
) -> None:
    url, accounts = demo
    assert set(accounts) == {"consular", "officer", "auditor", "admin", "statistician", "dpo"}
    username, password, secret = accounts["officer"]
    context = browser.new_context(base_url=url)
    page = context.new_page()
    page.goto("/console/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_label("One-time code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Referrals").click()
    # The referral left for the console: someone else's face on Joe's passport.
    expect(page.locator("section.card", has_text="FACE_MISMATCH")).to_have_count(1)
    check_accessibility(page)
    context.close()
