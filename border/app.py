"""The application factory: routers, error handling, metrics, and the lifespan that holds
the store, the pool and the key ring."""

import logging
import re
import time
import traceback
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import psycopg_pool
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import audit
import border
import core
import enrollment
import visa
from audit import api as audit_api
from audit import service as audit_service
from border import api as border_api
from border import crossing_api, models
from border.metrics import Metrics
from core import auth
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
from core.runtime import Runtime
from core.settings import Settings
from enrollment import api as enrollment_api
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from visa import api as visa_api
from visa.policy import Policy, load_policy

log = logging.getLogger(__name__)


def migration_dirs() -> list[Path]:
    """Every package's migrations folder, in the order the layers are built."""
    packages = (core, audit, visa, enrollment, border)
    return [Path(pkg.__file__).parent / "migrations" for pkg in packages]  # type: ignore[arg-type]


class State(TypedDict):
    rt: Runtime
    bio: Biometrics
    policy: Policy


def _route_name(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "name", None) or getattr(route, "path", None) or "unmatched")


def _audit_refusal(request: Request, code: str, status: int) -> None:
    """Record a refused or failed request in a transaction of its own: the request's own
    transaction, if any, was rolled back. A caller without a valid key is ``anonymous``."""
    rt: Runtime | None = getattr(request.state, "rt", None)
    if rt is None:
        return
    principal: Principal | None = getattr(request.state, "principal", None)
    try:
        with transaction(rt.pool) as conn:
            audit_service.append(
                conn,
                rt.keys,
                actor=principal.actor if principal else "anonymous",
                role=principal.role if principal else None,
                purpose=principal.purpose if principal else None,
                action=_route_name(request.scope),
                outcome=code,
                detail={"status": status, "method": request.method},
            )
    except (psycopg.Error, psycopg_pool.PoolTimeout):
        log.warning("could not audit a refused request (%s): the store is unavailable", code)


def _error_response(request: Request, exc: BorderError) -> JSONResponse:
    # A store that is down cannot take the event; a throttled flood must not fill the log
    # (the failures that triggered the throttle were audited one by one).
    if exc.status not in (Unavailable.status, RateLimited.status):
        _audit_refusal(request, exc.code, exc.status)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, round(float(exc.extra.get("retry_after_s", 1)))))}
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _border_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BorderError)
    return _error_response(request, exc)


_MAX_PROBLEMS = 20


def _access_refusal(request: Request) -> BorderError | None:
    """FastAPI reads and parses a body before it solves a route's dependencies, so a body
    that does not parse would be answered before the key and role are checked. Check them
    first: a caller without a valid key or role gets its 401 or 403, not a 422."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or getattr(request.state, "principal", None) is not None:
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


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
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


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _error_response(request, RouteNotFound("no such route"))
    if exc.status_code == 405:
        return _error_response(request, MethodNotAllowed(f"{request.method} is not allowed here"))
    refusal = _access_refusal(request)
    if refusal is not None:
        return _error_response(request, refusal)
    return _error_response(request, InvalidRequest("the request body could not be read"))


def _bad_data(request: Request, exc: Exception) -> JSONResponse:
    """Values the store or the calendar cannot take (a NUL in text, a date past year 9999)
    are the caller's error, refused like any other bad input."""
    log.info("bad data refused: %s", type(exc).__name__)
    return _error_response(
        request, InvalidRequest("the request holds a value that cannot be stored or computed")
    )


def _store_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("store unavailable: %s", type(exc).__name__)
    return _error_response(
        request, Unavailable("the records store is unavailable; retry in a few seconds")
    )


class RequestContext:
    """Pure ASGI middleware: request id, Prometheus figures, and the last line of defence.

    An unexpected exception becomes a 500 carrying only the request id; the log gets the
    exception type and the stack's file/line/function, never the message or locals, which
    may hold personal data.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            frames = "; ".join(
                f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
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
            self.metrics.observe(
                scope["method"], _route_name(scope), status, time.perf_counter() - started
            )


def create_app(settings: Settings | None = None, face_model: FaceModel | None = None) -> FastAPI:
    """Build the service. Nothing starts until the lifespan runs (uvicorn, or a TestClient
    used as a context manager). ``face_model`` lets tests share one loaded model."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        policy = load_policy(settings.policy_file)
        rt = await run_in_threadpool(Runtime.start, settings, migration_dirs())
        try:
            indexed = await run_in_threadpool(enrollment_service.index_names, rt)
            if indexed:
                log.info("indexed the names of %d persons enrolled before name search", indexed)
            bio = await run_in_threadpool(Biometrics.start, rt, face_model)
            try:
                yield {"rt": rt, "bio": bio, "policy": policy}
            finally:
                await run_in_threadpool(bio.close, rt)
        finally:
            await run_in_threadpool(rt.close)

    app = FastAPI(
        title="Border",
        version="1",
        summary="Biometric border management and visa compliance",
        lifespan=lifespan,
        # Only /health and /metrics are open; the schema is served to no one anonymous.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    # Authenticated by default: every /v1 route sits under this router.
    v1 = APIRouter(prefix="/v1", dependencies=[Depends(authenticate)])
    v1.include_router(enrollment_api.router)
    v1.include_router(visa_api.router)
    v1.include_router(crossing_api.router)
    v1.include_router(border_api.router)
    v1.include_router(audit_api.router)
    app.include_router(v1)

    @app.get("/health", tags=["ops"], name="health")
    def health() -> models.Health:
        return models.Health(status="ok")

    @app.get("/metrics", tags=["ops"], name="metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        body, content_type = metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    handlers: dict[Any, Any] = {
        BorderError: _border_error,
        RequestValidationError: _validation_error,
        StarletteHTTPException: _http_error,
        psycopg.OperationalError: _store_down,
        psycopg.DataError: _bad_data,
        OverflowError: _bad_data,
        psycopg_pool.PoolTimeout: _store_down,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    app.add_middleware(RequestContext, metrics=metrics)
    return app
