"""Bad input over every route (DESIGN §4-§5): each request is refused with a 4xx, a stable
code and a JSON body that neither leaks a stack trace nor echoes the input; the service
stays up; no domain table changes; exactly one audit event records the refusal (a caller the
service cannot name, outside /v1, is counted in its address's one event a minute instead:
DESIGN §14); and the
audit chain still verifies at the end.

The corpus is derived from the app's OpenAPI schema (paths, parameters, body fields and their
types, formats, patterns and lengths), so a new route or field is covered without editing
this file; only a route with a request body needs a baseline below (a test says so). Each
case changes one thing in a baseline request whose own outcome is known. Where the changed
value is still valid for the schema, the expected outcome is the baseline's (or the route's
semantic refusal, e.g. ``mrz_invalid``); cases whose request would be accepted and write are
left to the dedicated tests at the end.

One app and one database serve the whole corpus (the cases only ever add audit events);
tests that must write use the function-scoped ``client`` of conftest.
"""

import io
import json
import os
import re
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from psycopg import sql
from pydantic import SecretStr

from border.app import create_app
from core import db
from core.auth import ROLES
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import TEMPLATE, as_role, new_key, runtime_of
from tests.factories import enroll, photo, td3
from tests.test_roles import ALLOWED

Schema = dict[str, Any]

SQL = "'; DROP TABLE persons; --"
TRAVERSAL = "../../etc/passwd"
NUL = "L898\x00902C3"
UNICODE = "ÉRIKSSÖN ✈ 名前"
# Strings that must never come back in a refusal: the injected text, and a traveller's name.
CANARIES = ("DROP TABLE", "etc/passwd", "ERIKSSON", "eriksson")
UNKNOWN = UUID("7a1c8a3e-5b2d-4c6f-9e01-b0f1a2c3d4e5")  # an id nobody holds
NOBODY = UUID("3d9f6b2e-8c41-4a7d-b5e0-6f1a2b3c4d5e")  # another
DOMAIN_TABLES = (
    "persons",
    "documents",
    "captures",
    "watchlist",
    "visas",
    "crossings",
    "api_clients",
    "data_keys",
    "master_key_versions",
    "alerts",
    "alert_indexes",
    "guardians",
    "dedup_overrides",
)
IMAGE_MAX_BYTES = Settings.model_fields["image_max_bytes"].default
BODY_MAX_BYTES: int = Settings.model_fields["body_max_bytes"].default
BOUNDARY = "border-bad-input-5f3c9a"


def word(text: str) -> str:
    """A route name or path as FastAPI writes it into an operationId."""
    return re.sub(r"\W", "_", text)


def route_names(spec: Schema) -> dict[tuple[str, str], str]:
    """Each route's name, as audit events record it up to punctuation: the default
    operationId is ``{name}{path}_{method}`` with every non-word character an underscore."""
    names = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            suffix = f"{word(path)}_{method}"
            assert operation["operationId"].endswith(suffix), operation["operationId"]
            names[(method.upper(), path)] = operation["operationId"].removesuffix(suffix)
    return names


SPEC: Schema = create_app(Settings()).openapi()
ROUTE_NAMES = route_names(SPEC)
ROUTES = sorted(
    (method.upper(), path)
    for path, operations in SPEC["paths"].items()
    if path.startswith("/v1/")
    for method in operations
)


@dataclass(frozen=True)
class Outcome:
    """An expected answer: a refusal's status and code, or an accepted read (code ``ok``)."""

    status: int
    code: str


INVALID = Outcome(422, "invalid_request")
NOT_FOUND = Outcome(404, "not_found")
METHOD = Outcome(405, "invalid_request")
MRZ_INVALID = Outcome(422, "mrz_invalid")
UNREADABLE = Outcome(422, "image_unreadable")
TOO_LARGE = Outcome(413, "image_too_large")
BODY_TOO_LARGE = Outcome(413, "body_too_large")
NO_FACE = Outcome(422, "no_face")
READ = Outcome(200, "ok")

# Bugs this corpus found, each with its code path (see the report in the issue). A case
# marked with one fails today; strict, so a fix makes it pass and the mark must go.


@dataclass(frozen=True)
class Part:
    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Case:
    """One bad request and what the service must answer."""

    method: str
    route: str
    label: str
    path: str
    query: str = ""
    json_body: object = None
    raw: bytes | None = None
    content_type: str | None = None
    parts: tuple[Part, ...] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    expect: Outcome = INVALID
    # Other answers that are right too (a NUL may be refused or match nothing).
    also: tuple[Outcome, ...] = ()
    # Audit action and whether the event names the caller (a refusal before routing or
    # before authentication cannot).
    actions: frozenset[str] = frozenset()
    attributed: bool = True
    bug: str | None = None
    role: str = "admin"

    @property
    def id(self) -> str:
        return f"{self.method} {self.route} | {self.label}"

    def body(self) -> tuple[bytes | None, str | None]:
        if self.parts is not None:
            return multipart(self.parts), f"multipart/form-data; boundary={BOUNDARY}"
        if self.raw is not None:
            return self.raw, self.content_type
        if self.json_body is not None:
            return json.dumps(self.json_body).encode(), "application/json"
        return None, self.content_type


def multipart(parts: Sequence[Part]) -> bytes:
    """A multipart/form-data body written by hand, so fields may hold any bytes."""
    out = bytearray()
    for part in parts:
        disposition = f'form-data; name="{part.name}"'
        if part.filename is not None:
            disposition += f'; filename="{part.filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if part.content_type is not None:
            out += f"Content-Type: {part.content_type}\r\n".encode()
        out += b"\r\n" + part.value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png(width: int, height: int, idat: bytes, *, crc_ok: bool = True) -> bytes:
    """An 8-bit RGB PNG declaring ``width`` x ``height`` with the given compressed data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data_chunk = png_chunk(b"IDAT", idat)
    if not crc_ok:
        data_chunk = data_chunk[:-4] + bytes(b ^ 0xFF for b in data_chunk[-4:])
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + data_chunk + png_chunk(b"IEND", b"")


ONE_PIXEL_PNG = png(1, 1, zlib.compress(b"\x00\x80\x80\x80"))


def pillow(fmt: str, size: tuple[int, int] = (16, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    small = pillow("JPEG")
    at = small.find(b"\xff\xc0")
    assert at > 0
    return small[: at + 5] + struct.pack(">HH", height, width) + small[at + 9 :]


@cache
def image_corpus() -> list[tuple[str, bytes, Outcome]]:
    """Uploads that are not a readable image within limits, and one that is (1x1 pixel)."""
    jpeg = photo("obama-240p.jpg")
    png_photo = photo("lin-manuel-miranda.png")
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" '
        b'height="64"><circle cx="32" cy="32" r="30"/></svg>'
    )
    return [
        ("empty", b"", UNREADABLE),
        ("random bytes", bytes((i * 7919 + 13) % 251 for i in range(4096)), UNREADABLE),
        ("text", b"surname,passport\nERIKSSON,L898902C3\n" * 20, UNREADABLE),
        ("truncated JPEG", jpeg[: len(jpeg) // 2], UNREADABLE),
        ("JPEG without its end marker", jpeg[:-2], UNREADABLE),
        ("JPEG start marker only", b"\xff\xd8\xff", UNREADABLE),
        ("truncated PNG", png_photo[: len(png_photo) // 2], UNREADABLE),
        ("PNG signature only", b"\x89PNG\r\n\x1a\n", UNREADABLE),
        ("PNG declaring 0x0", png(0, 0, zlib.compress(b"\x00")), UNREADABLE),
        ("PNG with corrupt pixel data", png(4, 4, b"not zlib at all"), UNREADABLE),
        (
            "PNG with a bad CRC",
            png(1, 1, zlib.compress(b"\x00\x80\x80\x80"), crc_ok=False),
            UNREADABLE,
        ),
        ("PNG declaring 60000x60000", png(60_000, 60_000, zlib.compress(b"\x00" * 16)), TOO_LARGE),
        ("JPEG declaring 60000x60000", jpeg_declaring(60_000, 60_000), TOO_LARGE),
        ("GIF", pillow("GIF"), UNREADABLE),
        ("WebP", pillow("WEBP"), UNREADABLE),
        ("BMP", pillow("BMP"), UNREADABLE),
        ("TIFF", pillow("TIFF"), UNREADABLE),
        ("SVG", svg, UNREADABLE),
        ("one byte over the size limit", b"\xff\xd8\xff" + bytes(IMAGE_MAX_BYTES - 2), TOO_LARGE),
        ("1x1 pixel PNG", ONE_PIXEL_PNG, NO_FACE),
    ]


# The passport chip's files, multipart parts of crossings and enrollments (DESIGN §16).
CHIP_PARTS = frozenset({"dg1", "dg2", "sod"})


@cache
def chip_corpus() -> list[tuple[str, bytes]]:
    """Chip files no chip wrote: empty, garbage, a truncated template, an oversized one."""
    return [
        ("empty", b""),
        ("random bytes", bytes((i * 7919 + 13) % 251 for i in range(512))),
        ("truncated template", b"\x77\x82\x10\x00\x30\x82"),
        ("SQL text", SQL.encode()),
        ("over the part limit", b"\x75\x83\x05\x00\x00" + bytes(300_000)),
    ]


@dataclass(frozen=True)
class Baseline:
    """A request whose answer is known, to change one thing at a time.

    ``outcome`` None: the baseline is accepted and writes, so a change that leaves the
    request valid is not bad input there (the dedicated tests cover those routes).
    ``semantic``: the answer when a field holds a value the schema allows but the route
    cannot use (an MRZ that does not parse); ``also``: other answers that are right too
    for such a value (a name no MRZ can print is refused, another is searched for).
    ``query``: the query parameters of the baseline, each case changing one of them.
    ``variants``: more baselines of the route, changed one thing at a time as well: the
    other members of a discriminated union (told apart by their tag), another mode of a
    search. ``name`` tells a variant's cases apart.
    """

    outcome: Outcome | None
    json_body: dict[str, object] | None = None
    form: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    image: bytes | None = None
    semantic: dict[str, Outcome] = field(default_factory=dict)
    also: dict[str, tuple[Outcome, ...]] = field(default_factory=dict)
    variants: tuple["Baseline", ...] = ()
    name: str = ""

    def all(self) -> tuple["Baseline", ...]:
        return (self, *self.variants)

    def tag(self) -> str:
        return f"{self.name}: " if self.name else ""


def _visa() -> dict[str, object]:
    return {
        "person_id": str(UNKNOWN),
        "visa_type": "C",
        "issuing_state": "UTO",
        "valid_from": "2026-03-01",
        "valid_until": "2026-05-31",
        "entries": "MULT",
        "duration_of_stay_days": 30,
    }


# A name search: a name no MRZ can print (digits, symbols, another script) is refused, any
# other is looked up (and matches nobody here).
NAME_SEARCH: dict[str, tuple[Outcome, ...]] = {"surname": (INVALID,), "given_names": (INVALID,)}


def _alert(kind: str, **fields: str) -> dict[str, object]:
    return {"kind": kind, **fields}


BASELINES: dict[tuple[str, str], Baseline] = {
    # A `note` goes only with `not_duplicate_of`, which the baseline does not carry.
    ("POST", "/v1/persons"): Baseline(
        NO_FACE,
        form={"mrz": td3(number="BADIN0001")},
        image=ONE_PIXEL_PNG,
        semantic={"mrz": MRZ_INVALID, "note": INVALID},
    ),
    # By name, or by document: never both (then every field of the other mode is refused).
    ("GET", "/v1/persons"): Baseline(
        READ,
        query={"surname": "NOBODY", "given_names": "ANNA MARIA", "birth_date": "1980-01-31"},
        semantic={"document": INVALID},
        also=NAME_SEARCH,
        name="by name",
        variants=(
            Baseline(
                READ,
                query={"document": "UTO:BADIN0002"},
                semantic={
                    "document": INVALID,
                    "surname": INVALID,
                    "given_names": INVALID,
                    "birth_date": INVALID,
                },
                name="by document",
            ),
        ),
    ),
    ("GET", "/v1/persons/{person_id}"): Baseline(NOT_FOUND),
    # The MRZ and the image are read before the person is looked up; the image is optional.
    ("POST", "/v1/persons/{person_id}/documents"): Baseline(
        NO_FACE,
        form={"mrz": td3(number="BADIN0003")},
        image=ONE_PIXEL_PNG,
        semantic={"mrz": MRZ_INVALID},
        variants=(
            Baseline(
                NOT_FOUND,
                form={"mrz": td3(number="BADIN0003")},
                semantic={"mrz": MRZ_INVALID},
                name="without an image",
            ),
        ),
    ),
    ("POST", "/v1/persons/{person_id}/guardians"): Baseline(
        NOT_FOUND,
        json_body={
            "guardian_person_id": str(NOBODY),
            "relationship": "parent",
            "evidence": "birth certificate",
        },
    ),
    ("DELETE", "/v1/persons/{person_id}"): Baseline(NOT_FOUND),
    # A rectification is checked before the person is looked up: a name no MRZ can print,
    # a birth date in the future, a blank reason or a field set to null is refused.
    ("PATCH", "/v1/persons/{person_id}"): Baseline(
        NOT_FOUND,
        json_body={"reason": "misread at enrollment", "surname": "NOBODY"},
        also=dict.fromkeys(
            ("reason", "surname", "given_names", "nationality", "birth_date", "sex"), (INVALID,)
        ),
    ),
    ("GET", "/v1/persons/{person_id}/rectifications"): Baseline(NOT_FOUND),
    ("GET", "/v1/persons/{person_id}/export"): Baseline(NOT_FOUND),
    ("POST", "/v1/persons/{person_id}/captures"): Baseline(NO_FACE, image=ONE_PIXEL_PNG),
    ("POST", "/v1/identify"): Baseline(NO_FACE, form={"k": "5"}, image=ONE_PIXEL_PNG),
    ("POST", "/v1/verify"): Baseline(
        NO_FACE, form={"person_id": str(UNKNOWN)}, image=ONE_PIXEL_PNG
    ),
    ("GET", "/v1/watchlist"): Baseline(READ),
    ("POST", "/v1/watchlist"): Baseline(
        NOT_FOUND, json_body={"person_id": str(UNKNOWN), "reason": "document reported stolen"}
    ),
    ("DELETE", "/v1/watchlist/{entry_id}"): Baseline(NOT_FOUND),
    # A person alert on nobody is refused; document and name alerts are accepted and write.
    # A birth date that matches the pattern but is no day of the calendar is refused.
    ("POST", "/v1/alerts"): Baseline(
        NOT_FOUND,
        json_body=_alert("person", person_id=str(UNKNOWN), category="entry_ban", note="probe"),
        name="person",
        variants=(
            Baseline(
                None,
                json_body=_alert(
                    "document",
                    issuing_state="UTO",
                    document_number="BADIN0004",
                    category="lost_stolen_document",
                ),
                name="document",
            ),
            Baseline(
                None,
                json_body=_alert(
                    "name",
                    surname="NOBODY",
                    given_names="ANNA",
                    birth_date="1980",
                    category="wanted",
                ),
                semantic={"birth_date": INVALID},
                name="name",
            ),
        ),
    ),
    # `after` is the `next_after` of an earlier page: no text the corpus makes is one.
    ("GET", "/v1/alerts"): Baseline(READ, semantic={"after": INVALID}),
    ("DELETE", "/v1/alerts/{alert_id}"): Baseline(NOT_FOUND),
    ("GET", "/v1/dedup-overrides"): Baseline(READ),
    ("POST", "/v1/mrz/parse"): Baseline(
        READ, json_body={"mrz": td3()}, semantic={"mrz": MRZ_INVALID}
    ),
    # An issuing state is an ICAO code: a validator the schema does not show.
    ("POST", "/v1/visas"): Baseline(
        NOT_FOUND, json_body=_visa(), semantic={"issuing_state": INVALID}
    ),
    ("POST", "/v1/visas/{visa_id}/revoke"): Baseline(NOT_FOUND),
    ("POST", "/v1/crossings"): Baseline(
        None,
        form={"mrz": td3(), "direction": "entry", "border_point": "BP-1"},
        image=ONE_PIXEL_PNG,
    ),
    ("GET", "/v1/crossings"): Baseline(READ),
    # A refusal names its grounds: without them it is refused whatever the crossing.
    ("POST", "/v1/crossings/{crossing_id}/resolution"): Baseline(
        NOT_FOUND,
        json_body={"outcome": "refuse", "note": "forged visa sticker", "grounds": ["B"]},
        semantic={"grounds": INVALID},
    ),
    ("GET", "/v1/persons/{person_id}/stay"): Baseline(NOT_FOUND),
    ("GET", "/v1/overstayers"): Baseline(READ),
    ("GET", "/v1/retention/due"): Baseline(READ, query={"within_days": "90", "limit": "10"}),
    # Every parameter is checked: any text that is not a date or a known key is refused.
    ("GET", "/v1/statistics"): Baseline(
        READ,
        query={"from": "2026-01-01", "to": "2026-03-31", "group_by": "month,border_point"},
        also=dict.fromkeys(("from", "to", "group_by"), (INVALID,)),
    ),
    ("GET", "/v1/clients"): Baseline(READ),
    ("POST", "/v1/clients"): Baseline(None, json_body={"name": "bad input probe", "role": "kiosk"}),
    ("DELETE", "/v1/clients/{client_id}"): Baseline(NOT_FOUND),
    ("POST", "/v1/keys/rotate"): Baseline(None),
    ("GET", "/v1/pki"): Baseline(READ),
    ("GET", "/v1/audit/events"): Baseline(READ),
    ("GET", "/v1/audit/verify"): Baseline(READ),
    ("GET", "/v1/openapi.json"): Baseline(READ),
}


def resolve(schema: Schema) -> Schema:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = SPEC
    for key in str(ref).removeprefix("#/").split("/"):
        node = node[key]
    return resolve(node)


def unwrap(schema: Schema) -> tuple[Schema, bool]:
    """The schema of a value and whether null is allowed (``X | None`` is an anyOf)."""
    schema = resolve(schema)
    options = schema.get("anyOf")
    if options is None:
        return schema, False
    kept = [resolve(o) for o in options if o.get("type") != "null"]
    assert len(kept) == 1, f"unexpected union {schema}"
    return kept[0], len(kept) < len(options)


def is_file(schema: Schema) -> bool:
    return schema.get("format") == "binary" or "contentMediaType" in schema


def text_is_valid(value: str, schema: Schema) -> bool:
    """Whether a string (a JSON string, or any form or query value) passes ``schema``."""
    kind = schema.get("type")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value.strip()):
            return False
        number = int(value)
        return schema.get("minimum", number) <= number <= schema.get("maximum", number) and (
            "exclusiveMinimum" not in schema or number > schema["exclusiveMinimum"]
        )
    if kind != "string":
        return False
    if "const" in schema:
        return bool(value == schema["const"])
    if "enum" in schema:
        return value in schema["enum"]
    parsers: dict[str, Callable[[str], object]] = {
        "uuid": UUID,
        "date": date.fromisoformat,
        "date-time": datetime.fromisoformat,
    }
    parse = parsers.get(str(schema.get("format")))
    if parse is not None:
        try:
            parse(value)
        except ValueError:
            return False
        return schema.get("format") != "date" or bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        return False
    pattern = schema.get("pattern")
    return pattern is None or re.search(pattern, value) is not None


def string_values(
    schema: Schema, name: str = "", *, longest: int = 2_000_000
) -> list[tuple[str, str]]:
    """(label, value) of strings to try in a field or parameter ``name`` of this schema;
    ``longest`` is the size of the oversize one (a URL is limited to 64 KiB by the client)."""
    values = [
        ("SQL", SQL),
        ("path traversal", TRAVERSAL),
        ("NUL", NUL),
        ("unicode", UNICODE),
        ("whitespace", " \t\r\n"),
    ]
    fmt, kind = schema.get("format"), schema.get("type")
    if fmt == "uuid":
        values += [
            ("not a UUID", "not-a-uuid"),
            ("a number", "12345"),
            ("UUID with a bad digit", "7a1c8a3e-5b2d-4c6f-9e01-b0f1a2c3d4eg"),
            ("UUID with trailing text", f"{UNKNOWN}x"),
        ]
    elif fmt == "date" or name.endswith("_date"):
        # A date may also be a string with a pattern (`birth_date` of a name alert).
        values += [
            ("2026-02-30", "2026-02-30"),
            ("2026-13-01", "2026-13-01"),
            ("yesterday", "yesterday"),
            ("2026-02-29 (not a leap year)", "2026-02-29"),
            ("a datetime", "2026-03-01T10:00:00Z"),
        ]
    elif fmt == "date-time":
        values += [
            ("2026-02-30T10:00:00Z", "2026-02-30T10:00:00Z"),
            ("2026-13-01T00:00:00Z", "2026-13-01T00:00:00Z"),
            ("yesterday", "yesterday"),
            ("25:00", "2026-03-01T25:00:00Z"),
        ]
    elif kind == "integer":
        values += [("not a number", "abc"), ("a fraction", "1.5"), ("an exponent", "1e3")]
        if "minimum" in schema:
            values.append(("below the minimum", str(int(schema["minimum"]) - 1)))
        if "exclusiveMinimum" in schema:
            values.append(("at the exclusive minimum", str(int(schema["exclusiveMinimum"]))))
        if "maximum" in schema:
            values.append(("above the maximum", str(int(schema["maximum"]) + 1)))
    elif "enum" in schema:
        first = str(schema["enum"][0])
        values += [("not in the enum", "ZZZ-not-a-member"), ("wrong case", first.swapcase())]
    if name == "mrz":
        valid = td3()
        values += [
            ("MRZ in lowercase", valid.lower()),
            ("MRZ with unicode", valid.replace("ERIKSSON", "ÉRIKSSÖN")),
            ("MRZ with a NUL", valid.replace("L898902C3", "L898\x00902C")),
            ("MRZ with a changed check digit", valid[:-1] + str((int(valid[-1]) + 1) % 10)),
            ("MRZ of one line", valid.replace("\n", "")),
            ("MRZ of three TD3 lines", "\n".join([*valid.split("\n"), valid.split("\n")[0]])),
            ("MRZ of fillers", "\n".join(["<" * 44] * 2)),
        ]
    if "maxLength" in schema:
        values.append(("one over the maximum length", "A" * (int(schema["maxLength"]) + 1)))
    values.append((f"{longest} characters", long_text(longest)))
    return values


@cache
def oversize_body() -> bytes:
    """One shared copy of a body one byte over the limit."""
    return b" " * (BODY_MAX_BYTES + 1)


@cache
def long_text(length: int) -> str:
    """One shared copy of each oversize string: the corpus holds it in many cases."""
    return "A" * length


def fill(route: str, values: dict[str, str] | None = None) -> str:
    """``route`` with its path parameters filled: ``values`` already URL-encoded."""
    return re.sub(r"\{([^}]+)\}", lambda m: (values or {}).get(m[1], str(UNKNOWN)), route)


class Generator:
    """Builds the corpus of one route from its operation in the schema."""

    def __init__(self, method: str, route: str) -> None:
        self.method, self.route = method, route
        self.operation: Schema = SPEC["paths"][route][method.lower()]
        self.baseline = BASELINES.get((method, route))
        self.action = frozenset({ROUTE_NAMES[(method, route)]})
        self.cases: list[Case] = []
        self.left_out: list[str] = []
        self.roles = sorted(ALLOWED.get((method, route), {"admin"}))

    def next_role(self) -> str:
        """The route's allowed roles in turn, so that each is exercised."""
        return self.roles[len(self.cases) % len(self.roles)]

    def parameters(self, where: str) -> list[Schema]:
        return [p for p in self.operation.get("parameters", []) if p["in"] == where]

    def add(self, label: str, expect: Outcome | None, **request: Any) -> None:
        if expect is None:
            self.left_out.append(label)
            return
        request.setdefault("path", fill(self.route))
        self.cases.append(
            Case(
                method=self.method,
                route=self.route,
                label=label,
                expect=expect,
                actions=request.pop("actions", self.action),
                role=self.next_role(),
                **request,
            )
        )

    def baselines(self) -> tuple[Baseline, ...]:
        return self.baseline.all() if self.baseline else ()

    def baseline_request(self, base: Baseline | None = None) -> dict[str, Any]:
        """The keyword arguments of Case for the unchanged baseline request."""
        base = base or self.baseline
        assert base is not None
        request: dict[str, Any] = {}
        if base.query:
            request["query"] = urlencode(base.query, quote_via=quote)
        if base.json_body is not None:
            request["json_body"] = base.json_body
        elif base.image is not None or base.form:
            request["parts"] = self.parts(base.form, base.image)
        return request

    def file_fields(self) -> list[str]:
        body = self.body_schema("multipart/form-data")
        props = body.get("properties", {}) if body else {}
        return [n for n, s in props.items() if is_file(unwrap(s)[0])]

    def image_fields(self) -> list[str]:
        """The file fields that take a picture (the chip's files are not pictures)."""
        return [n for n in self.file_fields() if n not in CHIP_PARTS]

    def parts(
        self, form: dict[str, str], image: bytes | None, raw: dict[str, bytes] | None = None
    ) -> tuple[Part, ...]:
        out = [Part(name, value.encode()) for name, value in form.items()]
        out += [Part(name, value) for name, value in (raw or {}).items()]
        if image is not None:
            out += [Part(n, image, "capture.jpg", "image/jpeg") for n in self.image_fields()]
        return tuple(out)

    def body_schema(self, media_type: str) -> Schema | None:
        content = self.operation.get("requestBody", {}).get("content", {})
        return resolve(content[media_type]["schema"]) if media_type in content else None

    def outcome_if_valid(self, name: str, base: Baseline | None = None) -> Outcome | None:
        base = base or self.baseline
        assert base is not None
        return base.semantic.get(name, base.outcome)

    def also_if_valid(self, name: str, base: Baseline | None = None) -> tuple[Outcome, ...]:
        base = base or self.baseline
        assert base is not None
        return base.also.get(name, ())

    def generate(self) -> "Generator":
        self.methods()
        self.purposes()
        self.path_parameters()
        self.query_parameters()
        if self.body_schema("application/json") is not None:
            self.json_documents()
            self.json_fields()
        if self.body_schema("multipart/form-data") is not None:
            self.form_documents()
            self.form_fields()
            self.images()
            self.chip_files()
        self.oversize_bodies()
        return self

    def oversize_bodies(self) -> None:
        """A body one byte over BORDER_BODY_MAX_BYTES, of each type the route takes: 413
        before any of it is read (DESIGN §14)."""
        content = self.operation.get("requestBody", {}).get("content", {})
        for media_type in content:
            if media_type == "multipart/form-data":
                media_type += f"; boundary={BOUNDARY}"
            self.add(
                f"body over the size limit as {media_type.split(';')[0]}",
                BODY_TOO_LARGE,
                raw=oversize_body(),
                content_type=media_type,
            )

    def methods(self) -> None:
        served = {m.upper() for m in SPEC["paths"][self.route]}
        if self.method != min(served):
            return  # one set of cases per path
        names = frozenset(ROUTE_NAMES[(m, self.route)] for m in served)
        for method in ("PUT", "PATCH"):
            if method not in served:
                self.cases.append(
                    Case(
                        method=method,
                        route=self.route,
                        label=f"{method} is not served here",
                        path=fill(self.route),
                        expect=METHOD,
                        actions=names,
                        attributed=False,
                        role=self.next_role(),
                    )
                )

    def purposes(self) -> None:
        for label, purpose in (("SQL", SQL), ("201 characters", "a" * 201), ("NUL", "a\x00b")):
            # The purpose is checked while authenticating: the body does not matter.
            request = self.baseline_request() if self.baseline else {}
            self.add(f"X-Purpose {label}", INVALID, headers=(("X-Purpose", purpose),), **request)

    def path_parameters(self) -> None:
        request = self.baseline_request() if self.baseline else {}
        for param in self.parameters("path"):
            name = param["name"]
            values = [
                *string_values(unwrap(param["schema"])[0], longest=60_000),
                ("empty-looking", "null"),
                ("5000 characters", "7" * 5000),
            ]
            for label, value in values:
                encoded = quote(value, safe="")
                case_path = fill(self.route, {name: encoded})
                if "/" in value:
                    # An encoded slash is decoded before routing: no route matches any more.
                    self.add(
                        f"path {name} {label}",
                        NOT_FOUND,
                        path=case_path,
                        actions=frozenset({"unmatched"}),
                        attributed=False,
                        **request,
                    )
                elif text_is_valid(value, unwrap(param["schema"])[0]):
                    raise AssertionError(f"{value!r} is a valid {name}")
                else:
                    self.add(f"path {name} {label}", INVALID, path=case_path, **request)
            both = f"{TRAVERSAL}/{SQL}"
            self.add(
                f"path {name} traversal and SQL",
                NOT_FOUND,
                path=fill(self.route, {name: quote(both, safe="")}),
                actions=frozenset({"unmatched"}),
                attributed=False,
                **request,
            )

    def query_parameters(self) -> None:
        params = self.parameters("query")
        if not params:
            return
        assert self.baseline is not None, f"{self.method} {self.route} needs a baseline"
        for base in self.baselines():
            self.query_parameters_of(params, base)

    def query_parameters_of(self, params: list[Schema], base: Baseline) -> None:
        request = {k: v for k, v in self.baseline_request(base).items() if k != "query"}
        tag = base.tag()
        for param in params:
            name, schema = param["name"], unwrap(param["schema"])[0]
            others = urlencode({k: v for k, v in base.query.items() if k != name}, quote_via=quote)
            if param.get("required"):
                self.add(f"{tag}query {name} missing", INVALID, query=others, **request)
            for label, value in [
                *string_values(schema, name, longest=60_000),
                ("invalid UTF-8", "\udcff\udcfe"),
            ]:
                if label == "invalid UTF-8":
                    changed = f"{name}=%FF%FE"
                    valid = text_is_valid("\ufffd\ufffd", schema)
                else:
                    changed = urlencode({name: value}, quote_via=quote)
                    valid = text_is_valid(value, schema)
                expect = self.outcome_if_valid(name, base) if valid else INVALID
                also = self.also_if_valid(name, base) if valid else ()
                if valid and label == "NUL" and INVALID not in also:
                    also += (INVALID,)
                self.add(
                    f"{tag}query {name} {label}",
                    expect,
                    query="&".join(q for q in (others, changed) if q),
                    also=also,
                    **request,
                )
        self.add(
            f"{tag}unknown query parameter",
            base.outcome,
            query=urlencode({**base.query, "is_admin": "true"}, quote_via=quote),
            **request,
        )

    def json_documents(self) -> None:
        documents: list[tuple[str, bytes, str | None, str | None]] = [
            ("empty body", b"", "application/json", None),
            ("truncated JSON", b'{"person_id": ', "application/json", None),
            ("unclosed object", b"{", "application/json", None),
            ("single quotes", b"{'mrz': 'P<UTO'}", "application/json", None),
            ("trailing comma", b'{"a": 1,}', "application/json", None),
            ("NaN", b"NaN", "application/json", None),
            ("a bare NUL", b"\x00", "application/json", None),
            ("a JSON array", b"[]", "application/json", None),
            ("a JSON string", b'"text"', "application/json", None),
            ("a JSON number", b"1", "application/json", None),
            ("JSON null", b"null", "application/json", None),
            ("invalid UTF-8", b'{"mrz": "\xff\xfe"}', "application/json", None),
            ("100000 nested arrays", b"[" * 100_000, "application/json", None),
            ("no content type", json.dumps(self.baseline_json()).encode(), None, None),
            ("as text/plain", json.dumps(self.baseline_json()).encode(), "text/plain", None),
            ("as a form", b"person_id=1&reason=x", "application/x-www-form-urlencoded", None),
            (
                "5000 unknown fields",
                json.dumps({f"k{i}": i for i in range(5000)}).encode(),
                "application/json",
                None,
            ),
        ]
        for label, raw, content_type, bug in documents:
            self.add(f"body {label}", INVALID, raw=raw, content_type=content_type, bug=bug)

    def baseline_json(self) -> dict[str, object]:
        hint = f"{self.method} {self.route} takes a JSON body: give it a baseline in BASELINES"
        assert self.baseline is not None, hint
        assert self.baseline.json_body is not None, hint
        return self.baseline.json_body

    def json_fields(self) -> None:
        body = self.body_schema("application/json")
        assert body is not None
        self.baseline_json()
        for member in members(body):
            self.json_fields_of(member, self.baseline_of(body, member))

    def baseline_of(self, body: Schema, member: Schema) -> Baseline:
        """The baseline of one member of a discriminated union: the one carrying its tag."""
        if "oneOf" not in body:
            assert self.baseline is not None
            return self.baseline
        tag = body["discriminator"]["propertyName"]
        value = member["properties"][tag]["const"]
        found = [b for b in self.baselines() if (b.json_body or {}).get(tag) == value]
        assert len(found) == 1, f"{self.method} {self.route}: give {tag}={value} a baseline"
        return found[0]

    def json_fields_of(self, body: Schema, baseline: Baseline) -> None:
        assert baseline.json_body is not None
        base, tag = baseline.json_body, baseline.tag()
        required = set(body.get("required", []))
        for name, raw_schema in body.get("properties", {}).items():
            schema, nullable = unwrap(raw_schema)
            others = {k: v for k, v in base.items() if k != name}
            if name in required:
                self.add(f"{tag}field {name} missing", INVALID, json_body=others)
            # Null is a value only of a field that may be null (one with a default may not).
            self.add(
                f"{tag}field {name} null",
                self.outcome_if_valid(name, baseline) if nullable else INVALID,
                json_body={**others, name: None},
                also=self.also_if_valid(name, baseline) if nullable else (),
            )
            wrong: list[tuple[str, object]] = [("a list", [SQL]), ("an object", {"$ne": 1})]
            if schema.get("type") == "integer":
                wrong += [("a string", "abc"), ("a fraction", 1.5), ("a huge number", 10**40)]
            else:
                wrong += [("a number", 12345), ("a fraction", 1.5), ("a boolean", True)]
            for label, value in wrong:
                if label == "a huge number" and "maximum" not in schema:
                    continue  # the span checks of the route decide; see the dedicated tests
                self.add(f"{tag}field {name} {label}", INVALID, json_body={**others, name: value})
            if schema.get("type") != "string":
                continue
            for label, value in string_values(schema, name):
                valid = text_is_valid(value, schema)
                self.add(
                    f"{tag}field {name} {label}",
                    self.outcome_if_valid(name, baseline) if valid else INVALID,
                    json_body={**others, name: value},
                    also=self.also_if_valid(name, baseline) if valid else (),
                )
            raw = json.dumps({**others, name: "@@@"}).encode().replace(b"@@@", b"\xc3\x28\xff")
            self.add(
                f"{tag}field {name} invalid UTF-8",
                INVALID,
                raw=raw,
                content_type="application/json",
            )
        extra = INVALID if body.get("additionalProperties") is False else baseline.outcome
        self.add(f"{tag}unknown field", extra, json_body={**base, "is_admin": True})
        self.add(f"{tag}unknown field named SQL", extra, json_body={**base, SQL: 1})

    def baseline_outcome(self) -> Outcome | None:
        return self.baseline.outcome if self.baseline else None

    def form_documents(self) -> None:
        base = self.baseline
        assert base is not None, f"{self.method} {self.route} takes a form: give it a baseline"
        documents: list[tuple[str, bytes, str, str | None]] = [
            (
                "multipart without a boundary",
                b"abc",
                "multipart/form-data",
                None,
            ),
            (
                "multipart garbage",
                b"--x\r\ngarbage",
                f"multipart/form-data; boundary={BOUNDARY}",
                None,
            ),
            ("JSON instead of a form", json.dumps(base.form).encode(), "application/json", None),
        ]
        for label, raw, content_type, bug in documents:
            self.add(f"body {label}", INVALID, raw=raw, content_type=content_type, bug=bug)
        # A form reads urlencoded fields too: refused for the missing upload, unless every
        # upload is optional (then the request is the baseline's without an image).
        body = self.body_schema("multipart/form-data")
        assert body is not None
        uploads = set(self.file_fields()) & set(body.get("required", []))
        plain = [b for b in self.baselines() if b.image is None]
        assert uploads or plain, f"{self.method} {self.route}: give a baseline without an image"
        self.add(
            "body urlencoded instead of multipart",
            INVALID if uploads else plain[0].outcome,
            raw=urlencode(base.form if uploads else plain[0].form).encode(),
            content_type="application/x-www-form-urlencoded",
        )
        self.add(
            "body a field given twice",
            self.baseline_outcome(),
            parts=self.parts(base.form, base.image) + self.parts(base.form, None),
        )
        self.add(
            "body unknown field",
            self.baseline_outcome(),
            parts=self.parts({**base.form, "is_admin": "true"}, base.image),
        )

    def form_fields(self) -> None:
        assert self.baseline is not None
        for base in self.baselines():
            self.form_fields_of(base)

    def form_fields_of(self, base: Baseline) -> None:
        body = self.body_schema("multipart/form-data")
        assert body is not None
        required, tag = set(body.get("required", [])), base.tag()
        for name, raw_schema in body.get("properties", {}).items():
            schema, _ = unwrap(raw_schema)
            others = {k: v for k, v in base.form.items() if k != name}
            if is_file(schema):
                continue
            if name in required:
                self.add(f"{tag}form {name} missing", INVALID, parts=self.parts(others, base.image))
                self.add(
                    f"{tag}form {name} empty",
                    INVALID,
                    parts=self.parts({**others, name: ""}, base.image),
                )
            for label, value in string_values(schema, name):
                valid = text_is_valid(value, schema)
                self.add(
                    f"{tag}form {name} {label}",
                    self.outcome_if_valid(name, base) if valid else INVALID,
                    parts=self.parts({**others, name: value}, base.image),
                    also=self.also_if_valid(name, base) if valid else (),
                )
            self.add(
                f"{tag}form {name} invalid UTF-8",
                self.outcome_if_valid(name, base) if text_is_valid("\ufffd(", schema) else INVALID,
                parts=self.parts(others, base.image, {name: b"\xc3\x28\xff\xfe"}),
            )
            if schema.get("format") == "date-time":
                self.datetimes(name, others, base)

    def datetimes(self, name: str, others: dict[str, str], base: Baseline) -> None:
        """`at` of a crossing: with a zone, not in the future (DESIGN §5)."""
        for label, value, bug in (
            ("without a zone", "2026-03-01T10:00:00", None),
            ("a date only", "2026-03-01", None),
            ("in the future", "2999-01-01T00:00:00Z", None),
            ("before year 1 in UTC", "0001-01-01T00:00:00+01:00", None),
            ("a Unix timestamp", "1700000000", None),
        ):
            self.add(
                f"{base.tag()}form {name} {label}",
                INVALID,
                parts=self.parts({**others, name: value}, base.image),
                bug=bug,
            )

    def chip_files(self) -> None:
        """The passport chip's files (DESIGN §16) in any state: never a refused request. A
        chip fault is the traveller's outcome (a crossing decided with CHIP_INVALID), and
        at enrollment the live image is judged before the chip: the baseline's answer."""
        base = self.baseline
        assert base is not None
        for name in [n for n in self.file_fields() if n in CHIP_PARTS]:
            others = {k: v for k, v in base.form.items() if k != name}
            for label, data in chip_corpus():
                self.add(
                    f"chip {name} {label}",
                    base.outcome,
                    parts=(*self.parts(others, base.image), Part(name, data, name)),
                )

    def images(self) -> None:
        base = self.baseline
        assert base is not None
        for name in self.image_fields():
            others = {k: v for k, v in base.form.items() if k != name}
            self.add(
                f"form {name} sent as text", INVALID, parts=self.parts({**others, name: "x"}, None)
            )
            for label, data, outcome in image_corpus():
                expect = outcome if outcome != NO_FACE else base.outcome
                self.add(f"image {label}", expect, parts=self.parts(others, data))
            self.add(
                "image 1x1 PNG declared as a GIF",
                base.outcome,
                parts=(
                    *self.parts(others, None),
                    Part(name, ONE_PIXEL_PNG, "capture.gif", "image/gif"),
                ),
            )


def members(body: Schema) -> list[Schema]:
    """The object schemas a JSON body may be: each member of a union, or the body itself."""
    return [resolve(m) for m in body["oneOf"]] if "oneOf" in body else [body]


def corpus() -> tuple[list[Case], dict[str, list[str]]]:
    cases, left_out = [], {}
    for method, route in ROUTES:
        generated = Generator(method, route).generate()
        cases += generated.cases
        left_out[f"{method} {route}"] = generated.left_out
    # The one traversal that is not encoded: the client itself resolves the dot segments.
    cases.append(
        Case(
            method="GET",
            route="/v1/persons/{person_id}",
            label="unencoded traversal",
            path="/v1/persons/../../etc/passwd",
            expect=NOT_FOUND,
            actions=frozenset({"unmatched"}),
            attributed=False,
            role="officer",
        )
    )
    return cases, left_out


CASES, LEFT_OUT = corpus()


def params() -> list[Any]:
    out = []
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@dataclass
class Env:
    client: TestClient
    headers: dict[str, dict[str, str]]
    actors: dict[str, str]

    def audit_seq(self) -> int:
        with runtime_of(self.client).pool.connection() as conn:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_events").fetchone()
        assert row is not None
        return int(row[0])

    def audit_after(self, seq: int) -> list[tuple[str, str, str, str | None]]:
        with runtime_of(self.client).pool.connection() as conn:
            rows = conn.execute(
                "SELECT actor, action, outcome, role FROM audit_events WHERE seq > %(seq)s"
                " ORDER BY seq",
                {"seq": seq},
            ).fetchall()
        return [(str(a), str(b), str(c), None if d is None else str(d)) for a, b, c, d in rows]

    def snapshot(self) -> dict[str, tuple[int, str]]:
        """Row count and a digest of every domain table's content, and the galleries' sizes."""
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL(
                "SELECT {name}, count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY"
                " t::text)), '') FROM {table} t"
            ).format(name=sql.Literal(table), table=sql.Identifier(table))
            for table in DOMAIN_TABLES
        )
        with runtime_of(self.client).pool.connection() as conn:
            rows = conn.execute(query).fetchall()
        state = {str(name): (int(count), str(digest)) for name, count, digest in rows}
        galleries = self.client.app_state["bio"].galleries
        state["galleries"] = (len(galleries.enrolled), f"watchlist {len(galleries.watchlist)}")
        return state

    def send(self, case: Case, role: str) -> Response:
        body, content_type = case.body()
        headers = {**self.headers[role], **dict(case.headers)}
        if content_type is not None:
            headers["content-type"] = content_type
        url = case.path + (f"?{case.query}" if case.query else "")
        response: Response = self.client.request(case.method, url, content=body, headers=headers)
        return response


def database(admin_url: str) -> tuple[str, str]:
    """A new database cloned from the migrated template: (its name, its URL as the
    service's role, as in production, so the corpus also proves its grants suffice)."""
    name = f"t_{uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE), sql.Identifier(db.OWNER_ROLE)
            )
        )
    return name, as_role(admin_url.replace("/postgres?", f"/{name}?"), db.APP_ROLE)


def drop(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def module_settings(data_dir: Path, url: str) -> Settings:
    """Settings of the defaults, whatever BORDER_* variables the developer has set."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("BORDER_")]:
            patch.delenv(name)
        return Settings(data_dir=data_dir, database_url=SecretStr(url), pool_min_size=1)


@pytest.fixture(scope="module")
def env(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory, face_model: FaceModel
) -> Iterator[Env]:
    name, url = database(pg_admin_url)
    try:
        settings = module_settings(tmp_path_factory.mktemp("bad-input"), url)
        with TestClient(create_app(settings, face_model), raise_server_exceptions=False) as client:
            rt = runtime_of(client)
            # A kiosk key must name its border point: the one the crossing baseline gives.
            keys = {role: new_key(rt, role, "BP-1" if role == "kiosk" else None) for role in ROLES}
            with rt.pool.connection() as conn:
                ids: dict[str, str] = dict(
                    conn.execute("SELECT role, id::text FROM api_clients").fetchall()
                )
            yield Env(
                client=client,
                headers={r: {"Authorization": f"Bearer {k}"} for r, k in keys.items()},
                actors={str(r): str(i) for r, i in ids.items()},
            )
    finally:
        drop(pg_admin_url, name)


def refusal_problems(response: Response, code: str) -> list[str]:
    problems = []
    if response.headers.get("content-type", "").split(";")[0] != "application/json":
        problems.append(f"content-type {response.headers.get('content-type')}")
        return problems
    body = response.json()
    if not isinstance(body, dict) or not {"error", "detail"} <= body.keys():
        return [f"body is not {{error, detail, ...}}: {str(body)[:300]}"]
    if body["error"] != code:
        problems.append(f"error {body['error']!r}, expected {code!r}")
    if not isinstance(body["detail"], str) or not body["detail"]:
        problems.append("detail is not a non-empty string")
    if code == "mrz_invalid" and not {"field", "reason"} <= body.keys():
        problems.append("an mrz_invalid refusal names no field and reason")
    if code == "image_too_large" and not {"limit_bytes", "limit_pixels"} & body.keys():
        problems.append("an image_too_large refusal states no limit")
    if code == "body_too_large" and body.get("limit_bytes") != BODY_MAX_BYTES:
        problems.append("a body_too_large refusal states no limit")
    return problems


def leak_problems(response: Response) -> list[str]:
    text = response.text
    problems = [f"echoes {c!r}" for c in CANARIES if c in text]
    if "Traceback" in text or 'File "' in text:
        problems.append("holds a stack trace")
    return problems


@pytest.mark.parametrize("case", params())
def test_bad_input_is_refused_and_changes_nothing(env: Env, case: Case) -> None:
    """A 4xx with its code and an {error, detail} body that leaks nothing (or, for a read
    that accepts the value, a 200); the service up; no domain table or gallery changed; one
    audit event, of the route, with that code, naming the caller."""
    role = case.role
    before, seq = env.snapshot(), env.audit_seq()

    response = env.send(case, role)

    where = f"{case.id} as {role} -> {response.status_code} {response.text[:400]}"
    answers = [o for o in (case.expect, *case.also) if o.status == response.status_code]
    assert answers, f"{where}: expected {case.expect.status}"
    expected = answers[0]
    problems = leak_problems(response)
    if expected.code != "ok":
        problems += refusal_problems(response, expected.code)
    assert not problems, f"{where}: {problems}"
    assert env.client.get("/health").json() == {"status": "ok"}, f"{where}: service down"
    assert env.snapshot() == before, f"{where}: a domain table or gallery changed"
    events = env.audit_after(seq)
    if not case.path.startswith("/v1/"):
        # No key is checked outside /v1: the caller is anonymous, counted in its address's
        # one event a minute (written now if it is the first of its minute).
        assert len(events) <= 1, f"{where}: {len(events)} audit events {events}"
        assert [(a, r) for a, _, _, r in events] in ([], [("anonymous", None)]), where
        if not events:
            return
    assert len(events) == 1, f"{where}: {len(events)} audit events {events}"
    actor, action, outcome, event_role = events[0]
    assert word(action) in case.actions, f"{where}: audited as {action}, not {case.actions}"
    assert outcome == expected.code, f"{where}: audited outcome {outcome}"
    if case.attributed:
        assert (actor, event_role) == (env.actors[role], role), f"{where}: audited as {actor}"


def test_every_route_has_a_corpus() -> None:
    """New routes are covered from the schema; one with a body must get a baseline."""
    covered = {(c.method, c.route) for c in CASES}
    assert [r for r in ROUTES if r not in covered] == []
    assert [r for r in ROUTES if r not in BASELINES] == [], "add a baseline for these routes"
    assert len(CASES) > 20 * len(ROUTES)
    # Only changes that leave an accepted, writing request valid are left out.
    dropped = {key for key, labels in LEFT_OUT.items() if labels}
    writing = {
        f"{m} {r}" for (m, r), b in BASELINES.items() if None in [v.outcome for v in b.all()]
    }
    assert dropped <= writing


def test_every_json_body_refuses_unknown_fields() -> None:
    """A typo in a field name ('valid_untill') must not be silently dropped."""
    lax = []
    for method, route in ROUTES:
        generator = Generator(method, route)
        body = generator.body_schema("application/json")
        for member in members(body) if body is not None else []:
            if member.get("additionalProperties") is not False:
                lax.append(f"{method} {route} {member.get('title', '')}")
    assert lax == []


def one_crossing(env: Env, mrz: str, image: bytes) -> Response:
    """A kiosk crossing, referred and tied to nobody, that must write one crossing, the key
    of its own its live capture is sealed with (DESIGN §11), and its audit event, nothing
    else."""
    parts = (
        Part("mrz", mrz.encode()),
        Part("direction", b"entry"),
        Part("border_point", b"BP-1"),
        Part("image", image, "live.jpg", "image/jpeg"),
    )
    case = Case(method="POST", route="/v1/crossings", label="", path="/v1/crossings", parts=parts)
    before, seq = env.snapshot(), env.audit_seq()
    response = env.send(case, "kiosk")
    after = env.snapshot()
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert set(changed) == {"crossings", "data_keys"}, (
        f"{response.text[:300]}: changed {sorted(changed)}"
    )
    assert after["crossings"][0] == before["crossings"][0] + 1
    assert after["data_keys"][0] == before["data_keys"][0] + 1
    events = env.audit_after(seq)
    assert [(a, o) for _, a, o, _ in events] == [("crossings.create", "ok")]
    return response


def test_a_readable_image_without_a_face_at_a_crossing_is_a_referral(env: Env) -> None:
    """DESIGN §5: the traveller's outcome, not a device fault."""
    response = one_crossing(env, td3(number="NOFACE001"), ONE_PIXEL_PNG)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision"] == "refer"
    assert "FACE_NOT_DETECTED" in [r["code"] for r in body["reasons"]]


@pytest.mark.parametrize(
    "mrz",
    [
        pytest.param(td3().lower(), id="lowercase"),
        pytest.param(td3().replace("ERIKSSON", "ÉRIKSSÖN"), id="unicode"),
        pytest.param(td3().replace("L898902C3", "L898\x00902C"), id="NUL"),
        pytest.param(SQL, id="SQL"),
        pytest.param(TRAVERSAL, id="path traversal"),
        pytest.param("\n".join(["<" * 44] * 2), id="fillers only"),
        pytest.param("\n".join([td3()] * 3), id="six lines"),
        pytest.param("A" * 400, id="400 characters"),
    ],
)
def test_a_bad_mrz_at_a_crossing_is_a_referral(env: Env, mrz: str) -> None:
    """An unreadable document is MRZ_INVALID, a reason among others, never a 4xx or 5xx."""
    response = one_crossing(env, mrz, ONE_PIXEL_PNG)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision"] == "refer"
    assert set(body) == {"crossing_id", "decision", "reasons"}  # the kiosk's answer only
    assert {"MRZ_INVALID", "FACE_NOT_DETECTED"} <= {r["code"] for r in body["reasons"]}
    assert leak_problems(response) == []


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        pytest.param(b'{"mrz": "\xff"}', "application/json", id="invalid UTF-8 JSON"),
        pytest.param(b"[" * 100_000, "application/json", id="deeply nested JSON"),
        pytest.param(b"abc", "multipart/form-data", id="multipart without boundary"),
    ],
)
def test_a_body_that_does_not_parse_still_needs_a_key_and_a_role(
    env: Env, raw: bytes, content_type: str
) -> None:
    """Like a malformed body (tests/test_roles.py): 401 without a key, 403 for a wrong role."""
    path = "/v1/identify" if content_type.startswith("multipart") else "/v1/mrz/parse"
    anonymous = env.client.post(path, content=raw, headers={"content-type": content_type})
    wrong_role = env.client.post(
        path, content=raw, headers={**env.headers["auditor"], "content-type": content_type}
    )
    assert (anonymous.status_code, wrong_role.status_code) == (401, 403)


def test_the_audit_chain_verifies_after_the_corpus(env: Env) -> None:
    """Runs after the corpus (file order): every event it added was chained properly."""
    with runtime_of(env.client).pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    assert row is not None
    response = env.client.get("/v1/audit/verify", headers=env.headers["auditor"])
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["ok"] is True, verdict
    assert verdict["first_bad_seq"] is None
    assert verdict["events"] == row[0]


Headers = dict[str, dict[str, str]]


def face_crossing(client: TestClient, headers: Headers, mrz: str) -> Response:
    """An entry with a live face of the traveller enrolled by ``enroll``."""
    response: Response = client.post(
        "/v1/crossings",
        headers=headers["kiosk"],
        files={"image": ("live.jpg", photo("obama2.jpg"), "image/jpeg")},
        data={"mrz": mrz, "direction": "entry", "border_point": "BP-1"},
    )
    return response


def test_free_text_is_stored_verbatim_not_executed(client: TestClient, headers: Headers) -> None:
    """SQL and NUL in fields that take any text are data: stored, read back, and harmless."""
    person = enroll(client, headers["consular"])
    for reason in (SQL, NUL, TRAVERSAL, UNICODE):
        response = client.post(
            "/v1/watchlist",
            headers=headers["officer"],
            json={"person_id": str(person), "reason": reason},
        )
        assert response.status_code == 201, response.text
    listed = client.get("/v1/watchlist", headers=headers["officer"]).json()
    assert sorted(e["reason"] for e in listed) == sorted((SQL, NUL, TRAVERSAL, UNICODE))
    assert client.get(f"/v1/persons/{person}", headers=headers["officer"]).status_code == 200
    verdict = client.get("/v1/audit/verify", headers=headers["auditor"]).json()
    assert verdict["ok"] is True


def test_stay_on_the_first_days_of_the_calendar(client: TestClient, headers: Headers) -> None:
    person = enroll(client, headers["consular"])
    response = client.get(
        f"/v1/persons/{person}/stay", params={"on": "0001-01-01"}, headers=headers["consular"]
    )
    assert response.status_code in (200, 422), response.text


def test_a_crossing_dated_in_year_one(client: TestClient, headers: Headers) -> None:
    response = client.post(
        "/v1/crossings",
        headers=headers["kiosk"],
        files={"image": ("live.png", ONE_PIXEL_PNG, "image/png")},
        data={
            "mrz": td3(nationality="GBR", number="YEARONE01"),
            "direction": "entry",
            "border_point": "BP-1",
            "at": "0001-01-01T00:00:00Z",
        },
    )
    assert response.status_code < 500, response.text


def test_a_visa_whose_stay_ends_after_year_9999(client: TestClient, headers: Headers) -> None:
    mrz = td3(nationality="FRA", number="LONGVISA1")
    person = enroll(client, headers["consular"], mrz=mrz)
    visa = client.post(
        "/v1/visas",
        headers=headers["consular"],
        json={
            **_visa(),
            "person_id": str(person),
            "visa_type": "D",
            "valid_from": "0001-01-01",
            "valid_until": "9999-12-31",
            "duration_of_stay_days": 3_000_000,
        },
    )
    if visa.status_code == 422:
        return
    assert visa.status_code == 201, visa.text
    crossing = face_crossing(client, headers, mrz)
    assert crossing.status_code == 201, crossing.text
