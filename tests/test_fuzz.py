"""Property-based fuzzing, bounded by example counts (never by time):

- schemathesis drives every operation of the app's OpenAPI schema in-process through its
  ASGI transport, with a key of a role allowed on the operation, in both its positive
  (schema-valid) and negative (schema-violating) modes, and a seeded mode (positive cases
  whose ids, MRZ and image are stored ones, so generated values reach the use cases): never
  a 5xx, and a 2xx body that
  conforms to the documented response schema. Other statuses are not checked against the
  schema: the app documents only its successful responses (FastAPI's generated 422 schema
  is not the service's ``{error, detail}`` body; the bad-input corpus checks those);
- hypothesis on ``visa.mrz.parse_mrz`` with MRZ-shaped edits of valid documents: only
  MRZError, with a documented field and reason (tests/visa/test_mrz.py already covers
  arbitrary text, well-shaped noise and one changed character);
- hypothesis on ``enrollment.intake.decode`` with arbitrary bytes and with mutated real
  JPEGs and PNGs: only ImageUnreadable or ImageTooLarge, or an 8-bit RGB image.
"""

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, Literal, cast, get_args

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import response_schema_conformance

from border.app import create_app
from border.schema import migration_dirs
from core.auth import ROLES
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture
from enrollment.intake import ImageTooLarge, ImageUnreadable, Limits, decode
from enrollment.templates import FaceModel
from tests.conftest import new_key
from tests.factories import photo, td3
from tests.test_bad_input import (
    ONE_PIXEL_PNG,
    SPEC,
    database,
    drop,
    module_settings,
)
from tests.test_roles import ALLOWED
from tests.visa.test_mrz import SPECIMENS
from visa import mrz

# Examples per operation and mode (positive, negative, seeded): about 60 x 15 requests.
API_EXAMPLES = 15
FUZZ = settings(
    max_examples=API_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its case
    suppress_health_check=list(HealthCheck),
)
OPERATIONS = sorted(
    (method.upper(), path) for path, operations in SPEC["paths"].items() for method in operations
)
Mode = Literal["positive", "negative", "seeded"]
# Seeded: positive cases whose ids, MRZ and image are replaced by stored ones, so that the
# generated values reach the use cases (a random UUID is a 404, random bytes no image).
SEEDED_FIELDS = {"person_id", "visa_id", "crossing_id", "entry_id", "mrz", "image"}
# Erasing the seeded person or revoking a key would change what the other operations see.
NOT_SEEDED = {("DELETE", "/v1/persons/{person_id}"), ("DELETE", "/v1/clients/{client_id}")}


def input_names(method: str, path: str) -> set[str]:
    operation = SPEC["paths"][path][method.lower()]
    names = {p["name"] for p in operation.get("parameters", [])}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        schema = content["schema"]
        # A discriminated union (the alerts' kinds) lists its models under oneOf.
        for option in schema.get("oneOf", [schema]):
            ref = option.get("$ref", "")
            names |= set(SPEC["components"]["schemas"][ref.split("/")[-1]]["properties"])
    return names


def operation_params() -> list[Any]:
    params: list[Any] = []
    for method, path in OPERATIONS:
        names = input_names(method, path)
        modes: list[Mode] = ["positive", "negative"] if names else ["positive"]
        if names & SEEDED_FIELDS and (method, path) not in NOT_SEEDED:
            modes.append("seeded")
        params += [pytest.param(method, path, mode, id=f"{method} {path} {mode}") for mode in modes]
    return params


@dataclass
class Api:
    schema: schemathesis.BaseSchema
    session: asgi.ASGIClient
    keys: dict[str, str]
    seeds: dict[str, object]

    def headers(self, method: str, path: str) -> dict[str, str]:
        """A key of a role allowed on the operation (none for /health and /metrics)."""
        roles = sorted(ALLOWED.get((method, path), set()))
        return {"Authorization": f"Bearer {self.keys[roles[0]]}"} if roles else {}


@pytest.fixture(scope="module")
def api(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory, face_model: FaceModel
) -> Iterator[Api]:
    name, url = database(pg_admin_url)
    try:
        service_settings = module_settings(tmp_path_factory.mktemp("fuzz"), url)
        rt = Runtime.start(service_settings, migration_dirs())
        try:
            # A kiosk key names its border point (DESIGN §14).
            keys = {role: new_key(rt, role, "BP-1" if role == "kiosk" else None) for role in ROLES}
        finally:
            rt.close()
        app = create_app(service_settings, face_model)
        schema = schemathesis.openapi.from_dict(app.openapi())
        schema.app = app
        try:
            with asgi.get_client(cast(asgi.ASGIApp, app)) as session:
                seeded = Api(schema=schema, session=session, keys=keys, seeds={})
                seeded.seeds = stored_resources(seeded)
                yield seeded
        finally:
            asgi.shutdown_lifespans()
    finally:
        drop(pg_admin_url, name)


def stored_resources(api: Api) -> dict[str, object]:
    """A person (visa required) with a capture, a visa, a referred crossing and a watchlist
    entry, stored through the API: the values seeded cases carry."""
    mrz_text = td3(nationality="FRA", number="FUZZ00001")
    face = photo("obama-480p.jpg")

    def created(response: requests.Response, key: str) -> str:
        assert response.status_code in (200, 201), response.text
        return str(response.json()[key])

    person = created(
        api.session.post(
            "/v1/persons",
            headers=api.headers("POST", "/v1/persons"),
            files={"image": ("face.jpg", face, "image/jpeg")},
            data={"mrz": mrz_text},
        ),
        "person_id",
    )
    visa: dict[str, str | int] = {
        "person_id": person,
        "visa_type": "C",
        "issuing_state": "UTO",
        "valid_from": date.today().isoformat(),
        "valid_until": date.today().replace(year=date.today().year + 1).isoformat(),
        "entries": "MULT",
        "duration_of_stay_days": 90,
    }
    visa_id = created(
        api.session.post("/v1/visas", headers=api.headers("POST", "/v1/visas"), json=visa),
        "visa_id",
    )
    crossing = created(
        api.session.post(
            "/v1/crossings",
            headers=api.headers("POST", "/v1/crossings"),
            files={"image": ("live.png", ONE_PIXEL_PNG, "image/png")},
            data={"mrz": mrz_text, "direction": "entry", "border_point": "BP-1"},
        ),
        "crossing_id",
    )
    entry = created(
        api.session.post(
            "/v1/watchlist",
            headers=api.headers("POST", "/v1/watchlist"),
            json={"person_id": person, "reason": "fuzzing"},
        ),
        "entry_id",
    )
    return {
        "person_id": person,
        "visa_id": visa_id,
        "crossing_id": crossing,
        "entry_id": entry,
        "mrz": mrz_text,
        "image": face,
    }


def seed(case: schemathesis.Case[Any], seeds: dict[str, object]) -> None:
    """Replace generated ids, MRZ and image, wherever they are, by stored ones."""
    containers = [case.path_parameters, case.query, case.body]
    for container in containers:
        if isinstance(container, dict):
            values = cast(dict[str, object], container)
            for name in set(values) & set(seeds):
                if values[name] is not None:
                    values[name] = seeds[name]


@pytest.mark.parametrize(("method", "path", "mode"), operation_params())
def test_the_api_never_fails_and_answers_as_documented(
    api: Api, method: str, path: str, mode: Mode
) -> None:
    operation = api.schema[path][method]
    headers = api.headers(method, path)

    generation = schemathesis.GenerationMode("negative" if mode == "negative" else "positive")

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=generation))
    def run(case: schemathesis.Case[Any]) -> None:
        if mode == "seeded":
            seed(case, api.seeds)
        response = case.call(session=api.session, headers=headers)
        checks: list[schemathesis.CheckFunction] = [not_a_server_error]
        if 200 <= response.status_code < 300:
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks, headers=headers)

    run()


def test_the_audit_chain_verifies_after_the_fuzzing(api: Api) -> None:
    """Runs after the operations above (file order)."""
    response = api.session.get("/v1/audit/verify", headers=api.headers("GET", "/v1/audit/verify"))
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert (verdict["ok"], verdict["first_bad_seq"]) == (True, None), verdict
    assert verdict["events"] > 0


FIELDS = set(get_args(mrz.Field))
REASONS = set(get_args(mrz.Reason))
SPECIMEN_TODAY = date(2026, 1, 1)
NOISE = st.sampled_from(
    [
        *"ABCXYZ0189<",
        *"abz",
        " ",
        "\t",
        "\r",
        "\n",
        "\r\n",
        "\x00",
        "É",
        "ß",
        "\uff10",
        "\u200b",
        "«",
    ]
)


@st.composite
def edited_mrz(draw: st.DrawFn) -> str:
    """A valid MRZ of any format (the ICAO specimens, and TD3s with an unknown birth date
    and a personal number) with a few lines or characters changed."""
    documents = [
        *SPECIMENS.values(),
        td3(birth_date=None, sex="<", personal_number="ZE184226B"),
        td3(surname="O<NEILL", given_names="", number="X1"),
    ]
    lines = draw(st.sampled_from(documents)).splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        edit = draw(st.sampled_from(["replace", "insert", "delete", "line", "case"]))
        row = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        at = draw(st.integers(min_value=0, max_value=max(0, len(lines[row]) - 1)))
        text = lines[row]
        if edit == "replace":
            lines[row] = text[:at] + draw(NOISE) + text[at + 1 :]
        elif edit == "insert":
            lines[row] = text[:at] + draw(NOISE) + text[at:]
        elif edit == "delete":
            lines[row] = text[:at] + text[at + 1 :]
        elif edit == "case":
            lines[row] = text.lower()
        elif draw(st.booleans()):
            lines.insert(row, lines[row])
        elif len(lines) > 1:
            del lines[row]
    return draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"])).join(lines)


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(text=edited_mrz())
def test_parse_mrz_of_an_edited_document_raises_only_mrz_error(text: str) -> None:
    result = parse_or_error(text)
    if isinstance(result, mrz.MRZError):
        assert result.field in FIELDS, result.field
        assert result.reason in REASONS, result.reason
    else:
        assert result.format in get_args(mrz.Format)
        assert result.sex in ("M", "F", "X")


def parse_or_error(text: str) -> mrz.MRZ | mrz.MRZError:
    """The parsed MRZ or its MRZError; any other exception propagates and fails."""
    try:
        return mrz.parse_mrz(text, today=SPECIMEN_TODAY)
    except mrz.MRZError as error:
        return error


LIMITS = capture.limits(Settings())


def check_decode(data: bytes, limits: Limits = LIMITS) -> None:
    """Refused with one of the two intake codes, or an 8-bit RGB image: nothing else."""
    with contextlib.suppress(ImageUnreadable, ImageTooLarge):
        image = decode(data, limits)
        assert image.dtype == np.uint8
        assert image.ndim == 3
        assert image.shape[2] == 3
        assert image.shape[0] * image.shape[1] <= limits.max_pixels


@cache
def seeds() -> list[bytes]:
    """Small real images of every kind intake reads: baseline and progressive JPEG, RGB,
    grey, RGBA and 16-bit PNG (the mutations start from whole, valid files)."""
    face = Image.open(io.BytesIO(photo("obama-240p.jpg"))).convert("RGB")
    face.thumbnail((96, 96))

    def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
        out = io.BytesIO()
        image.save(out, fmt, **options)
        return out.getvalue()

    sixteen = Image.fromarray(np.asarray(face.convert("L"), dtype=np.uint16) * 257)
    return [
        saved(face, "JPEG", quality=80),
        saved(face, "JPEG", progressive=True),
        saved(face, "PNG"),
        saved(face.convert("L"), "PNG"),
        saved(face.convert("RGBA"), "PNG"),
        saved(sixteen, "PNG"),
    ]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(data=st.binary(max_size=4096))
def test_decode_of_arbitrary_bytes(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(
    data=st.binary(max_size=512),
    prefix=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0"]),
    suffix=st.sampled_from([b"", b"\xff\xd9", b"\x00\x00\x00\x00IEND\xaeB`\x82"]),
)
def test_decode_of_noise_between_real_markers(data: bytes, prefix: bytes, suffix: bytes) -> None:
    check_decode(prefix + data + suffix)


@st.composite
def mutated_image(draw: st.DrawFn) -> bytes:
    """A real image with bytes flipped, inserted or cut, most often in its headers."""
    data = bytearray(draw(st.sampled_from(seeds())))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        headers = draw(st.booleans())
        at = draw(st.integers(min_value=0, max_value=(200 if headers else len(data)) - 1))
        at = min(at, len(data) - 1)
        edit = draw(st.sampled_from(["set", "set", "xor", "insert", "delete", "truncate"]))
        value = draw(st.integers(min_value=0, max_value=255))
        if edit == "set":
            data[at] = value
        elif edit == "xor":
            data[at] ^= 1 << (value % 8)
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + 1 + value % 16]
        else:
            # Cut, but keep the end marker: the whole-file check must not be what saves us.
            end = bytes(data[-12:])
            data = data[: max(at, 16)] + end
        if len(data) < 2:
            break
    return bytes(data)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(data=mutated_image())
def test_decode_of_mutated_real_images(data: bytes) -> None:
    check_decode(data)


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(data=mutated_image())
def test_decode_under_tight_limits(data: bytes) -> None:
    """The size and pixel budgets refuse before decoding, whatever the header says."""
    check_decode(data, Limits(max_bytes=6_000, max_pixels=4_000))
