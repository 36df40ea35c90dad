"""Test data: valid MRZs for any traveller, and persons enrolled through the HTTP API."""

from datetime import date
from pathlib import Path
from uuid import UUID

from fastapi.testclient import TestClient

from core.runtime import Runtime
from tests.conftest import FACES, new_key
from visa.mrz import format_td3


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
    """A valid passport MRZ (TD3) with every check digit computed."""
    return format_td3(
        surname=surname,
        given_names=given_names,
        document_number=number,
        issuing_state=issuing_state,
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=personal_number,
    )


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


def new_key_headers(rt: Runtime, role: str, border_point: str | None = None) -> dict[str, str]:
    """Authorization headers of a new API client with ``role``."""
    return {"Authorization": f"Bearer {new_key(rt, role, border_point)}"}
