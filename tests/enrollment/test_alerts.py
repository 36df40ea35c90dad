"""Alerts (DESIGN §10): document, person and name alerts through /v1/alerts, what each
becomes at a crossing for an officer and for a kiosk, their listing and ending, refused
input, sealing, and `border alerts import` of a lost-and-stolen list.

Real face model, real photos: obama*.jpg are one person, biden.jpg and
lin-manuel-miranda.png two others. The default policy applies (host state UTO, visa-exempt
GBR USA D)."""

from datetime import date
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from typer.testing import CliRunner

from border.cli import app as cli_app
from core.settings import Settings
from tests.border.crossing_helpers import (
    AIRPORT,
    Body,
    Clock,
    Headers,
    codes,
    cross,
    grounds,
    traveller,
)
from tests.conftest import runtime_of
from tests.factories import enroll, photo, td3
from visa.mrz import parse_mrz

NOTE: Final = "informant QX-7731 reports a forged entry stamp"
USA: Final = traveller("USA", "US0000001")
SEE_OFFICER: Final = {
    "code": "SEE_OFFICER",
    "detail": "please see an officer",
    "grounds_for_refusal": False,
}
CATEGORIES: Final = (
    "lost_stolen_document",
    "invalidated_document",
    "entry_ban",
    "wanted",
    "missing_person",
    "watch",
)
_COUNTS: Final = {
    "alerts": "SELECT count(*) FROM alerts",
    "active_alerts": "SELECT count(*) FROM alerts WHERE active",
    "alert_indexes": "SELECT count(*) FROM alert_indexes",
    "watchlist": "SELECT count(*) FROM watchlist",
}


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def post_alert(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> Response:
    response: Response = client.post("/v1/alerts", headers=headers, json=body)
    return response


def add_alert(client: TestClient, headers: Headers, **body: Any) -> UUID:
    """A new alert through POST /v1/alerts as an officer (asserts 201)."""
    response = post_alert(client, headers["officer"], body)
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == body["kind"]
    return UUID(response.json()["alert_id"])


def document_alert(
    client: TestClient,
    headers: Headers,
    number: str = "US0000001",
    category: str = "lost_stolen_document",
    issuing_state: str = "USA",
) -> UUID:
    return add_alert(
        client, headers, kind="document", issuing_state=issuing_state, document_number=number,
        category=category, note=NOTE,
    )  # fmt: skip


def alert_counts(client: TestClient) -> dict[str, int]:
    with runtime_of(client).pool.connection() as conn:
        found = {}
        for name, query in _COUNTS.items():
            row = conn.execute(query).fetchone()
            assert row is not None
            found[name] = int(row[0])
    return found


def end_alert(client: TestClient, headers: Headers, alert_id: UUID) -> Response:
    response: Response = client.delete(f"/v1/alerts/{alert_id}", headers=headers["officer"])
    return response


def reason(body: Body, code: str) -> dict[str, Any]:
    [found] = [r for r in body["reasons"] if r["code"] == code]
    return dict(found)


def crossing_texts(client: TestClient, headers: Headers, person_id: str) -> str:
    """Everything an officer reads of a person's crossings, as one text."""
    response = client.get(
        "/v1/crossings", headers=headers["officer"], params={"person_id": person_id}
    )
    assert response.status_code == 200, response.json()
    text: str = response.text
    return text


class TestAlertsAtACrossing:
    def test_a_lost_stolen_document_is_a_document_alert_for_the_officer(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        document_alert(client, headers)
        response = client.post(
            "/v1/crossings",
            headers=headers["officer"],
            files={"image": ("live.jpg", photo("obama.jpg"), "image/jpeg")},
            data={"mrz": USA, "direction": "entry", "border_point": AIRPORT,
                  "at": clock.now.isoformat()},
        )  # fmt: skip
        assert response.status_code == 201, response.json()
        body = response.json()

        assert (body["decision"], codes(body)) == ("refer", ["DOCUMENT_ALERT"])
        assert grounds(body) == {"DOCUMENT_ALERT": True}
        assert "lost_stolen_document" in reason(body, "DOCUMENT_ALERT")["detail"]
        assert NOTE not in response.text
        assert "QX-7731" not in response.text

    def test_the_same_crossing_by_a_kiosk_shows_see_officer_and_no_category(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        document_alert(client, headers)
        officer = cross(client, headers["officer"], mrz=USA, at=clock.ago(1))
        assert codes(officer) == ["DOCUMENT_ALERT"]

        response = client.post(
            "/v1/crossings",
            headers=headers["kiosk"],
            files={"image": ("live.jpg", photo("obama2.jpg"), "image/jpeg")},
            data={"mrz": USA, "direction": "entry", "border_point": AIRPORT,
                  "at": clock.now.isoformat()},
        )  # fmt: skip
        assert response.status_code == 201, response.json()
        body = response.json()

        assert body["decision"] == "refer"
        assert body["reasons"] == [SEE_OFFICER]
        text = response.text.lower()
        for hidden in ("document_alert", "lost", "stolen", "alert", "qx-7731", NOTE.lower()):
            assert hidden not in text, hidden

    @pytest.mark.parametrize(
        ("category", "code", "is_grounds"),
        [
            ("lost_stolen_document", "DOCUMENT_ALERT", True),
            ("invalidated_document", "DOCUMENT_ALERT", True),
            ("entry_ban", "ENTRY_BAN", True),
            ("wanted", "DOCUMENT_ALERT", False),
            ("watch", "DOCUMENT_ALERT", False),
        ],
    )
    def test_a_document_alert_by_category(
        self,
        client: TestClient,
        headers: Headers,
        clock: Clock,
        category: str,
        code: str,
        is_grounds: bool,
    ) -> None:
        document_alert(client, headers, category=category)
        body = cross(client, headers["officer"], mrz=USA, at=clock.now)

        assert (body["decision"], codes(body)) == ("refer", [code])
        assert grounds(body) == {code: is_grounds}
        if code == "DOCUMENT_ALERT":
            assert category in reason(body, code)["detail"]

    def test_a_document_alert_names_one_document_only(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        """The same number from another state, and the next number, are not flagged."""
        document_alert(client, headers, number="US0000001", issuing_state="GBR")
        document_alert(client, headers, number="US0000002")
        body = cross(client, headers["officer"], mrz=USA, at=clock.now)

        assert (body["decision"], body["reasons"]) == ("admit", [])

    @pytest.mark.parametrize(
        ("category", "code", "is_grounds"),
        [
            ("wanted", "WATCHLIST_HIT", False),
            ("missing_person", "WATCHLIST_HIT", False),
            ("watch", "WATCHLIST_HIT", False),
            ("entry_ban", "ENTRY_BAN", True),
        ],
    )
    def test_a_person_alert_on_an_enrolled_traveller(
        self,
        client: TestClient,
        headers: Headers,
        clock: Clock,
        category: str,
        code: str,
        is_grounds: bool,
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        add_alert(
            client, headers, kind="person", person_id=str(person_id), category=category, note=NOTE
        )
        response = client.post(
            "/v1/crossings",
            headers=headers["officer"],
            files={"image": ("live.jpg", photo("obama2.jpg"), "image/jpeg")},
            data={"mrz": USA, "direction": "entry", "border_point": AIRPORT,
                  "at": clock.now.isoformat()},
        )  # fmt: skip
        assert response.status_code == 201, response.json()
        body = response.json()

        assert body["person_id"] == str(person_id)
        assert (body["decision"], codes(body)) == ("refer", [code])
        assert grounds(body) == {code: is_grounds}
        if code == "WATCHLIST_HIT":
            assert category in reason(body, code)["detail"]
        assert NOTE not in response.text
        assert NOTE not in crossing_texts(client, headers, str(person_id))

    def test_a_person_alert_reaches_the_kiosk_as_see_officer(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        add_alert(client, headers, kind="person", person_id=str(person_id), category="entry_ban")
        body = cross(client, headers["kiosk"], mrz=USA, picture="obama3.jpg", at=clock.now)

        assert (body["decision"], body["reasons"]) == ("refer", [SEE_OFFICER])

    def test_a_name_alert_with_the_full_birth_date(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        add_alert(
            client, headers, kind="name", surname="TRAVELLER", given_names="ALEX",
            birth_date="1980-05-17", category="wanted", note=NOTE,
        )  # fmt: skip
        response = client.post(
            "/v1/crossings",
            headers=headers["officer"],
            files={"image": ("live.jpg", photo("obama.jpg"), "image/jpeg")},
            data={"mrz": USA, "direction": "entry", "border_point": AIRPORT,
                  "at": clock.now.isoformat()},
        )  # fmt: skip
        assert response.status_code == 201, response.json()
        body = response.json()

        assert (body["decision"], codes(body)) == ("refer", ["NAME_ALERT"])
        assert grounds(body) == {"NAME_ALERT": False}
        assert "wanted" in reason(body, "NAME_ALERT")["detail"]
        assert NOTE not in response.text
        assert NOTE not in crossing_texts(client, headers, body["person_id"])

    def test_a_name_alert_is_compared_after_icao_normalisation(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        add_alert(
            client, headers, kind="name", surname="  Müller-Lüdenscheidt ",
            given_names="o'Brien   Zoë", birth_date="1980-05-17", category="watch",
        )  # fmt: skip
        mrz = td3(
            surname="MULLER LUDENSCHEIDT", given_names="OBRIEN ZOE", number="US0000005",
            issuing_state="USA", nationality="USA", birth_date=date(1980, 5, 17), sex="M",
            expiry_date=date(2034, 6, 30),
        )  # fmt: skip
        body = cross(client, headers["officer"], mrz=mrz, at=clock.now)

        assert codes(body) == ["NAME_ALERT"]

    def test_a_name_alert_with_a_bare_year_matches_any_day_of_it(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        add_alert(
            client, headers, kind="name", surname="TRAVELLER", given_names="ALEX",
            birth_date="1980", category="missing_person",
        )  # fmt: skip
        body = cross(client, headers["officer"], mrz=USA, at=clock.now)

        assert (body["decision"], codes(body)) == ("refer", ["NAME_ALERT"])
        assert "missing_person" in reason(body, "NAME_ALERT")["detail"]

    def test_a_name_alert_for_another_birth_date_or_name_does_not_match(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        for surname, birth in (("TRAVELLER", "1980-05-18"), ("TRAVELLER", "1981"),
                               ("TRAVELLERS", "1980-05-17")):  # fmt: skip
            add_alert(
                client, headers, kind="name", surname=surname, given_names="ALEX",
                birth_date=birth, category="wanted",
            )  # fmt: skip
        body = cross(client, headers["officer"], mrz=USA, at=clock.now)

        assert (body["decision"], body["reasons"]) == ("admit", [])

    def test_a_name_alert_matches_a_name_the_mrz_truncated(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        surname = "WOLFESCHLEGELSTEINHAUSENBERGERDORFF"
        given = "HUBERT BLAINE"
        assert len(f"{surname}<<{given}") > 39
        mrz = td3(
            surname=surname, given_names=given, number="US0000006", issuing_state="USA",
            nationality="USA", birth_date=date(1980, 5, 17), sex="M",
            expiry_date=date(2034, 6, 30),
        )  # fmt: skip
        printed = parse_mrz(mrz)
        # The TD3 name field holds 39 characters: the given names were cut to "HU".
        assert (printed.surname, printed.given_names) == (surname, "HU")
        add_alert(
            client, headers, kind="name", surname=surname, given_names=given,
            birth_date="1980-05-17", category="wanted",
        )  # fmt: skip
        body = cross(client, headers["officer"], mrz=mrz, at=clock.now)

        assert (body["decision"], codes(body)) == ("refer", ["NAME_ALERT"])

    def test_several_alerts_show_a_kiosk_one_see_officer(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        document_alert(client, headers, category="invalidated_document")
        add_alert(
            client, headers, kind="name", surname="TRAVELLER", given_names="ALEX",
            birth_date="1980-05-17", category="wanted",
        )  # fmt: skip
        officer = cross(client, headers["officer"], mrz=USA, at=clock.ago(1))
        kiosk = cross(client, headers["kiosk"], mrz=USA, picture="obama2.jpg", at=clock.now)

        assert sorted(codes(officer)) == ["DOCUMENT_ALERT", "NAME_ALERT"]
        assert (kiosk["decision"], kiosk["reasons"]) == ("refer", [SEE_OFFICER])


class TestListAndEnd:
    def test_get_lists_every_kind_with_its_fields(
        self, client: TestClient, headers: Headers
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        document_id = document_alert(client, headers, number="L898902C3", issuing_state="UTO")
        name_id = add_alert(
            client, headers, kind="name", surname="eriksson", given_names="anna  maria",
            birth_date="1974", category="missing_person",
        )  # fmt: skip
        person_alert_id = add_alert(
            client, headers, kind="person", person_id=str(person_id), category="wanted"
        )

        response = client.get("/v1/alerts", headers=headers["officer"])
        assert response.status_code == 200, response.json()
        listed = {a["alert_id"]: a for a in response.json()["alerts"]}

        assert set(listed) == {str(document_id), str(name_id), str(person_alert_id)}
        fields = ("kind", "category", "issuing_state", "document_number", "surname",
                  "given_names", "birth_date", "person_id")  # fmt: skip
        assert {i: tuple(a[f] for f in fields) for i, a in listed.items()} == {
            str(document_id): (
                "document", "lost_stolen_document", "UTO", "L898902C3", None, None, None, None,
            ),
            str(name_id): (
                "name", "missing_person", None, None, "ERIKSSON", "ANNA MARIA", "1974", None,
            ),
            str(person_alert_id): (
                "person", "wanted", None, None, None, None, None, str(person_id),
            ),
        }  # fmt: skip
        assert response.json()["next_after"] is None

    @pytest.mark.parametrize("role", ["kiosk", "consular", "auditor", "admin"])
    def test_only_officers_read_or_write_alerts(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        body = {"kind": "document", "issuing_state": "UTO", "document_number": "X1",
                "category": "watch"}  # fmt: skip
        assert client.get("/v1/alerts", headers=headers[role]).status_code == 403
        assert post_alert(client, headers[role], body).status_code == 403
        assert alert_counts(client)["alerts"] == 0

    def test_delete_ends_a_document_alert(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        alert_id = document_alert(client, headers)
        flagged = cross(client, headers["officer"], mrz=USA, at=clock.ago(1))
        assert codes(flagged) == ["DOCUMENT_ALERT"]

        response = client.delete(f"/v1/alerts/{alert_id}", headers=headers["officer"])
        assert response.status_code == 204
        later = cross(client, headers["officer"], mrz=USA, picture="obama2.jpg", at=clock.now)

        assert (later["decision"], later["reasons"]) == ("admit", [])
        assert client.get("/v1/alerts", headers=headers["officer"]).json()["alerts"] == []
        assert alert_counts(client) == {
            "alerts": 1, "active_alerts": 0, "alert_indexes": 1, "watchlist": 0,
        }  # fmt: skip

    def test_delete_ends_a_name_alert(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        alert_id = add_alert(
            client, headers, kind="name", surname="TRAVELLER", given_names="ALEX",
            birth_date="1980", category="wanted",
        )  # fmt: skip
        assert end_alert(client, headers, alert_id).status_code == 204
        body = cross(client, headers["officer"], mrz=USA, at=clock.now)

        assert (body["decision"], body["reasons"]) == ("admit", [])

    def test_delete_ends_a_person_alert(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        person_id = enroll(client, headers["consular"], "obama.jpg", USA)
        alert_id = add_alert(
            client, headers, kind="person", person_id=str(person_id), category="entry_ban"
        )
        flagged = cross(client, headers["officer"], mrz=USA, picture="obama2.jpg",
                        at=clock.ago(1))  # fmt: skip
        assert codes(flagged) == ["ENTRY_BAN"]

        assert end_alert(client, headers, alert_id).status_code == 204
        later = cross(client, headers["officer"], mrz=USA, picture="obama3.jpg", at=clock.now)

        assert (later["decision"], later["reasons"]) == ("admit", [])
        person = client.get(f"/v1/persons/{person_id}", headers=headers["officer"]).json()
        assert person["watchlisted"] is False

    def test_deleting_an_unknown_or_ended_alert_is_404(
        self, client: TestClient, headers: Headers
    ) -> None:
        unknown = client.delete(f"/v1/alerts/{uuid4()}", headers=headers["officer"])
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"

        alert_id = document_alert(client, headers)
        assert end_alert(client, headers, alert_id).status_code == 204
        again = client.delete(f"/v1/alerts/{alert_id}", headers=headers["officer"])
        assert again.status_code == 404
        assert again.json()["error"] == "not_found"


PERSON: Final = "<the enrolled person>"


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "document", "issuing_state": "UTO", "document_number": "X1234567",
              "category": "stolen"}, "category"),
            ({"kind": "vehicle", "issuing_state": "UTO", "document_number": "X1234567",
              "category": "watch"}, "kind"),
            ({"issuing_state": "UTO", "document_number": "X1234567", "category": "watch"},
             "kind"),
            ({"kind": "name", "surname": "DOE", "given_names": "JOHN", "category": "wanted"},
             "birth_date"),
            ({"kind": "name", "surname": "DOE", "given_names": "JOHN", "birth_date": "1980-02-30",
              "category": "wanted"}, "birth_date"),
            ({"kind": "name", "surname": "DOE", "given_names": "JOHN", "birth_date": "80",
              "category": "wanted"}, "birth_date"),
            ({"kind": "name", "surname": "D0E", "given_names": "JOHN", "birth_date": "1980",
              "category": "wanted"}, "surname"),
            ({"kind": "document", "issuing_state": "UTO", "document_number": "x-1",
              "category": "watch"}, "document_number"),
            ({"kind": "person", "person_id": PERSON, "category": "lost_stolen_document"},
             "category"),
            ({"kind": "person", "person_id": PERSON, "category": "invalidated_document"},
             "category"),
        ],
    )  # fmt: skip
    def test_refused_with_the_field_named_and_nothing_written(
        self, client: TestClient, headers: Headers, body: dict[str, Any], field: str
    ) -> None:
        if body.get("person_id") == PERSON:
            body = body | {"person_id": str(enroll(client, headers["consular"], "obama.jpg"))}
        before = alert_counts(client)
        response = post_alert(client, headers["officer"], body)

        assert response.status_code == 422, response.json()
        assert (response.json()["error"], response.json()["field"]) == ("invalid_request", field)
        assert alert_counts(client) == before == {
            "alerts": 0, "active_alerts": 0, "alert_indexes": 0, "watchlist": 0,
        }  # fmt: skip

    def test_a_person_alert_for_an_unknown_person_is_404(
        self, client: TestClient, headers: Headers
    ) -> None:
        response = post_alert(
            client, headers["officer"],
            {"kind": "person", "person_id": str(uuid4()), "category": "wanted"},
        )  # fmt: skip
        assert response.status_code == 404
        assert alert_counts(client)["watchlist"] == 0

    @pytest.mark.parametrize("kind", ["document", "name", "person"])
    def test_the_same_alert_twice_is_409(
        self, client: TestClient, headers: Headers, kind: str
    ) -> None:
        body: dict[str, Any] = {
            "document": {"kind": "document", "issuing_state": "UTO",
                         "document_number": "L898902C3", "category": "lost_stolen_document"},
            "name": {"kind": "name", "surname": "ERIKSSON", "given_names": "ANNA MARIA",
                     "birth_date": "1974-08-12", "category": "wanted"},
            "person": {"kind": "person", "person_id": PERSON, "category": "wanted"},
        }[kind]  # fmt: skip
        if kind == "person":
            body["person_id"] = str(enroll(client, headers["consular"], "obama.jpg"))
        first = post_alert(client, headers["officer"], body)
        assert first.status_code == 201, first.json()
        after_first = alert_counts(client)

        second = post_alert(client, headers["officer"], body | {"note": "again"})
        assert second.status_code == 409, second.json()
        assert alert_counts(client) == after_first
        listed = client.get("/v1/alerts", headers=headers["officer"]).json()["alerts"]
        assert [a["alert_id"] for a in listed] == [first.json()["alert_id"]]

    def test_another_category_on_the_same_document_is_another_alert(
        self, client: TestClient, headers: Headers
    ) -> None:
        document_alert(client, headers, category="lost_stolen_document")
        document_alert(client, headers, category="entry_ban")
        assert alert_counts(client)["active_alerts"] == 2


class TestSealed:
    def test_contents_hold_no_number_name_or_note_in_clear(
        self, client: TestClient, headers: Headers
    ) -> None:
        document_alert(client, headers, number="SEAL12345", issuing_state="UTO")
        add_alert(
            client, headers, kind="name", surname="QWERTYSON", given_names="ZED",
            birth_date="1961-03-04", category="wanted", note=NOTE,
        )  # fmt: skip
        with runtime_of(client).pool.connection() as conn:
            rows = conn.execute("SELECT kind, identity, contents FROM alerts").fetchall()
            indexes = [bytes(r[0]) for r in conn.execute("SELECT blind_index FROM alert_indexes")]

        assert sorted(r[0] for r in rows) == ["document", "name"]
        blobs = [bytes(r[1]) for r in rows] + [bytes(r[2]) for r in rows] + indexes
        for blob in blobs:
            for needle in (b"SEAL12345", b"QWERTYSON", b"1961-03-04", b"QX-7731", b"UTO|"):
                assert needle not in blob
        # The contents are ciphertext of at least what they seal.
        assert all(len(bytes(r[2])) > len("SEAL12345") for r in rows)


# --- border alerts import ------------------------------------------------------------------


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
    }


def lost_and_stolen(path: Path, rows: int = 1000, bad_at_line: int | None = None) -> Path:
    """A CSV list of ``rows`` USA passports LS0000000 ... (line 1 is the header)."""
    lines = ["issuing_state,document_number,category"]
    for i in range(rows):
        category = "stolen" if bad_at_line == i + 2 else "lost_stolen_document"
        lines.append(f"USA,LS{i:07d},{category}")
    path.write_text("\n".join(lines) + "\n")
    return path


def border(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


class TestImport:
    def test_a_thousand_rows_load_and_a_listed_document_is_flagged(
        self,
        client: TestClient,
        headers: Headers,
        env: dict[str, str],
        tmp_path: Path,
        clock: Clock,
    ) -> None:
        csv_file = lost_and_stolen(tmp_path / "lost.csv")
        code, out, err = border(env, "alerts", "import", str(csv_file))

        assert code == 0, err
        assert "1000 rows read, 1000 alerts added" in out
        assert alert_counts(client) == {
            "alerts": 1000, "active_alerts": 1000, "alert_indexes": 1000, "watchlist": 0,
        }  # fmt: skip
        flagged = cross(client, headers["officer"], mrz=traveller("USA", "LS0000500"),
                        at=clock.now)  # fmt: skip
        assert (flagged["decision"], codes(flagged)) == ("refer", ["DOCUMENT_ALERT"])
        assert grounds(flagged) == {"DOCUMENT_ALERT": True}
        assert "lost_stolen_document" in flagged["reasons"][0]["detail"]
        # One past the end of the list is not on it.
        clean = cross(client, headers["officer"], mrz=traveller("USA", "LS0001000"),
                      picture="biden.jpg", at=clock.now)  # fmt: skip
        assert (clean["decision"], clean["reasons"]) == ("admit", [])

    def test_imported_alerts_are_listed(
        self, client: TestClient, headers: Headers, env: dict[str, str], tmp_path: Path
    ) -> None:
        csv_file = lost_and_stolen(tmp_path / "lost.csv", rows=3)
        assert border(env, "alerts", "import", str(csv_file))[0] == 0
        listed = client.get("/v1/alerts", headers=headers["officer"]).json()["alerts"]

        assert sorted((a["kind"], a["issuing_state"], a["document_number"], a["category"])
                      for a in listed) == [
            ("document", "USA", f"LS{i:07d}", "lost_stolen_document") for i in range(3)
        ]  # fmt: skip

    def test_importing_the_same_file_again_adds_nothing(
        self, client: TestClient, env: dict[str, str], tmp_path: Path
    ) -> None:
        csv_file = lost_and_stolen(tmp_path / "lost.csv")
        assert border(env, "alerts", "import", str(csv_file))[0] == 0
        code, out, err = border(env, "alerts", "import", str(csv_file))

        assert code == 0, err
        assert "1000 rows read, 0 alerts added" in out
        assert alert_counts(client)["alerts"] == 1000

    def test_a_bad_row_loads_nothing_and_names_its_line(
        self, client: TestClient, env: dict[str, str], tmp_path: Path
    ) -> None:
        csv_file = lost_and_stolen(tmp_path / "lost.csv", bad_at_line=502)
        assert csv_file.read_text().splitlines()[501] == "USA,LS0000500,stolen"
        code, _, err = border(env, "alerts", "import", str(csv_file))

        assert code == 2
        assert "line 502" in err
        assert "category" in err
        assert alert_counts(client)["alerts"] == 0

    @pytest.mark.parametrize(
        "header",
        ["state,number,category", "issuing_state,document_number", "USA,LS0000000,watch"],
    )
    def test_a_wrong_header_is_refused(
        self, client: TestClient, env: dict[str, str], tmp_path: Path, header: str
    ) -> None:
        csv_file = tmp_path / "lost.csv"
        csv_file.write_text(f"{header}\nUSA,LS0000001,lost_stolen_document\n")
        code, _, err = border(env, "alerts", "import", str(csv_file))

        assert code == 2
        assert "header" in err
        assert alert_counts(client)["alerts"] == 0


def test_every_category_is_accepted_for_a_document(client: TestClient, headers: Headers) -> None:
    for category in CATEGORIES:
        document_alert(client, headers, category=category)
    listed = client.get("/v1/alerts", headers=headers["officer"]).json()["alerts"]
    assert sorted(a["category"] for a in listed) == sorted(CATEGORIES)
