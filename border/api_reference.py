"""The API reference, generated from the app's OpenAPI schema (DESIGN §15).

``render_markdown`` turns the schema, and the roles each route admits (read from the
routes' ``RoleCheck`` dependencies: the schema has no word for roles), into the Markdown of
docs/api.md; ``render_json`` is the schema itself, pretty-printed. Both are deterministic:
the same app gives the same text, so a test can hold docs/api.md to a fresh rendering.

Regenerate docs/api.md with::

    uv run python -m border.api_reference > docs/api.md
"""

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from core.auth import ROLES, RoleCheck

Schema = dict[str, Any]
RouteRoles = dict[tuple[str, str], tuple[str, ...]]

REGENERATE = "uv run python -m border.api_reference > docs/api.md"
_METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
# FastAPI's default 422 model: the service answers with its own error body instead.
_FASTAPI_VALIDATION = "HTTPValidationError"
_FASTAPI_MODELS = {_FASTAPI_VALIDATION, "ValidationError"}

# DESIGN §5: every refusal is a JSON body {"error": code, "detail": text, ...extra fields}.
# (code, HTTP statuses, meaning). A test holds this to every BorderError the code defines.
ERROR_CODES: tuple[tuple[str, tuple[int, ...], str], ...] = (
    (
        "unauthorized",
        (401,),
        "no key, or a key that is malformed, unknown or revoked "
        "(send `Authorization: Bearer <key>`)",
    ),
    ("forbidden", (403,), "the key's role may not call this route"),
    ("not_found", (404,), "no such record (an erased person is never found), or no such route"),
    (
        "invalid_request",
        (400, 405, 409, 422),
        "the request is not valid: `field` names the field and `problems` lists what is wrong "
        "(422); a method the route does not serve (405); a crossing already resolved (409)",
    ),
    ("mrz_invalid", (422,), "the MRZ does not parse or a check digit fails: `field`, `reason`"),
    ("image_unreadable", (422,), "not a readable JPEG or PNG (told by its bytes)"),
    (
        "image_too_large",
        (413,),
        "an image over the byte, pixel or decoding budget, refused before it is decoded",
    ),
    ("body_too_large", (413,), "a request body over `BORDER_BODY_MAX_BYTES`, refused unread"),
    ("no_face", (422,), "no face in the image"),
    ("multiple_faces", (422,), "more than one face in the image"),
    (
        "low_quality",
        (422,),
        "the face fails quality measures: `failed` lists each with its value and threshold",
    ),
    ("face_mismatch", (422,), "the face does not match the person it is given for"),
    (
        "chip_invalid",
        (422,),
        "enrollment: the passport chip failed a check, named in `failed_check` (docs/documents.md)",
    ),
    (
        "duplicate_identity",
        (409,),
        "the face is already enrolled under another person: `candidates`",
    ),
    ("conflict", (409,), "the record already exists, or the change is refused as it stands"),
    ("rate_limited", (429,), "too many failed authentications; see `Retry-After`"),
    ("unavailable", (503,), "the records store is unavailable (or busy); retry"),
    ("internal", (500,), "an unexpected error; quote the `request_id` to the operator"),
)


def _role_checks(dependant: Dependant) -> Iterator[RoleCheck]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleCheck):
            yield dep.call
        yield from _role_checks(dep)


def route_roles(app: FastAPI) -> RouteRoles:
    """The roles each route admits, by (METHOD, path template as the schema writes it), in
    the order of ``core.auth.ROLES``.

    Read from the ``RoleCheck`` dependencies of each route (all of them must pass); a
    route with none admits every caller it lets in: ``()`` here. Routes of included
    routers are read with their prefix and the routers' dependencies, as FastAPI serves
    them (and as its schema lists them).
    """
    roles: RouteRoles = {}
    for context in routing.iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        admitted = set(ROLES)
        checked = False
        for check in _role_checks(context.dependant):
            admitted &= set(check.roles)
            checked = True
        for method in context.methods or ():
            roles[(method.upper(), str(context.path_format))] = (
                tuple(r for r in ROLES if r in admitted) if checked else ()
            )
    return roles


def render_json(schema: Mapping[str, Any]) -> str:
    """The schema as pretty, stable JSON (keys in the schema's own order), newline-ended."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _cell(text: object) -> str:
    """Text fit for a table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", str(text)).strip().replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return "model-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _route_anchor(method: str, path: str) -> str:
    return "route-" + re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


def _resolve(schema: Schema, spec: Mapping[str, Any]) -> Schema:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][_ref_name(schema["$ref"])]
    return schema


def _constraints(schema: Schema) -> list[str]:
    out = []
    for key, text in (
        ("minLength", "min length {}"),
        ("maxLength", "max length {}"),
        ("minimum", "≥ {}"),
        ("exclusiveMinimum", "> {}"),
        ("maximum", "≤ {}"),
        ("exclusiveMaximum", "< {}"),
        ("minItems", "min {} items"),
        ("maxItems", "max {} items"),
        ("pattern", "pattern `{}`"),
    ):
        if key in schema:
            out.append(text.format(schema[key]))
    return out


def _type(schema: Schema) -> str:
    """A schema as a short phrase: `string (uuid)`, `array of Visa`, `A or null`..."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            joiner = " and " if combinator == "allOf" else " or "
            text = joiner.join(_type(member) for member in schema[combinator])
            extra = _constraints(schema)
            return text + (f" ({', '.join(extra)})" if extra else "")
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        text = "array of " + _type(schema.get("items", {}))
    elif (
        kind == "object"
        and "additionalProperties" in schema
        and isinstance(schema["additionalProperties"], dict)
    ):
        text = "object of " + _type(schema["additionalProperties"])
    elif kind == "string" and (schema.get("format") == "binary" or "contentMediaType" in schema):
        text = "file"
    elif schema.get("format"):
        text = f"{kind} ({schema['format']})"
    else:
        text = str(kind)
    extra = _constraints(schema)
    return text + (f", {', '.join(extra)}" if extra else "")


def _default(schema: Schema) -> str:
    return f"default `{json.dumps(schema['default'])}`" if "default" in schema else ""


def _fields_table(schema: Schema) -> list[str]:
    properties: dict[str, Schema] = schema.get("properties", {})
    if not properties:
        return ["(no fields)"]
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, prop in properties.items():
        notes = [n for n in (prop.get("description", ""), _default(prop)) if n]
        lines.append(
            f"| `{name}` | {_cell(_type(prop))} | {'yes' if name in required else 'no'} "
            f"| {_cell('; '.join(notes))} |"
        )
    if schema.get("additionalProperties") is False:
        lines += ["", "Unknown fields are refused."]
    return lines


def _parameters(operation: Schema) -> list[str]:
    params: list[Schema] = operation.get("parameters", [])
    if not params:
        return []
    lines = ["Parameters:", "", "| name | in | type | required | description |"]
    lines.append("|---|---|---|---|---|")
    for param in params:
        schema = param.get("schema", {})
        notes = [n for n in (param.get("description", ""), _default(schema)) if n]
        lines.append(
            f"| `{param['name']}` | {param['in']} | {_cell(_type(schema))} "
            f"| {'yes' if param.get('required') else 'no'} | {_cell('; '.join(notes))} |"
        )
    return [*lines, ""]


def _request_body(operation: Schema, spec: Mapping[str, Any]) -> list[str]:
    body = operation.get("requestBody")
    if not body:
        return []
    lines: list[str] = []
    for media_type, content in body.get("content", {}).items():
        schema = content.get("schema", {})
        required = "required" if body.get("required") else "optional"
        lines += [f"Request body (`{media_type}`, {required}):", ""]
        members = schema.get("oneOf") or schema.get("anyOf")
        if members:
            tag = schema.get("discriminator", {}).get("propertyName")
            lines += [
                "One of the following" + (f", told apart by `{tag}`" if tag else "") + ":",
                "",
            ]
            for member in members:
                name = _ref_name(member["$ref"]) if "$ref" in member else _type(member)
                lines += [f"*{name}*", "", *_fields_table(_resolve(member, spec)), ""]
        else:
            lines += [*_fields_table(_resolve(schema, spec)), ""]
    return lines


def _responses(operation: Schema) -> list[str]:
    responses: dict[str, Schema] = operation.get("responses", {})
    lines = ["Responses:", "", "| status | description | body |", "|---|---|---|"]
    for status in sorted(responses):
        response = responses[status]
        bodies = []
        description = response.get("description", "")
        for media_type, content in response.get("content", {}).items():
            schema = content.get("schema", {})
            if _ref_name(schema.get("$ref", "")) == _FASTAPI_VALIDATION:
                description = "the request is not valid"
                bodies.append("[error body](#errors): `invalid_request` or a code of the route")
            elif schema:
                bodies.append(f"{_type(schema)} (`{media_type}`)")
            else:
                bodies.append(f"`{media_type}`")
        lines.append(f"| {status} | {_cell(description)} | {_cell('; '.join(bodies)) or '—'} |")
    return [*lines, ""]


def _roles_text(roles: tuple[str, ...] | None, path: str) -> str:
    if roles:
        return ", ".join(roles)
    if path == "/v1" or path.startswith("/v1/"):
        return "any caller with a key"
    return "none (no key needed)"


def _operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Schema]]:
    for path in sorted(spec.get("paths", {})):
        operations = spec["paths"][path]
        for method in sorted(m for m in operations if m in _METHODS):
            yield path, method.upper(), operations[method]


def render_markdown(
    schema: Mapping[str, Any], roles: Mapping[tuple[str, str], Any] | None = None
) -> str:
    """The Markdown reference of the API ``schema`` describes; ``roles`` as ``route_roles``
    gives them (without it, the roles are left out)."""
    info = schema.get("info", {})
    lines = [
        f"# {info.get('title', 'API')} API reference (v{info.get('version', '?')})",
        "",
        "<!-- Generated from the OpenAPI schema: do not edit by hand. Regenerate with",
        f"     {REGENERATE} -->",
        "",
    ]
    if info.get("summary"):
        lines += [str(info["summary"]) + ".", ""]
    lines += [
        "Every `/v1` route needs an API key, sent as `Authorization: Bearer <key>`, and admits",
        "only the roles listed with it (others get 403 `forbidden`). An optional `X-Purpose`",
        "header (1-200 letters, digits, spaces or simple punctuation) is recorded in the audit",
        "log with the request. The schema itself is served at `GET /v1/openapi.json` to any",
        "caller with a key, and printed by `border openapi`.",
        "",
        "## Errors",
        "",
        'Every refusal is a JSON body `{"error": code, "detail": text, ...}`; some codes add',
        "fields, named below. The code is stable; the detail is for people.",
        "",
        "| code | status | meaning |",
        "|---|---|---|",
    ]
    for code, statuses, meaning in ERROR_CODES:
        lines.append(f"| `{code}` | {', '.join(map(str, statuses))} | {_cell(meaning)} |")
    lines += ["", "## Routes", "", "| method | path | roles | summary |", "|---|---|---|---|"]
    operations = list(_operations(schema))
    for path, method, operation in operations:
        role_text = _roles_text(roles.get((method, path)), path) if roles is not None else ""
        lines.append(
            f"| {method} | [`{path}`](#{_route_anchor(method, path)}) | {_cell(role_text)} "
            f"| {_cell(operation.get('summary', ''))} |"
        )
    lines.append("")
    for path, method, operation in operations:
        lines += [f'<a id="{_route_anchor(method, path)}"></a>', "", f"### {method} {path}", ""]
        if operation.get("summary"):
            lines += [f"**{operation['summary']}**", ""]
        if operation.get("description"):
            lines += [operation["description"].strip(), ""]
        if roles is not None:
            lines += [f"Roles: {_roles_text(roles.get((method, path)), path)}.", ""]
        lines += _parameters(operation)
        lines += _request_body(operation, schema)
        lines += _responses(operation)
    models = schema.get("components", {}).get("schemas", {})
    # Request bodies are shown with their route; FastAPI names a form's model Body_*.
    shown = sorted(n for n in models if n not in _FASTAPI_MODELS and not n.startswith("Body_"))
    if shown:
        lines += ["## Models", ""]
    for name in shown:
        model = models[name]
        lines += [f'<a id="{_anchor(name)}"></a>', "", f"### {name}", ""]
        if model.get("description"):
            lines += [model["description"].strip(), ""]
        if "properties" in model or model.get("type") == "object":
            lines += [*_fields_table(model), ""]
        else:
            lines += [f"Type: {_type(model)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def reference(app: FastAPI) -> str:
    """The Markdown reference of ``app``: its schema with the roles of its routes."""
    return render_markdown(app.openapi(), route_roles(app))


def main() -> None:
    from border.app import create_app  # the whole service: only when run as a script
    from core.settings import Settings

    print(reference(create_app(Settings())), end="")


if __name__ == "__main__":
    main()
