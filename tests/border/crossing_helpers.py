"""Helpers for the crossing tests: kiosk posts, travellers' MRZs, visas, and what the store
holds afterwards. Every crossing is posted with an explicit ``at`` taken from one clock per
test, so a test running across midnight still counts the days it means."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from uuid import UUID

import cv2
import numpy as np
from fastapi.testclient import TestClient
from httpx import Response

from border import crossings
from tests.conftest import runtime_of
from tests.factories import photo, td3

Headers = dict[str, dict[str, str]]
Body = dict[str, Any]

AIRPORT: Final = "UTO-AIR-1"
LAND: Final = "UTO-LAND-2"

# Literal queries, one per table the crossing flow may write (psycopg wants LiteralString).
_COUNTS: Final = {
    "crossings": "SELECT count(*) FROM crossings",
    "persons": "SELECT count(*) FROM persons",
    "captures": "SELECT count(*) FROM captures",
    "documents": "SELECT count(*) FROM documents",
}


@dataclass(frozen=True)
class Clock:
    """One instant per test; ``ago(n)`` is n days before it, at the same time of day."""

    now: datetime

    @classmethod
    def start(cls) -> "Clock":
        # A little in the past: the service refuses an `at` past its own clock plus skew.
        return cls(datetime.now(UTC) - timedelta(seconds=5))

    @property
    def today(self) -> date:
        return self.now.date()

    def ago(self, days: int) -> datetime:
        return self.now - timedelta(days=days)

    def day(self, days_ago: int = 0) -> date:
        return self.ago(days_ago).date()


def traveller(
    nationality: str = "USA",
    number: str = "US0000001",
    *,
    birth_date: date | None = date(1980, 5, 17),
    expiry_date: date = date(2034, 6, 30),
    surname: str = "TRAVELLER",
) -> str:
    """A passport MRZ issued by the traveller's own state."""
    return td3(
        surname=surname,
        given_names="ALEX",
        number=number,
        issuing_state=nationality,
        nationality=nationality,
        birth_date=birth_date,
        sex="M",
        expiry_date=expiry_date,
    )


def born_years_ago(clock: Clock, years: int) -> date:
    """A birth date that makes the traveller exactly ``years`` old today (born on 1 January)."""
    return date(clock.today.year - years, 1, 1)


def grey_jpeg() -> bytes:
    """A readable 640x480 JPEG with nothing in it: the kiosk camera saw no one."""
    ok, encoded = cv2.imencode(".jpg", np.full((480, 640, 3), 128, dtype=np.uint8))
    assert ok
    return encoded.tobytes()


def post_crossing(
    client: TestClient,
    headers: dict[str, str],
    *,
    mrz: str,
    picture: str = "obama.jpg",
    image: bytes | None = None,
    direction: str = "entry",
    border_point: str = AIRPORT,
    at: datetime | str | None = None,
    accompanied_by: UUID | str | None = None,
) -> Response:
    data: dict[str, str] = {"mrz": mrz, "direction": direction, "border_point": border_point}
    if at is not None:
        data["at"] = at if isinstance(at, str) else at.isoformat()
    if accompanied_by is not None:
        data["accompanied_by"] = str(accompanied_by)
    upload = photo(picture) if image is None else image
    response: Response = client.post(
        "/v1/crossings",
        headers=headers,
        files={"image": ("live.jpg", upload, "application/octet-stream")},
        data=data,
    )
    return response


def cross(
    client: TestClient,
    headers: dict[str, str],
    *,
    mrz: str,
    picture: str = "obama.jpg",
    image: bytes | None = None,
    direction: str = "entry",
    border_point: str = AIRPORT,
    at: datetime | str | None = None,
    accompanied_by: UUID | str | None = None,
) -> Body:
    """A crossing that must be recorded (201); its body. A kiosk's answer holds only
    :data:`KIOSK_KEYS` (checked here): it comes back completed with the officer's record of
    the same crossing (:func:`with_officer_record`)."""
    response = post_crossing(
        client, headers, mrz=mrz, picture=picture, image=image, direction=direction,
        border_point=border_point, at=at, accompanied_by=accompanied_by,
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body: Body = response.json()
    if "person_id" not in body:
        assert set(body) == KIOSK_KEYS, body
        return with_officer_record(client, body)
    return body


# All a kiosk learns of its crossing (DESIGN §12).
KIOSK_KEYS: Final = frozenset({"crossing_id", "decision", "reasons"})


def with_officer_record(client: TestClient, kiosk_body: Body) -> Body:
    """A kiosk's answer completed with what an officer reads of the same crossing (person,
    stay, match, visa...), for tests of the decision. What the kiosk saw wins: its reasons
    (alerts masked), and no candidates."""
    with runtime_of(client).pool.connection() as conn:
        record = crossings.officer_record(conn, UUID(kiosk_body["crossing_id"]))
    assert record is not None
    full: Body = record.model_dump(mode="json")
    return full | {"candidates": None} | kiosk_body


# BORDER_KIOSK_MAX_BACKDATE_H at its default: how far back a kiosk may date a crossing.
KIOSK_WINDOW: Final = timedelta(hours=72)
# A crossing this close to the window's edge goes to the officer too: the test's clock
# runs on while it posts.
_EDGE: Final = timedelta(minutes=5)


def poster(headers: Headers, at: datetime) -> dict[str, str]:
    """Who records a crossing of ``at`` at the post: its kiosk, or an officer once ``at``
    lies beyond the kiosk's back-dating window (DESIGN §14). An officer's response shows
    the alert reasons and candidates a kiosk's never does."""
    if datetime.now(UTC) - at > KIOSK_WINDOW - _EDGE:
        return headers["officer"]
    return headers["kiosk"]


def cross_by_post(
    client: TestClient,
    headers: Headers,
    *,
    mrz: str,
    at: datetime,
    picture: str = "obama.jpg",
    image: bytes | None = None,
    direction: str = "entry",
    border_point: str = AIRPORT,
    accompanied_by: UUID | str | None = None,
) -> Body:
    """A crossing at ``at`` recorded as the post records it (:func:`poster`): by the kiosk
    within its back-dating window, else by an officer. For histories built in the past;
    tests of what a kiosk sees post with the kiosk's key."""
    return cross(
        client, poster(headers, at), mrz=mrz, picture=picture, image=image,
        direction=direction, border_point=border_point, at=at, accompanied_by=accompanied_by,
    )  # fmt: skip


def codes(body: Body) -> list[str]:
    return [r["code"] for r in body["reasons"]]


def grounds(body: Body) -> dict[str, bool]:
    return {r["code"]: r["grounds_for_refusal"] for r in body["reasons"]}


def issue_visa(
    client: TestClient, headers: Headers, person_id: UUID, clock: Clock, **changes: object
) -> UUID:
    """A multiple-entry short-stay visa valid from 60 days ago to 120 days ahead, or as changed."""
    body: dict[str, object] = {
        "person_id": str(person_id),
        "visa_type": "C",
        "issuing_state": "UTO",
        "valid_from": clock.day(60).isoformat(),
        "valid_until": clock.day(-120).isoformat(),
        "entries": "MULT",
        "duration_of_stay_days": 90,
    }
    response = client.post("/v1/visas", headers=headers["consular"], json=body | changes)
    assert response.status_code == 201, response.json()
    return UUID(response.json()["visa_id"])


def counts(client: TestClient) -> dict[str, int]:
    with runtime_of(client).pool.connection() as conn:
        found = {}
        for table, query in _COUNTS.items():
            row = conn.execute(query).fetchone()
            assert row is not None
            found[table] = int(row[0])
    return found


def recorded(client: TestClient, person_id: UUID | str) -> list[tuple[str, str, str | None]]:
    """The person's crossings as stored: (direction, decision, outcome), oldest first."""
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT direction, decision, outcome FROM crossings WHERE person_id = %(p)s"
            " ORDER BY at, recorded_at",
            {"p": UUID(str(person_id))},
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def audit_actions(client: TestClient) -> list[tuple[str, str, str | None]]:
    """Every audit event as (action, outcome, resource_id), in chain order."""
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT action, outcome, resource_id FROM audit_events ORDER BY seq"
        ).fetchall()
    return [(r[0], r[1], None if r[2] is None else str(r[2])) for r in rows]


def new_client_key(
    client: TestClient, headers: Headers, name: str, role: str, border_point: str | None
) -> dict[str, str]:
    """Authorization headers for a client created through POST /v1/clients."""
    body: dict[str, object] = {"name": name, "role": role}
    if border_point is not None:
        body["border_point"] = border_point
    response = client.post("/v1/clients", headers=headers["admin"], json=body)
    assert response.status_code == 201, response.json()
    return {"Authorization": f"Bearer {response.json()['api_key']}"}
