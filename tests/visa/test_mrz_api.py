"""POST /v1/mrz/parse through HTTP: every field back, every failure with its field and reason."""

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import runtime_of
from tests.factories import td3
from tests.visa.mrz_cases import compose

Headers = dict[str, dict[str, str]]


def last_audit(client: TestClient) -> tuple[str, str, dict[str, Any]]:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT action, outcome, detail FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def parse(client: TestClient, headers: dict[str, str], body: object) -> Any:
    return client.post("/v1/mrz/parse", headers=headers, json=body)


class TestParse:
    def test_a_passport(self, client: TestClient, headers: Headers) -> None:
        text = td3(
            surname="MUELLER SCHMIDT",
            given_names="JAN",
            number="C01X00T47",
            nationality="D",
            issuing_state="D",
            birth_date=date(1964, 8, 12),
            sex="M",
            expiry_date=date(2030, 10, 31),
            personal_number="ZE184226B",
        )
        response = parse(client, headers["officer"], {"mrz": text})
        assert response.status_code == 200
        assert response.json() == {
            "format": "TD3",
            "document_code": "P",
            "issuing_state": "D",
            "surname": "MUELLER SCHMIDT",
            "given_names": "JAN",
            "document_number": "C01X00T47",
            "nationality": "D",
            "birth_date": "1964-08-12",
            "sex": "M",
            "expiry_date": "2030-10-31",
            "optional_data": "ZE184226B",
            "optional_data_1": "ZE184226B",
            "optional_data_2": "",
        }
        action, outcome, detail = last_audit(client)
        assert (action, outcome, detail) == ("mrz.parse", "ok", {"format": "TD3"})

    def test_an_identity_card_with_crlf_and_an_unknown_birth_date(
        self, client: TestClient, headers: Headers
    ) -> None:
        text = compose("TD1", birth="<<<<<<", birth_check="<", sex="<", optional="ABC")
        response = parse(client, headers["consular"], {"mrz": text.replace("\n", "\r\n") + "\n"})
        assert response.status_code == 200
        body = response.json()
        assert (body["format"], body["document_code"], body["birth_date"], body["sex"]) == (
            "TD1",
            "I",
            None,
            "X",
        )
        assert last_audit(client)[2] == {"format": "TD1"}

    def test_a_visa_sticker(self, client: TestClient, headers: Headers) -> None:
        response = parse(client, headers["consular"], {"mrz": compose("MRVA")})
        assert response.status_code == 200
        assert (response.json()["format"], response.json()["document_code"]) == ("MRVA", "V")


GOOD = td3()
LINE1, LINE2 = GOOD.split("\n")


class TestRefusals:
    @pytest.mark.parametrize(
        ("text", "field", "reason"),
        [
            pytest.param(LINE1, "format", "invalid_line_count", id="one line"),
            pytest.param(GOOD + "\n" + GOOD, "format", "invalid_line_count", id="four lines"),
            pytest.param(GOOD + "\n" + LINE2, "format", "invalid_length", id="3 lines of 44"),
            pytest.param(LINE1 + "\n" + LINE2[:-1], "format", "invalid_length", id="short line"),
            pytest.param(GOOD.lower(), "document_code", "lowercase_character", id="lowercase"),
            pytest.param(
                GOOD.replace("ERIKSSON", "ERIK5SON"),
                "name",
                "invalid_character",
                id="digit in name",
            ),
            pytest.param(
                GOOD.replace("ERIKSSON", "ERIK SON"), "name", "invalid_character", id="space"
            ),
            pytest.param(
                LINE1 + "\n" + LINE2[:9] + str((int(LINE2[9]) + 1) % 10) + LINE2[10:],
                "document_number",
                "check_digit_mismatch",
                id="document number check digit",
            ),
            pytest.param(
                LINE1 + "\n" + LINE2[:-1] + str((int(LINE2[-1]) + 1) % 10),
                "composite",
                "check_digit_mismatch",
                id="composite check digit",
            ),
            pytest.param(
                compose("TD3", birth="741312"), "birth_date", "invalid_date", id="month 13"
            ),
            pytest.param(
                compose("TD3", expiry="300230"), "expiry_date", "invalid_date", id="30 Feb"
            ),
            pytest.param(compose("TD3", sex="Q"), "sex", "invalid_sex", id="sex"),
            pytest.param(
                compose("TD3", code="X"),
                "document_code",
                "invalid_document_code",
                id="unknown code",
            ),
        ],
    )
    def test_each_failure_names_its_field_and_reason(
        self, client: TestClient, headers: Headers, text: str, field: str, reason: str
    ) -> None:
        response = parse(client, headers["consular"], {"mrz": text})
        assert response.status_code == 422
        body = response.json()
        assert (body["error"], body["field"], body["reason"]) == ("mrz_invalid", field, reason)
        assert body["detail"]
        assert "ERIKSSON" not in body["detail"]
        action, outcome, detail = last_audit(client)
        assert (action, outcome) == ("mrz.parse", "mrz_invalid")
        assert "ERIKSSON" not in str(detail)

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param({"mrz": ""}, id="empty"),
            pytest.param({"mrz": GOOD * 10}, id="too long"),
            pytest.param({"mrz": 12345}, id="not a string"),
            pytest.param({"mrz": GOOD, "today": "2026-01-01"}, id="unknown field"),
            pytest.param({}, id="missing"),
            pytest.param([GOOD], id="not an object"),
        ],
    )
    def test_bad_bodies_are_invalid_requests(
        self, client: TestClient, headers: Headers, body: object
    ) -> None:
        response = parse(client, headers["officer"], body)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert last_audit(client)[:2] == ("mrz.parse", "invalid_request")

    @pytest.mark.parametrize("role", ["kiosk", "auditor", "admin"])
    def test_other_roles_are_forbidden(
        self, client: TestClient, headers: Headers, role: str
    ) -> None:
        response = parse(client, headers[role], {"mrz": GOOD})
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert last_audit(client)[:2] == ("mrz.parse", "forbidden")
