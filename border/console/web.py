"""What every console page shares: the templates, the signed-in staff member, the purpose
of access, CSRF, and the answers (a page, a redirect, a refusal page).

A page is reached only with a live session (cookie ``__Host-border_session``); without one
the browser is sent to sign-in, whatever else the request carries (an API key opens no
page). A page outside the user's role answers 403 with a page that says so. Every form
that changes state carries the session's CSRF token, checked before anything is read.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from border import users
from core.auth import Principal
from core.errors import BorderError, Forbidden
from core.runtime import Runtime, get_runtime
from enrollment import intake

HERE = Path(__file__).parent
COOKIE = "__Host-border_session"
PREFIX = "/console"

# Starlette builds the environment with autoescape on.
templates = Jinja2Templates(directory=HERE / "templates")

# (label, path, roles): the navigation, in the order DESIGN §11 names it per role.
NAVIGATION: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("Referrals", "/referrals", frozenset({"officer"})),
    ("Identify", "/identify", frozenset({"officer"})),
    ("Alerts", "/alerts", frozenset({"officer"})),
    ("Overstayers", "/overstayers", frozenset({"officer"})),
    ("Search", "/search", frozenset({"consular", "officer"})),
    ("Enroll", "/enroll", frozenset({"consular"})),
    ("Audit log", "/audit", frozenset({"auditor"})),
    ("Access report", "/access-report", frozenset({"auditor"})),
    ("Dedup overrides", "/dedup-overrides", frozenset({"auditor"})),
    ("Statistics", "/statistics", frozenset({"statistician", "officer", "auditor"})),
    ("API clients", "/clients", frozenset({"admin"})),
    ("Users", "/users", frozenset({"admin"})),
    ("API reference", "/api-reference", frozenset(users.STAFF_ROLES)),
)


class SignInNeeded(Exception):
    """No live session: the page answers with a redirect to sign-in."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class RoleRefused(Forbidden):
    """A page outside the user's role: 403 with a page that says so."""


@dataclass(frozen=True)
class Staff:
    """The signed-in staff member of a request."""

    session: users.Session
    rt: Runtime

    @property
    def user(self) -> users.User:
        return self.session.user

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    def principal(self, purpose: str | None = None) -> Principal:
        return users.principal(self.session, purpose)


def _next_path(request: Request) -> str:
    """Where sign-in leads back to: the page, never its query (which may hold a name or a
    document number, and would stay in the browser's history)."""
    return request.url.path


def signed_in(request: Request) -> Staff:
    """The staff member whose session cookie the request carries, or SignInNeeded."""
    rt = get_runtime(request)
    session = users.session(rt, request.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded(_next_path(request))
    staff = Staff(session, rt)
    # Refusals and failures of this request are audited under the user, and its error
    # page is drawn for them without asking the store again.
    request.state.principal = staff.principal()
    request.state.staff = staff
    return staff


def role(*roles: str) -> Callable[[Request], Staff]:
    allowed = frozenset(roles)

    def check(request: Request) -> Staff:
        staff = signed_in(request)
        if staff.user.role not in allowed:
            raise RoleRefused(
                f"this page is for {', '.join(sorted(allowed))}; you are {staff.user.role}"
            )
        return staff

    return check


AnyStaff = Annotated[Staff, Depends(signed_in)]


def _check_csrf(staff: Staff, csrf: str) -> Staff:
    if not users.check_csrf(staff.rt, staff.session, csrf or None):
        raise Forbidden("this form has expired or did not come from this console: reload the page")
    return staff


def posting(*roles: str) -> Callable[..., Staff]:
    """A form post by a user of one of ``roles`` (any staff member when none is given),
    refused (403) without the session's CSRF token, before the handler runs."""
    check_role = role(*roles) if roles else signed_in

    def check(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Staff:
        return _check_csrf(check_role(request), csrf)

    return check


def problems(error: ValidationError) -> dict[str, str]:
    """Pydantic's problems by field, as the API names them."""
    found: dict[str, str] = {}
    for problem in error.errors():
        ctx = problem.get("ctx") or {}
        loc = [str(p) for p in problem.get("loc", ()) if not str(p).isdigit()]
        field = str(ctx.get("field") or (loc[-1] if loc else ""))
        found.setdefault(field, str(problem.get("msg", ""))[:200])
    return found


def nav(user: users.User) -> list[tuple[str, str]]:
    return [(label, PREFIX + path) for label, path, roles in NAVIGATION if user.role in roles]


def page(
    request: Request,
    template: str,
    staff: Staff | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page of the console. Every page is built from base.html: the navigation of the
    user's role, sign-out, and the CSRF token for the page's forms."""
    values: dict[str, Any] = {
        "staff": staff,
        "nav": nav(staff.user) if staff is not None else [],
        "csrf": staff.csrf if staff is not None else "",
        "current": request.url.path,
        **context,
    }
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(
        PREFIX + path if path.startswith("/") and not path.startswith(PREFIX) else path,
        status_code=303,
    )


def sign_in_redirect(request: Request, next_path: str) -> Response:
    """To sign-in, and back here afterwards. A request htmx made is told to load the
    sign-in page whole (``HX-Redirect``), not to swap it into the page."""
    target = f"{PREFIX}/login?next={quote(next_path, safe='')}"
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_page(request: Request, exc: BorderError) -> Response:
    """A refusal raised in a console route, as a page (the API answers JSON)."""
    staff: Staff | None = getattr(request.state, "staff", None)
    titles: Mapping[int, str] = {
        403: "Not for your role",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Not accepted",
        429: "Too many attempts",
        503: "Unavailable",
    }
    return page(
        request,
        "error.html",
        staff,
        status_code=exc.status,
        title=titles.get(exc.status, "Refused"),
        error=exc,
    )


def image(data: bytes) -> Response:
    """A stored photo as the browser should read it (JPEG or PNG, by its bytes)."""
    return Response(data, media_type=f"image/{intake.sniff(data)}")


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A value for a CSV cell that a spreadsheet will not run: text that would start a
    formula is quoted with a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text
