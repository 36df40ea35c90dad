"""The console's tests drive a real browser: Playwright for Python with Debian's chromium
(`apt-get install -y chromium`; .ci/run installs it), headless, against the service served
by uvicorn on loopback, on a fresh database per test.

``signed_in(role)`` gives a page signed in as a new user of that role, through the sign-in
form with a real TOTP code. ``check_accessibility(page)`` runs axe-core (vendored) on the
page and fails on a serious or critical violation.
"""

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pyotp
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from border import users
from border.app import create_app
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from tests.factories import photo, td3

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"
PASSWORD = "correct horse battery staple"
# Without the background-networking switches chromium keeps trying hosts this machine
# cannot reach; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    found = os.environ.get("BORDER_TEST_CHROMIUM") or shutil.which("chromium")
    if found is None:
        pytest.fail(
            "the console tests need Debian's chromium: apt-get install -y chromium "
            "(or BORDER_TEST_CHROMIUM=/path/to/chromium)"
        )
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@dataclass
class LiveService:
    url: str
    rt: Runtime
    bio: Biometrics


@pytest.fixture
def live(settings: Settings, face_model: FaceModel) -> Iterator[LiveService]:
    """The service on a free loopback port, on this test's database."""
    app = create_app(settings, face_model=face_model)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "the service did not start"
        assert time.monotonic() < deadline, "the service did not start in 60 s"
        time.sleep(0.02)
    # uvicorn keeps what the lifespan gave (border.app.State).
    state = server.lifespan.state
    try:
        yield LiveService(f"http://127.0.0.1:{port}", state["rt"], state["bio"])
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def page(browser: Browser, live: LiveService) -> Iterator[Page]:
    context = browser.new_context(base_url=live.url, viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    secret: str
    user: users.User

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()


def new_account(rt: Runtime, role: str, border_point: str | None = None) -> Account:
    """A user provisioned as `border users create --password-stdin` does."""
    username = f"{role}-{os.urandom(3).hex()}"
    created = users.create(
        rt,
        auth.command_line("test setup"),
        username=username,
        role=role,
        border_point=border_point,
        password=PASSWORD,
    )
    assert created.totp_uri is not None
    secret = parse_qs(urlsplit(created.totp_uri).query)["secret"][0]
    return Account(username, PASSWORD, secret, created.user)


def sign_in(page: Page, account: Account, code: str | None = None) -> None:
    page.goto("/console/login")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_label("One-time code").fill(code or account.code())
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in(page: Page, live: LiveService) -> Callable[..., Account]:
    """Sign ``page`` in as a new user of a role; the account."""

    def as_role(role: str, border_point: str | None = None) -> Account:
        account = new_account(live.rt, role, border_point)
        sign_in(page, account)
        page.wait_for_url("**/console/")
        return account

    return as_role


def check_accessibility(page: Page) -> None:
    """axe-core on the page as it stands: no serious or critical violation. Evaluated
    through the browser's debugging protocol, which the page's CSP does not govern."""
    found = page.evaluate(
        AXE.read_text(encoding="utf-8")
        + "\n;axe.run(document, {resultTypes: ['violations']})"
        + ".then(r => JSON.stringify(r.violations))"
    )
    bad = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "nodes": [n["html"][:200] for n in v["nodes"][:3]],
            "why": [n.get("failureSummary", "")[:300] for n in v["nodes"][:1]],
        }
        for v in json.loads(found)
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, json.dumps(bad, indent=1)


def screenshot(page: Page, name: str) -> None:
    """A picture of the page for the README: docs/console/NAME.png when
    CONSOLE_SCREENSHOTS is set (`CONSOLE_SCREENSHOTS=1 uv run pytest tests/console`), so
    that an ordinary run leaves the repository as it was."""
    picture = page.screenshot()
    assert picture.startswith(b"\x89PNG")
    if os.environ.get("CONSOLE_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(picture)


def enroll(live: LiveService, picture: str = "obama.jpg", mrz: str | None = None) -> UUID:
    """A person enrolled as consular staff would, straight through the service."""
    created = enrollment_service.enroll(
        live.rt,
        live.bio,
        auth.Principal(None, "consular", None, "test setup"),
        image=photo(picture),
        mrz_text=mrz or td3(),
    )
    return created.person_id


def follow(page: Page, link: str) -> None:
    """Open a page through the navigation, as staff do."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
