"""Subject rights (DESIGN §12): the export of everything held on a person, with alerts
withheld, and the rectification of biographic data with its sealed history.

Real face model and photos: obama*.jpg are one person, biden.jpg another."""

import base64
import json
from datetime import timedelta
from typing import Any, Final
from uuid import UUID

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.auth import ROLES
from tests.border.crossing_helpers import (
    Body,
    Clock,
    Headers,
    audit_actions,
    cross,
    issue_visa,
    traveller,
)
from tests.conftest import runtime_of
from tests.factories import enroll

TRAVELLER: Final = traveller("USA", "US0000001", surname="TRAVELLER")
# The rectification routes and who may call them.
SUBJECT_ROUTES: Final = {
    ("GET", "/v1/persons/{id}/export"): {"dpo"},
    ("PATCH", "/v1/persons/{id}"): {"consular", "dpo"},
    ("GET", "/v1/persons/{id}/rectifications"): {"dpo"},
}


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def export(client: TestClient, headers: Headers, person_id: UUID) -> Body:
    response = client.get(f"/v1/persons/{person_id}/export", headers=headers["dpo"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: Body = json.loads(response.content)
    return body


def patch(
    client: TestClient, headers: dict[str, str], person_id: UUID, body: dict[str, Any]
) -> Any:
    return client.patch(f"/v1/persons/{person_id}", headers=headers, json=body)


def search(client: TestClient, headers: Headers, surname: str, given: str, birth: str) -> list[str]:
    response = client.get(
        "/v1/persons",
        headers=headers["consular"],
        params={"surname": surname, "given_names": given, "birth_date": birth},
    )
    assert response.status_code == 200, response.json()
    return [p["person_id"] for p in response.json()["persons"]]


def stored_person(client: TestClient, person_id: UUID) -> tuple[Any, ...]:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT surname, given_names, nationality, birth_date, sex, name_index, updated_at"
            " FROM persons WHERE id = %(p)s",
            {"p": person_id},
        ).fetchone()
    assert row is not None
    return tuple(row)


def rectification_rows(client: TestClient) -> list[tuple[Any, ...]]:
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT person_id, fields, old_values, new_values, reason FROM rectifications"
        ).fetchall()
    return [tuple(r) for r in rows]


class TestExport:
    def test_the_export_holds_everything_but_the_alerts(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        adult = enroll(
            client,
            headers["consular"],
            "biden.jpg",
            traveller("USA", "US0000002", surname="PARENT"),
        )
        linked = client.post(
            f"/v1/persons/{person_id}/guardians",
            headers=headers["consular"],
            json={"guardian_person_id": str(adult), "relationship": "parent", "evidence": "cert"},
        )
        assert linked.status_code == 201
        visa_id = issue_visa(client, headers, person_id, clock)
        entry = cross(
            client, headers["kiosk"], mrz=TRAVELLER, picture="obama2.jpg",
            at=clock.now - timedelta(hours=2),
        )  # fmt: skip
        watched = client.post(
            "/v1/watchlist",
            headers=headers["officer"],
            json={"person_id": str(person_id), "reason": "wanted for questioning"},
        )
        assert watched.status_code == 201
        exit_ = cross(
            client, headers["kiosk"], mrz=TRAVELLER, picture="obama3.jpg", direction="exit",
            at=clock.now - timedelta(hours=1),
        )  # fmt: skip
        assert exit_["decision"] == "refer"
        resolved = client.post(
            f"/v1/crossings/{exit_['crossing_id']}/resolution",
            headers=headers["officer"],
            json={"outcome": "admit", "note": "cleared after the watchlist check"},
        )
        assert resolved.status_code == 200, resolved.json()

        response = client.get(f"/v1/persons/{person_id}/export", headers=headers["dpo"])
        text = response.text
        body = export(client, headers, person_id)

        person = body["person"]
        assert (person["surname"], person["given_names"], person["nationality"]) == (
            "TRAVELLER", "ALEX", "USA",
        )  # fmt: skip
        assert person["birth_date"] == "1980-05-17"
        assert [d["document_number"] for d in person["documents"]] == ["US0000001"]
        assert [g["guardian_person_id"] for g in person["guardians"]] == [str(adult)]
        assert [v["visa_id"] for v in body["visas"]] == [str(visa_id)]
        crossings = {c["crossing_id"]: c for c in body["crossings"]}
        assert set(crossings) == {entry["crossing_id"], exit_["crossing_id"]}
        refused = crossings[exit_["crossing_id"]]
        # The alert's reason is shown as the kiosk showed it; the resolution is there, its
        # officer's note is not.
        assert [r["code"] for r in refused["reasons"]] == ["SEE_OFFICER"]
        assert refused["resolution"]["outcome"] == "admit"
        assert refused["resolution"]["note"] is None
        # Alerts are withheld, and the export says so.
        assert body["withheld"] == ["alerts"]
        assert "withheld" in body["withheld_note"]
        assert "WATCHLIST_HIT" not in text
        assert "questioning" not in text
        assert "watchlist check" not in text
        actions = [e["action"] for e in body["audit_events"]]
        assert {"persons.create", "crossings.create", "visas.issue", "persons.export"} <= set(
            actions
        )
        assert not [a for a in actions if a.startswith(("watchlist.", "alerts."))]
        # Captures come as base64 of the image as enrolled, which decodes to a picture.
        assert len(body["captures"]) == len(person["captures"]) == 1
        capture = body["captures"][0]
        assert capture["capture_id"] == person["captures"][0]["capture_id"]
        assert capture["media_type"] == "image/jpeg"
        image = base64.b64decode(capture["image_base64"])
        decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        assert decoded.shape[0] > 0

    def test_the_export_is_audited(self, client: TestClient, headers: Headers) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        export(client, headers, person_id)

        assert ("persons.export", "ok", str(person_id)) in audit_actions(client)

    def test_an_unknown_or_erased_person_is_not_found(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        erased = client.delete(f"/v1/persons/{person_id}", headers=headers["admin"])
        assert erased.status_code == 204

        response = client.get(f"/v1/persons/{person_id}/export", headers=headers["dpo"])
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


class TestRoles:
    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize(("method", "path"), sorted(SUBJECT_ROUTES))
    def test_only_the_listed_roles_pass(
        self, client: TestClient, headers: Headers, role: str, method: str, path: str
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        url = path.replace("{id}", str(person_id))
        body = {"reason": "typo at enrollment", "sex": "X"} if method == "PATCH" else None
        response = client.request(method, url, headers=headers[role], json=body)

        allowed = role in SUBJECT_ROUTES[(method, path)]
        assert response.status_code == (200 if allowed else 403), response.text


class TestRectification:
    def test_a_rectification_changes_the_person_and_keeps_the_old_values_sealed(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        response = patch(
            client,
            headers["consular"],
            person_id,
            {"surname": "Trävéller-Smith", "birth_date": "1980-05-18", "reason": "misread MRZ"},
        )

        assert response.status_code == 200, response.json()
        done = response.json()
        assert done["fields"] == ["birth_date", "surname"]
        # Names are kept in their MRZ form, as every name on file.
        assert done["new_values"] == {"surname": "TRAVELLER SMITH", "birth_date": "1980-05-18"}
        assert done["old_values"] == {"surname": "TRAVELLER", "birth_date": "1980-05-17"}
        person = client.get(f"/v1/persons/{person_id}", headers=headers["consular"]).json()
        assert (person["surname"], person["birth_date"]) == ("TRAVELLER SMITH", "1980-05-18")

        [(owner, fields, old, new, reason)] = rectification_rows(client)
        assert (owner, fields) == (person_id, ["birth_date", "surname"])
        for sealed in (old, new, reason):
            assert b"TRAVELLER" not in bytes(sealed)
            assert b"1980" not in bytes(sealed)
            assert b"misread" not in bytes(sealed)

        history = client.get(f"/v1/persons/{person_id}/rectifications", headers=headers["dpo"])
        assert history.status_code == 200
        [entry] = history.json()["rectifications"]
        assert entry["old_values"] == {"surname": "TRAVELLER", "birth_date": "1980-05-17"}
        assert entry["new_values"] == done["new_values"]
        assert entry["reason"] == "misread MRZ"
        assert entry["role"] == "consular"
        assert entry["rectified_by"] == done["rectified_by"]
        actions = audit_actions(client)
        assert ("persons.rectify", "ok", str(person_id)) in actions
        assert ("rectifications.read", "ok", str(person_id)) in actions
        # The export carries the history too.
        assert export(client, headers, person_id)["person"]["rectifications"] == [entry]

    def test_search_finds_the_new_name_and_not_the_old(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        assert search(client, headers, "TRAVELLER", "ALEX", "1980-05-17") == [str(person_id)]
        response = patch(
            client,
            headers["dpo"],
            person_id,
            {"surname": "Voyager", "given_names": "Alexandra", "reason": "name at birth"},
        )
        assert response.status_code == 200, response.json()

        assert search(client, headers, "VOYAGER", "ALEXANDRA", "1980-05-17") == [str(person_id)]
        assert search(client, headers, "TRAVELLER", "ALEX", "1980-05-17") == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"surname": "VOYAGER", "nickname": "Al", "reason": "typo"}, "nickname"),
            ({"surname": "VOYAGER", "reason": "   "}, "reason"),
            ({"surname": "VOYAGER"}, "reason"),
            ({"surname": "VOYAGER", "reason": "x" * 501}, "reason"),
            ({"birth_date": "1980-13-01", "reason": "typo"}, "birth_date"),
            ({"birth_date": "2999-01-01", "reason": "typo"}, "birth_date"),
            ({"surname": "ВОЯЖЁР", "reason": "typo"}, "surname"),
            ({"surname": None, "reason": "typo"}, "surname"),
            ({"sex": "Q", "reason": "typo"}, "sex"),
            ({"nationality": "usa1", "reason": "typo"}, "nationality"),
            ({"surname": "TRAVELLER", "reason": "same as before"}, "surname"),
        ],
    )
    def test_bad_input_is_refused_and_changes_nothing(
        self, client: TestClient, headers: Headers, body: dict[str, Any], field: str
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        before = stored_person(client, person_id)
        response = patch(client, headers["consular"], person_id, body)

        assert response.status_code == 422, response.json()
        assert response.json()["field"] == field
        assert stored_person(client, person_id) == before
        assert rectification_rows(client) == []

    def test_after_erasure_the_history_is_gone_with_the_person(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", TRAVELLER)
        done = patch(client, headers["consular"], person_id, {"sex": "X", "reason": "typo"})
        assert done.status_code == 200
        erased = client.delete(f"/v1/persons/{person_id}", headers=headers["admin"])
        assert erased.status_code == 204

        history = client.get(f"/v1/persons/{person_id}/rectifications", headers=headers["dpo"])
        assert history.status_code == 404
        again = patch(client, headers["consular"], person_id, {"sex": "F", "reason": "typo"})
        assert again.status_code == 404
        # The row stays (the service may not delete it) but its key is shredded.
        assert len(rectification_rows(client)) == 1
        with runtime_of(client).pool.connection() as conn:
            assert runtime_of(client).keys.data_key(conn, person_id) is None
