"""The admin's pages (API clients, staff users) and the API reference for every signed-in
staff member."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError

from border import models, service, users
from border.console import web
from core import auth
from core.errors import BorderError

router = APIRouter()

Admin = Annotated[web.Staff, Depends(web.role("admin"))]
AdminPost = Annotated[web.Staff, Depends(web.posting("admin"))]


def _clients_page(
    request: Request,
    staff: web.Staff,
    *,
    status_code: int = 200,
    created: models.ClientCreated | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return web.page(
        request,
        "clients.html",
        staff,
        status_code=status_code,
        title="API clients",
        clients=service.list_clients(staff.rt, staff.principal()),
        roles=auth.ROLES,
        created=created,
        form=form or {},
        errors=errors or {},
    )


@router.get("/clients", name="console.clients")
def clients(request: Request, staff: Admin) -> HTMLResponse:
    return _clients_page(request, staff)


@router.post("/clients", name="console.clients.create")
def create_client(
    request: Request,
    staff: AdminPost,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    border_point: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """A new API client; its key is shown on this page once, never again."""
    form = {"name": name, "role": role, "border_point": border_point}
    try:
        body = models.ClientIn.model_validate(
            {"name": name.strip(), "role": role, "border_point": border_point.strip() or None}
        )
        created = service.create_client(staff.rt, staff.principal(), body)
    except ValidationError as invalid:
        return _clients_page(
            request, staff, status_code=422, form=form, errors=web.problems(invalid)
        )
    except BorderError as refused:
        field = str(refused.extra.get("field") or "name")
        return _clients_page(
            request, staff, status_code=refused.status, form=form, errors={field: refused.detail}
        )
    return _clients_page(request, staff, status_code=201, created=created)


@router.post("/clients/{client_id}/revoke", name="console.clients.revoke")
def revoke_client(client_id: UUID, staff: AdminPost) -> Response:
    service.revoke_client(staff.rt, staff.principal(), client_id)
    return web.redirect("/clients")


def _users_page(
    request: Request,
    staff: web.Staff,
    *,
    status_code: int = 200,
    created: users.Created | None = None,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return web.page(
        request,
        "users.html",
        staff,
        status_code=status_code,
        title="Users",
        listed=users.list_users(staff.rt, staff.principal()),
        roles=users.STAFF_ROLES,
        created=created,
        form=form or {},
        errors=errors or {},
    )


@router.get("/users", name="console.users")
def users_page(request: Request, staff: Admin) -> HTMLResponse:
    return _users_page(request, staff)


@router.post("/users", name="console.users.create")
def create_user(
    request: Request,
    staff: AdminPost,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    border_point: Annotated[str, Form(max_length=100)] = "",
) -> HTMLResponse:
    """A new staff member: the page shows the one-time activation link to hand over; the
    admin never sets or sees their password or authenticator."""
    form = {"username": username, "role": role, "border_point": border_point}
    try:
        created = users.create(
            staff.rt,
            staff.principal(),
            username=username.strip().lower(),
            role=role,
            border_point=border_point.strip() or None,
        )
    except BorderError as refused:
        field = str(refused.extra.get("field") or "username")
        return _users_page(
            request, staff, status_code=refused.status, form=form, errors={field: refused.detail}
        )
    return _users_page(request, staff, status_code=201, created=created)


@router.post("/users/{username}/disable", name="console.users.disable")
def disable_user(username: str, staff: AdminPost) -> Response:
    users.disable(staff.rt, staff.principal(), username)
    return web.redirect("/users")


@router.post("/users/{username}/reset-totp", name="console.users.reset_totp")
def reset_totp(request: Request, username: str, staff: AdminPost) -> HTMLResponse:
    created = users.reset_totp(staff.rt, staff.principal(), username)
    return _users_page(request, staff, created=created)


@router.get("/api-reference", name="console.api_reference")
def api_reference(request: Request, staff: web.AnyStaff) -> HTMLResponse:
    """The API's reference, drawn by Swagger UI from the project's own static files."""
    return web.page(request, "api_reference.html", staff, title="API reference")


@router.get("/api-reference/openapi.json", name="console.api_reference.schema")
def api_schema(request: Request, staff: web.AnyStaff) -> JSONResponse:
    return JSONResponse(request.app.openapi())
