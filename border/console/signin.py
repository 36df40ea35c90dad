"""Sign-in, account activation, sign-out and the home page."""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from border import users
from border.console import web
from core import auth
from core.errors import BorderError, Forbidden, InvalidRequest
from core.runtime import RuntimeDep

router = APIRouter()


def _safe_next(value: str | None) -> str:
    """Where to go after sign-in: a console path of this site, else the home page (no open
    redirect)."""
    if not value:
        return web.PREFIX + "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith(web.PREFIX) or "\\" in value:
        return web.PREFIX + "/"
    return value


def _set_cookie(response: Response, session: users.Session, max_age_s: float) -> None:
    response.set_cookie(
        web.COOKIE,
        session.token,
        max_age=int(max_age_s),
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _cross_site(request: Request) -> bool:
    """A sign-in posted from another site (login CSRF: a victim signed in to someone
    else's account). Browsers say where a request comes from in ``Sec-Fetch-Site``, older
    ones in ``Origin``."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    own = urlsplit(str(request.base_url))
    given = urlsplit(origin)
    return (given.scheme, given.netloc) != (own.scheme, own.netloc)


@router.get("/login", name="console.login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return web.page(request, "login.html", None, title="Sign in", next=_safe_next(next))


@router.post("/login", name="console.login.submit")
def login(
    request: Request,
    rt: RuntimeDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = _safe_next(next)
    if _cross_site(request):
        raise Forbidden("sign in from the console's own sign-in page")
    try:
        session = users.sign_in(
            rt,
            username=username.strip(),
            password=password,
            code=code.strip(),
            address=auth.caller_address(request, rt.settings),
        )
    except BorderError as refused:
        return web.page(
            request,
            "login.html",
            None,
            status_code=refused.status,
            title="Sign in",
            next=target,
            username=username.strip()[:64],
            error=refused.detail,
        )
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, session, rt.settings.session_max_s)
    return response


@router.get("/activate/{token}", name="console.activate")
def activation_page(request: Request, token: str, rt: RuntimeDep) -> HTMLResponse:
    found = users.activation(rt, token)
    return web.page(
        request, "activate.html", None, title="Activate your account", activation=found, token=token
    )


@router.post("/activate/{token}", name="console.activate.submit")
def activate(
    request: Request,
    token: str,
    rt: RuntimeDep,
    password: Annotated[str, Form(max_length=1000)] = "",
    password_again: Annotated[str, Form(max_length=1000)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    found = users.activation(rt, token)
    errors: dict[str, str] = {}
    if found.needs_password and password != password_again:
        errors["password_again"] = "the two passwords differ"  # noqa: S105 (a message)
    else:
        try:
            users.activate(
                rt, token, password=password if found.needs_password else None, code=code.strip()
            )
        except InvalidRequest as refused:
            errors[str(refused.extra.get("field") or "code")] = refused.detail
    if errors:
        return web.page(
            request,
            "activate.html",
            None,
            status_code=422,
            title="Activate your account",
            activation=found,
            token=token,
            errors=errors,
        )
    return web.page(request, "activated.html", None, title="Account active")


@router.post("/logout", name="console.logout")
def logout(staff: Annotated[web.Staff, Depends(web.posting())]) -> Response:
    users.sign_out(staff.rt, staff.session)
    response = RedirectResponse(web.PREFIX + "/login", status_code=303)
    response.delete_cookie(web.COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/", name="console.home")
def home(request: Request, staff: web.AnyStaff) -> HTMLResponse:
    return web.page(request, "home.html", staff, title="Border")
