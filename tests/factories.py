"""Test data: valid MRZs for any traveller, and persons enrolled through the HTTP API."""

from datetime import date
from pathlib import Path
from uuid import UUID

from fastapi.testclient import TestClient

from tests.conftest import FACES
from visa.mrz import check_digit


def _field(value: str, width: int) -> str:
    return value.upper().replace(" ", "<").ljust(width, "<")[:width]


def _yymmdd(day: date | None) -> str:
    return day.strftime("%y%m%d") if day else "<<<<<<"


def td3(
    *,
    surname: str = "ERIKSSON",
    given_names: str = "ANNA MARIA",
    number: str = "L898902C3",
    issuing_state: str = "UTO",
    nationality: str = "UTO",
    birth_date: date | None = date(1974, 8, 12),
    sex: str = "F",
    expiry_date: date = date(2032, 4, 15),
    personal_number: str = "",
) -> str:
    """A valid passport MRZ (TD3, two lines of 44) with every check digit computed."""
    name = _field(f"{surname}<<{given_names.replace(' ', '<')}", 39)
    line1 = "P<" + _field(issuing_state, 3) + name
    number_f = _field(number, 9)
    personal = _field(personal_number, 14)
    personal_check = check_digit(personal) if personal_number else "<"
    birth, expiry = _yymmdd(birth_date), _yymmdd(expiry_date)
    body = (
        number_f
        + check_digit(number_f)
        + _field(nationality, 3)
        + birth
        + check_digit(birth)
        + sex.replace("X", "<")
        + expiry
        + check_digit(expiry)
        + personal
        + personal_check
    )
    composite = body[0:10] + body[13:20] + body[21:43]
    return line1 + "\n" + body + check_digit(composite)


def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def enroll(
    client: TestClient,
    headers: dict[str, str],
    picture: str | Path = "obama.jpg",
    mrz: str | None = None,
) -> UUID:
    """Enroll a person through POST /v1/persons and return their id (asserts 201)."""
    data = picture.read_bytes() if isinstance(picture, Path) else photo(picture)
    response = client.post(
        "/v1/persons",
        headers=headers,
        files={"image": ("capture.jpg", data, "image/jpeg")},
        data={"mrz": mrz or td3()},
    )
    assert response.status_code == 201, response.json()
    return UUID(response.json()["person_id"])
