"""The application factory: routers, error handling, metrics, and the lifespan that holds
the store, the pool and the key ring.

Two pure ASGI middlewares wrap the routes. ``RequestContext`` (outermost) gives the
request id, the Prometheus figures, the security headers and the last line of defence.
``RequestGuard`` checks the key of every ``/v1`` request and limits every body before a
byte of the body is read (DESIGN §14).

Security headers: every response says ``nosniff``, ``no-referrer``, no framing
(``X-Frame-Options`` and CSP ``frame-ancestors``; the CSP allows nothing, as the API serves
no page), and ``Strict-Transport-Security`` for a year. The service itself speaks plain
HTTP behind the TLS proxy (README); browsers ignore HSTS over plain HTTP, so sending it is
harmless there and makes sure it reaches clients even when the proxy does not add it.
Every ``/v1`` response, which may hold personal data, is ``Cache-Control: no-store``; the
others too unless they say otherwise.
"""

import logging
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypedDict

import anyio
import anyio.to_thread
import psycopg
import psycopg_pool
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audit import api as audit_api
from audit import service as audit_service
from border import api as border_api
from border import (
    console,
    crossing_api,
    models,
    retention,
    retention_api,
    statistics_api,
    subject_api,
)
from border.schema import migration_dirs
from core import auth, logs, migrate
from core.auth import Principal, authenticate
from core.db import transaction
from core.errors import (
    BorderError,
    InvalidRequest,
    MethodNotAllowed,
    RateLimited,
    RouteNotFound,
    Unavailable,
)
from core.metrics import UNMATCHED, Metrics, method_label
from core.runtime import Runtime
from core.settings import Settings
from enrollment import api as enrollment_api
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from matching.milvus import GalleryUnavailable
from visa import api as visa_api
from visa.policy import Policy, load_policy

log = logging.getLogger(__name__)


V1 = "/v1"
CONSOLE = console.web.PREFIX


class State(TypedDict):
    rt: Runtime
    bio: Biometrics
    policy: Policy
    refusals: audit_service.RefusalTally
    migrations: Mapping[int, str]


class BodyTooLarge(BorderError):
    code = "body_too_large"
    status = 413


class _BodyLimitPassed(StarletteHTTPException):
    """Raised while the body is read, the moment it passes the limit. An HTTPException,
    so FastAPI's body parsing passes it on as it is, to ``_http_error``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")
        self.limit = limit


def _body_too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"the request body is over {limit} bytes", limit_bytes=limit)


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "name", None) or getattr(route, "path", None) or "unmatched")


def _app_path(scope: Scope) -> str:
    """The path within this app. A mount (the console's static files) extends
    ``root_path`` as it routes; ``app_root_path`` keeps the app's own."""
    path = str(scope.get("path", ""))
    root = str(scope.get("app_root_path", scope.get("root_path", "")))
    return path[len(root) :] if root and path.startswith(root) else path


def _under(scope: Scope, prefix: str) -> bool:
    path = _app_path(scope)
    return path == prefix or path.startswith(prefix + "/")


def _under_v1(scope: Scope) -> bool:
    return _under(scope, V1)


def _route_template(scope: Scope) -> str | None:
    """The matched route's path template (``/v1/persons/{person_id}``), None when none
    matched. FastAPI keeps the routes of an included router as they were declared, so
    their template lacks the prefix of the router they were included in (here only /v1)."""
    template = getattr(scope.get("route"), "path_format", None)
    if not isinstance(template, str):
        return None
    if _under_v1(scope) and not template.startswith(V1 + "/"):
        template = V1 + template
    return template


def _audit_refusal(request: Request, code: str, status: int) -> None:
    """Record a refused or failed request in a transaction of its own: the request's own
    transaction, if any, was rolled back. A caller with a valid key gets one event per
    refusal; one without (``anonymous``) is counted in the tally of its address."""
    rt: Runtime | None = getattr(request.state, "rt", None)
    if rt is None:
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    # The method is the caller's text: only the standard ones are named.
    detail = {"status": status, "method": method_label(request.method)}
    if principal is None:
        _audit_anonymous(request, rt, code, detail)
        return
    try:
        with transaction(rt.pool) as conn:
            audit_service.append(
                conn,
                rt.keys,
                actor=principal.actor,
                role=principal.role,
                purpose=principal.purpose,
                action=_route_name(request.scope),
                outcome=code,
                detail=detail,
            )
    except (psycopg.Error, psycopg_pool.PoolTimeout):
        log.warning("could not audit a refused request (%s): the store is unavailable", code)


def _audit_anonymous(request: Request, rt: Runtime, code: str, detail: dict[str, Any]) -> None:
    """Count the refusal under the caller's address; write what the tally says is due: the
    address's event (named after this request, with the count since its last one), or a
    summary of addresses gone quiet."""
    tally: audit_service.RefusalTally | None = getattr(request.state, "refusals", None)
    if tally is None:
        return
    for count in tally.note(auth.caller_address(request, rt.settings), code, int(detail["status"])):
        if count.address is None:
            _record_refusals(rt, tally, count)
        else:
            _record_refusals(
                rt, tally, count, action=_route_name(request.scope), outcome=code, detail=detail
            )


def _record_refusals(
    rt: Runtime,
    tally: audit_service.RefusalTally,
    count: audit_service.RefusalCount,
    **event: Any,
) -> None:
    try:
        with transaction(rt.pool) as conn:
            audit_service.record_refusals(conn, rt.keys, count, **event)
    except (psycopg.Error, psycopg_pool.PoolTimeout):
        # Given back to the tally: written with the next event instead.
        tally.restore(count)
        log.warning("could not audit %d refused requests: the store is unavailable", count.refused)


def _write_remaining_refusals(rt: Runtime, tally: audit_service.RefusalTally) -> None:
    """At shutdown: what the tally still holds, as one summary event."""
    count = tally.drain()
    if count is None:
        return
    try:
        with transaction(rt.pool) as conn:
            audit_service.record_refusals(conn, rt.keys, count)
    except (psycopg.Error, psycopg_pool.PoolTimeout):
        log.error(
            "at shutdown, %d refused requests from %d addresses could not be audited: %s",
            count.refused,
            count.addresses,
            count.codes,
        )


def _guard_refusal(request: Request) -> BorderError | None:
    """The refusal ``RequestGuard`` gave a /v1 request before its body, if any."""
    refusal: BorderError | None = getattr(request.state, "guard_refusal", None)
    return refusal


def _caller(request: Request) -> Principal:
    """Every /v1 route depends on this (deny by default): the caller ``RequestGuard``
    authenticated before any of the body was read, or its refusal."""
    refusal = _guard_refusal(request)
    if refusal is not None:
        raise refusal
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal if principal is not None else authenticate(request)


def _error_response(request: Request, exc: BorderError) -> Response:
    # A request refused before its body was read was routed without it: whatever the
    # empty body led to, the answer is the refusal.
    exc = _guard_refusal(request) or exc
    # A store that is down cannot take the event; a throttled flood must not fill the log
    # (the failures that triggered the throttle were audited, or counted in their
    # address's event).
    if exc.status not in (Unavailable.status, RateLimited.status):
        _audit_refusal(request, exc.code, exc.status)
    headers = None
    if isinstance(exc, RateLimited) or "retry_after_s" in exc.extra:
        headers = {"Retry-After": str(max(1, round(float(exc.extra.get("retry_after_s", 1)))))}
    if _under(request.scope, CONSOLE):
        page = console.web.error_page(request, exc)
        page.headers.update(headers or {})
        return page
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _sign_in_needed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, console.web.SignInNeeded)
    return console.web.sign_in_redirect(request, exc.next_path)


def _border_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BorderError)
    return _error_response(request, exc)


_MAX_PROBLEMS = 20


def _access_refusal(request: Request) -> BorderError | None:
    """FastAPI reads and parses a body before it solves a route's dependencies, so a body
    that does not parse would be answered before the role is checked. Check it first (the
    key was checked before the body was read): a caller without a valid key or role gets
    its 401 or 403, not a 422."""
    refusal = _guard_refusal(request)
    if refusal is not None:
        return refusal
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return None
    try:
        auth.check_access(request, route.dependant)
    except BorderError as refusal:
        return refusal
    return None


_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _location(err: Any) -> list[str]:
    # An unknown field's name is the caller's text: named when it looks like a field name,
    # otherwise only located, so no arbitrary text is echoed (or logged with the refusal).
    loc = [str(p)[:64] for p in err.get("loc", ())]
    if err.get("type") == "extra_forbidden" and loc and not _PLAIN_NAME.match(loc[-1]):
        loc[-1] = "<unknown field>"
    return loc


def _message(err: Any) -> str:
    # Pydantic's message for an unknown union tag quotes the tag the caller sent: name the
    # expected tags instead, so no caller text is echoed (or logged with the refusal).
    if str(err.get("type", "")).startswith("union_tag"):
        ctx = err.get("ctx") or {}
        return f"must be one of {ctx.get('expected_tags', 'the documented values')}"[:200]
    return str(err.get("msg", ""))[:200]


def _field(err: Any) -> str:
    """The field a problem is about, named on its own as every other 422 does: a model's
    own check names it in its context."""
    ctx = err.get("ctx") or {}
    if isinstance(ctx.get("field"), str):
        return str(ctx["field"])
    if str(err.get("type", "")).startswith("union_tag"):
        return str(ctx.get("discriminator", "")).strip("'")
    # Bodies are flat: the last name in the location is the field (a discriminated
    # union puts its tag before it, a list the position after it).
    names = [p for p in _location(err)[1:] if not p.isdigit()]
    return names[-1] if names else ""


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    refusal = _access_refusal(request)
    if refusal is not None:
        return _error_response(request, refusal)
    # Field paths and messages only, and a bounded number of them: pydantic's "input" may
    # hold personal data, and a body of a million unknown keys must not echo a million.
    errors = exc.errors()
    problems = [{"loc": _location(err), "msg": _message(err)} for err in errors[:_MAX_PROBLEMS]]
    summary = "; ".join(f"{'.'.join(p['loc'])}: {p['msg']}" for p in problems[:5])
    more = f" (and {len(errors) - _MAX_PROBLEMS} more)" if len(errors) > _MAX_PROBLEMS else ""
    field = _field(errors[0]) if errors else ""
    return _error_response(
        request,
        InvalidRequest(
            f"the request is not valid: {summary}{more}", field=field, problems=problems
        ),
    )


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error_response(request, RouteNotFound("no such route"))
    if exc.status_code == 405:
        return _error_response(request, MethodNotAllowed(f"{request.method} is not allowed here"))
    refusal = _access_refusal(request)
    if refusal is not None:
        return _error_response(request, refusal)
    if isinstance(exc, _BodyLimitPassed):
        return _error_response(request, _body_too_large(exc.limit))
    return _error_response(request, InvalidRequest("the request body could not be read"))


def _bad_data(request: Request, exc: Exception) -> Response:
    """Values the store or the calendar cannot take (a NUL in text, a date past year 9999)
    are the caller's error, refused like any other bad input."""
    log.info("bad data refused: %s", type(exc).__name__)
    return _error_response(
        request, InvalidRequest("the request holds a value that cannot be stored or computed")
    )


def _store_down(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", type(exc).__name__)
    return _error_response(
        request, Unavailable("the records store is unavailable; retry in a few seconds")
    )


def _galleries_down(request: Request, exc: Exception) -> Response:
    log.warning("galleries unavailable: %s", exc)
    return _error_response(
        request, Unavailable("the face galleries are unavailable; retry in a few seconds")
    )


_SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ("strict-transport-security", "max-age=31536000"),
    ("cache-control", "no-store"),
)


# The console's pages load their own script, style and images and nothing else: no inline
# script or style, no other origin, no framing, forms posted only here.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _secure(message: Message, scope: Scope) -> None:
    """The security headers on a response (see the module docstring); a response may set
    its own, except that a /v1 or console one is never stored, and a console one has the
    console's CSP."""
    headers = MutableHeaders(scope=message)
    if _under(scope, CONSOLE):
        headers["content-security-policy"] = CONSOLE_CSP
    for name, value in _SECURITY_HEADERS:
        headers.setdefault(name, value)
    if _under_v1(scope) or _under(scope, CONSOLE):
        headers["cache-control"] = "no-store"


class RequestContext:
    """Pure ASGI middleware: request id, access line, Prometheus figures, security headers,
    and the last line of defence.

    The request id is the caller's ``X-Request-ID`` when it is one the service keeps
    (``core.logs.valid_request_id``), else a new one; it is echoed, set on every log line
    of the request and stored with its audit events. An unexpected exception becomes a 500
    carrying only the request id; the log gets the exception type and the stack's
    file/line/function, never the message or locals, which may hold personal data.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = logs.valid_request_id(Headers(scope=scope).get("x-request-id"))
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                _secure(message, scope)
            await send(message)

        with logs.request_scope(request_id) as context:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                frames = "; ".join(
                    f"{f.filename}:{f.lineno} {f.name}"
                    for f in traceback.extract_tb(exc.__traceback__)
                )
                log.error("request %s failed: %s at %s", request_id, type(exc).__name__, frames)
                if response_started:
                    raise
                request = Request(scope)
                await run_in_threadpool(_audit_refusal, request, "internal", 500)
                response = JSONResponse(
                    {
                        "error": "internal",
                        "detail": f"internal error; quote request id {request_id} to the operator",
                        "request_id": request_id,
                    },
                    status_code=500,
                )
                await response(scope, receive, send_with_id)
            finally:
                seconds = time.perf_counter() - started
                route = _route_template(scope)
                self.metrics.observe(scope["method"], route, status, seconds)
                _access_line(scope, route, status, seconds, context)


# Probes and scrapes come every few seconds: their lines are for debugging only.
_QUIET_ROUTES = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})
_access = logging.getLogger("border.access")


def _access_line(
    scope: Scope, route: str | None, status: int, seconds: float, context: Mapping[str, Any]
) -> None:
    """One line per request: the route's template, never the path or query as sent (they
    may hold names or document numbers)."""
    route = route or UNMATCHED
    method = method_label(scope["method"])
    level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
    _access.log(
        level,
        "%s %s %d",
        method,
        route,
        status,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "actor": context.get("actor"),
        },
    )


async def _without_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class _LimitedBody:
    """The request's ``receive``, refusing (413) the moment the body passes the limit,
    whatever Content-Length said (a chunked body says nothing); nothing past it is read."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.read = 0

    async def __call__(self) -> Message:
        if self.read > self.limit:
            raise _BodyLimitPassed(self.limit)
        message = await self.receive()
        if message["type"] == "http.request":
            self.read += len(message.get("body", b""))
            if self.read > self.limit:
                raise _BodyLimitPassed(self.limit)
        return message


def _declared_length(scope: Scope) -> int:
    """The body's length as Content-Length gives it; 0 when it gives none (the server
    refuses a malformed one)."""
    declared = Headers(scope=scope).get("content-length", "")
    return int(declared) if declared.isascii() and declared.isdigit() else 0


def _admit(request: Request) -> BorderError | None:
    """Authenticate a /v1 caller from its headers alone; its refusal, if any."""
    try:
        authenticate(request)
    except BorderError as refusal:
        return refusal
    except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
        log.warning("store unavailable: %s", type(exc).__name__)
        return Unavailable("the records store is unavailable; retry in a few seconds")
    return None


def _console_post_without_session(scope: Scope, request: Request) -> bool:
    """A form post to the console with no session cookie, but for signing in and
    activating an account, which come before any session."""
    if scope["method"] != "POST" or not _under(scope, CONSOLE):
        return False
    path = _app_path(scope)
    opening = path == CONSOLE + "/login" or path.startswith(CONSOLE + "/activate/")
    return not opening and console.web.COOKIE not in request.cookies


class RequestGuard:
    """Pure ASGI middleware: the key is checked, and the body limited, before any of the
    body is read (DESIGN §14).

    A /v1 request is authenticated from its headers first. A body whose Content-Length is
    over ``body_max_bytes`` is refused as it stands; any other is counted as it is read
    and refused the moment it passes the limit. A refused /v1 request still goes through
    the routes, without its body, so that its refusal names the route: ``_caller``, on
    which every /v1 route depends, and every error handler answer with that refusal (a
    body error of an empty body cannot come first). Elsewhere the refusal is answered here.
    """

    def __init__(self, app: ASGIApp, body_max_bytes: int) -> None:
        self.app = app
        self.limit = body_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _console_post_without_session(scope, request):
            # Like a /v1 key, a console session is checked before any of the body is read.
            await console.web.sign_in_redirect(request, _app_path(scope))(scope, receive, send)
            return
        refusal = await run_in_threadpool(_admit, request) if _under_v1(scope) else None
        if refusal is None and _declared_length(scope) > self.limit:
            refusal = _body_too_large(self.limit)
        if refusal is None:
            await self.app(scope, _LimitedBody(receive, self.limit), send)
        elif _under_v1(scope):
            request.state.guard_refusal = refusal
            await self.app(scope, _without_body, send)
        else:
            response = await run_in_threadpool(_error_response, request, refusal)
            await response(scope, receive, send)


READY_TIMEOUT_S = 1.0
"""How long readiness waits on the database: for a connection, and for each statement."""


def _probe_store(rt: Runtime, expected: Mapping[int, str]) -> dict[str, str]:
    """The database and migrations checks: ``SELECT 1`` and the applied versions, read in
    one short transaction on a pooled connection, each wait bounded by
    :data:`READY_TIMEOUT_S`. Reads only; never names the URL."""
    checks = {"database": "unavailable", "migrations": "unknown"}
    timeout_ms = str(int(READY_TIMEOUT_S * 1000))
    try:
        with rt.pool.connection(timeout=READY_TIMEOUT_S) as conn, conn.transaction():
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (timeout_ms,))
            row = conn.execute("SELECT 1, to_regclass('schema_migrations') IS NOT NULL").fetchone()
            checks["database"] = "ok"
            applied: set[int] = set()
            if row is not None and row[1]:
                versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
                applied = {int(v) for (v,) in versions}
    except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
        if checks["database"] == "ok":
            checks["migrations"] = f"unreadable ({type(exc).__name__})"
        log.warning("readiness: the records store failed: %s", type(exc).__name__)
        return checks
    pending = sorted(set(expected) - applied)
    checks["migrations"] = (
        "ok" if not pending else "pending: " + ", ".join(expected[v] for v in pending)
    )
    return checks


async def _readiness(request: Request) -> JSONResponse:
    """200 when the database answers within a second, the schema is current and the
    galleries are loaded; else 503 naming the checks that failed. Writes nothing (no audit
    event), and never waits much past :data:`READY_TIMEOUT_S`, whatever the network does."""
    rt: Runtime | None = getattr(request.state, "rt", None)
    expected: Mapping[int, str] | None = getattr(request.state, "migrations", None)
    checks = {"database": "unavailable", "migrations": "unknown"}
    if rt is not None and expected is not None:
        # A hung network is not bounded by the statement timeout: give up on the thread.
        with anyio.move_on_after(READY_TIMEOUT_S * 3):
            checks = await anyio.to_thread.run_sync(
                _probe_store, rt, expected, abandon_on_cancel=True
            )
    checks["galleries"] = "ok" if getattr(request.state, "bio", None) is not None else "not loaded"
    failed = {name: state for name, state in checks.items() if state != "ok"}
    if not failed:
        return JSONResponse({"status": "ok"})
    detail = "not ready: " + "; ".join(f"{name} {state}" for name, state in failed.items())
    return JSONResponse(
        {"error": Unavailable.code, "detail": detail, "checks": checks},
        status_code=Unavailable.status,
        headers={"Retry-After": "5"},
    )


SAMPLE_EVERY_S = 5.0
"""How often each worker writes its gauges (pool, galleries, process): under several
workers, ``/metrics`` reads what the others last wrote."""


def _sample(metrics: Metrics, rt: Runtime, bio: Biometrics) -> None:
    metrics.sample(rt.pool.get_stats(), bio.galleries.sizes())


async def _sample_every(seconds: float, metrics: Metrics, rt: Runtime, bio: Biometrics) -> None:
    while True:
        # A thread: in Milvus the sizes are a query, which may wait for a slow server.
        await anyio.to_thread.run_sync(_sample, metrics, rt, bio)
        await anyio.sleep(seconds)


RETENTION_FIRST_S = 300.0
RETENTION_EVERY_S = 3600.0
"""Each worker looks whether today's retention run is due (border/retention.py) this long
after start, then hourly; one process at a time runs it, and every worker's galleries
catch up with what it erased."""


async def _retention_daily(
    first: float, every: float, rt: Runtime, policy: Policy, bio: Biometrics
) -> None:
    daily = retention.Daily()
    await anyio.sleep(first)
    while True:
        try:
            await anyio.to_thread.run_sync(daily.tick, rt, policy, bio.galleries)
        except Exception:
            # The store may be down: never the service's end; looked at again next time.
            log.exception("retention check failed")
        await anyio.sleep(every)


def create_app(settings: Settings | None = None, face_model: FaceModel | None = None) -> FastAPI:
    """Build the service. Nothing starts until the lifespan runs (uvicorn, or a TestClient
    used as a context manager). ``face_model`` lets tests share one loaded model."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        policy = load_policy(settings.policy_file)
        rt = await run_in_threadpool(Runtime.start, settings, migration_dirs(), metrics)
        try:
            indexed = await run_in_threadpool(enrollment_service.index_names, rt)
            if indexed:
                log.info("indexed the names of %d persons enrolled before name search", indexed)
            bio = await run_in_threadpool(Biometrics.start, rt, face_model)
            refusals = audit_service.RefusalTally()
            # What a current schema holds, read once: readiness compares it with the store.
            found = await run_in_threadpool(migrate.discover, migration_dirs())
            migrations = {m.version: m.name for m in found}
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(_sample_every, SAMPLE_EVERY_S, metrics, rt, bio)
                    tasks.start_soon(
                        _retention_daily, RETENTION_FIRST_S, RETENTION_EVERY_S, rt, policy, bio
                    )
                    yield {
                        "rt": rt,
                        "bio": bio,
                        "policy": policy,
                        "refusals": refusals,
                        "migrations": migrations,
                    }
                    tasks.cancel_scope.cancel()
            finally:
                await run_in_threadpool(_write_remaining_refusals, rt, refusals)
                await run_in_threadpool(bio.close, rt)
        finally:
            await run_in_threadpool(rt.close)
            metrics.close()

    app = FastAPI(
        title="Border",
        version="1",
        summary="Biometric border management and visa compliance",
        lifespan=lifespan,
        # Only /health (and /health/live, /health/ready) and /metrics are open; the schema
        # is served to no one anonymous.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    # Authenticated by default: every /v1 route sits under this router.
    v1 = APIRouter(prefix=V1, dependencies=[Depends(_caller)])
    v1.include_router(enrollment_api.router)
    v1.include_router(visa_api.router)
    v1.include_router(crossing_api.router)
    v1.include_router(statistics_api.router)
    v1.include_router(subject_api.router)
    v1.include_router(border_api.router)
    v1.include_router(retention_api.router)
    v1.include_router(audit_api.router)
    app.include_router(v1)

    # Open, outside /v1, and never audited (DESIGN §15). /health is readiness.
    @app.get("/health/live", tags=["ops"], name="health_live")
    async def health_live() -> models.Health:
        """The process answers; nothing else is touched."""
        return models.Health(status="ok")

    ready_responses: dict[int | str, dict[str, Any]] = {
        200: {"model": models.Health},
        503: {
            "description": "not ready: `checks` names what failed (database, migrations, galleries)"
        },
    }

    for path, name in (("/health/ready", "health_ready"), ("/health", "health")):
        app.add_api_route(
            path, _readiness, methods=["GET"], tags=["ops"], name=name, responses=ready_responses
        )

    @app.get("/metrics", tags=["ops"], name="metrics", response_class=PlainTextResponse)
    def prometheus(request: Request) -> PlainTextResponse:
        rt: Runtime | None = getattr(request.state, "rt", None)
        bio: Biometrics | None = getattr(request.state, "bio", None)
        if rt is not None and bio is not None:
            _sample(metrics, rt, bio)
        body, content_type = metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    app.include_router(console.router, prefix=CONSOLE)
    app.mount(
        CONSOLE + "/static", StaticFiles(directory=console.web.HERE / "static"), name="static"
    )

    handlers: dict[Any, Any] = {
        console.web.SignInNeeded: _sign_in_needed,
        BorderError: _border_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        psycopg.OperationalError: _store_down,
        psycopg.DataError: _bad_data,
        OverflowError: _bad_data,
        psycopg_pool.PoolTimeout: _store_down,
        GalleryUnavailable: _galleries_down,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    # The last added is the outermost: the context sees the guard's answers too.
    app.add_middleware(RequestGuard, body_max_bytes=settings.body_max_bytes)
    app.add_middleware(RequestContext, metrics=metrics)
    return app
