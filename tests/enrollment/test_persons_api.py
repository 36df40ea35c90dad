from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import runtime_of
from tests.factories import enroll, photo, td3

Headers = dict[str, dict[str, str]]

TABLES = ("persons", "documents", "captures", "watchlist", "data_keys")


def counts(client: TestClient) -> dict[str, int]:
    with runtime_of(client).pool.connection() as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM {t}".encode()).fetchone()[0])  # type: ignore[index]
            for t in TABLES
        }


def last_audit(client: TestClient) -> tuple[str, str, str | None]:
    with runtime_of(client).pool.connection() as conn:
        row = conn.execute(
            "SELECT action, outcome, resource_id FROM audit_events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def post_person(client: TestClient, headers: dict[str, str], data: bytes, mrz: str) -> Response:
    response: Response = client.post(
        "/v1/persons",
        headers=headers,
        files={"image": ("capture", data, "application/octet-stream")},
        data={"mrz": mrz},
    )
    return response


class TestEnroll:
    def test_enroll_and_read_back(self, client: TestClient, headers: Headers) -> None:
        response = client.post(
            "/v1/persons",
            headers=headers["consular"],
            files={"image": ("x.jpg", photo("obama.jpg"), "image/jpeg")},
            data={"mrz": td3()},
        )
        assert response.status_code == 201
        body = response.json()
        assert body["document"].pop("document_id")
        assert body["document"] == {
            "document_code": "P",
            "issuing_state": "UTO",
            "document_number": "L898902C3",
            "expiry_date": "2032-04-15",
        }
        assert set(body["quality"]) == {
            "face_too_small", "blurred", "underexposed", "overexposed", "low_contrast", "pose",
            "face_cut_off",
        }  # fmt: skip
        assert all(m["passed"] for m in body["quality"].values())
        person = client.get(f"/v1/persons/{body['person_id']}", headers=headers["officer"]).json()
        assert (person["surname"], person["given_names"]) == ("ERIKSSON", "ANNA MARIA")
        assert (person["nationality"], person["birth_date"], person["sex"]) == (
            "UTO", "1974-08-12", "F",
        )  # fmt: skip
        assert [c["capture_id"] for c in person["captures"]] == [body["capture_id"]]
        assert person["documents"][0]["document_number"] == "L898902C3"
        assert person["watchlisted"] is False
        assert last_audit(client) == ("persons.read", "ok", body["person_id"])

    def test_rgba_png_enrolls(self, client: TestClient, headers: Headers) -> None:
        enroll(client, headers["consular"], "32bit.png")

    def test_no_table_holds_names_numbers_or_images_in_clear(
        self, client: TestClient, headers: Headers
    ) -> None:
        enroll(client, headers["consular"], "obama.jpg", td3(surname="QWERTYSON"))
        needles = [b"QWERTYSON", b"L898902C3", photo("obama.jpg")[1000:1032]]
        with runtime_of(client).pool.connection() as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            ]
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}".encode()):
                    blob = repr(row).encode() + b"".join(
                        bytes(v) for v in row if isinstance(v, bytes | memoryview)
                    )
                    for needle in needles:
                        assert needle not in blob, f"{needle[:12]!r} in clear in {table}"


class TestEnrollRefusals:
    @pytest.mark.parametrize(
        ("picture", "code", "status"),
        [
            ("two_people.jpg", "multiple_faces", 422),
            ("obama-240p.jpg", "low_quality", 422),
        ],
    )
    def test_unusable_faces(
        self, client: TestClient, headers: Headers, picture: str, code: str, status: int
    ) -> None:
        before = counts(client)
        response = post_person(client, headers["consular"], photo(picture), td3())
        assert response.status_code == status
        assert response.json()["error"] == code
        assert counts(client) == before
        assert last_audit(client)[:2] == ("persons.create", code)

    def test_low_quality_names_the_failed_measure(
        self, client: TestClient, headers: Headers
    ) -> None:
        body = post_person(client, headers["consular"], photo("obama-240p.jpg"), td3()).json()
        assert [f["measure"] for f in body["failed"]] == ["face_too_small"]
        assert body["failed"][0]["value"] < body["failed"][0]["threshold"]

    @pytest.mark.parametrize(
        ("data", "code", "status"),
        [
            (b"", "image_unreadable", 422),
            (b"GIF89a" + bytes(100), "image_unreadable", 422),
            (photo("obama.jpg")[:20000], "image_unreadable", 422),
            # Past the 15 MB image budget, under the 16 MB body limit.
            (b"\xff\xd8\xff" + bytes(15_500_000), "image_too_large", 413),
        ],
    )
    def test_unreadable_images(
        self, client: TestClient, headers: Headers, data: bytes, code: str, status: int
    ) -> None:
        before = counts(client)
        response = post_person(client, headers["consular"], data, td3())
        assert (response.status_code, response.json()["error"]) == (status, code)
        assert counts(client) == before

    def test_bad_mrz_names_field_and_reason(self, client: TestClient, headers: Headers) -> None:
        before = counts(client)
        broken = td3().replace("L898902C36", "L898902C37")
        body = post_person(client, headers["consular"], photo("obama.jpg"), broken).json()
        assert (body["error"], body["field"], body["reason"]) == (
            "mrz_invalid", "document_number", "check_digit_mismatch",
        )  # fmt: skip
        assert counts(client) == before

    def test_the_same_face_under_another_document_is_a_duplicate(
        self, client: TestClient, headers: Headers
    ) -> None:
        first = enroll(client, headers["consular"], "obama.jpg", td3(number="A00000001"))
        before = counts(client)
        response = post_person(
            client, headers["officer"], photo("obama3.jpg"), td3(number="B00000002")
        )
        body = response.json()
        assert response.status_code == 409
        assert body["error"] == "duplicate_identity"
        assert [c["person_id"] for c in body["candidates"]] == [str(first)]
        assert 0 <= body["candidates"][0]["distance"] < 0.35
        assert counts(client) == before
        assert last_audit(client)[:2] == ("persons.create", "duplicate_identity")

    def test_an_enrolled_document_is_a_duplicate(
        self, client: TestClient, headers: Headers
    ) -> None:
        first = enroll(client, headers["consular"], "obama.jpg", td3(number="A00000001"))
        body = post_person(
            client, headers["consular"], photo("biden.jpg"), td3(number="A00000001")
        ).json()
        assert body["error"] == "duplicate_identity"
        assert body["candidates"] == [{"person_id": str(first), "match": "document"}]

    def test_different_people_are_not_duplicates(
        self, client: TestClient, headers: Headers
    ) -> None:
        enroll(client, headers["consular"], "obama.jpg", td3(number="A00000001"))
        enroll(client, headers["consular"], "biden.jpg", td3(number="B00000002"))
        enroll(client, headers["consular"], "lin-manuel-miranda.png", td3(number="C00000003"))
        assert counts(client)["persons"] == 3


class TestCaptures:
    def test_another_capture_of_the_same_person(self, client: TestClient, headers: Headers) -> None:
        person = enroll(client, headers["consular"], "obama.jpg")
        response = client.post(
            f"/v1/persons/{person}/captures",
            headers=headers["officer"],
            files={"image": ("c.jpg", photo("obama-720p.jpg"), "image/jpeg")},
        )
        assert response.status_code == 201
        record = client.get(f"/v1/persons/{person}", headers=headers["consular"]).json()
        assert len(record["captures"]) == 2

    def test_a_capture_of_someone_else_enrolled_is_refused(
        self, client: TestClient, headers: Headers
    ) -> None:
        obama = enroll(client, headers["consular"], "obama.jpg", td3(number="A00000001"))
        biden = enroll(client, headers["consular"], "biden.jpg", td3(number="B00000002"))
        response = client.post(
            f"/v1/persons/{biden}/captures",
            headers=headers["consular"],
            files={"image": ("c.jpg", photo("obama2.jpg"), "image/jpeg")},
        )
        assert response.status_code == 409
        assert response.json()["candidates"][0]["person_id"] == str(obama)

    def test_unknown_person_is_404(self, client: TestClient, headers: Headers) -> None:
        response = client.post(
            f"/v1/persons/{uuid4()}/captures",
            headers=headers["consular"],
            files={"image": ("c.jpg", photo("obama.jpg"), "image/jpeg")},
        )
        assert response.status_code == 404
        assert client.get(f"/v1/persons/{uuid4()}", headers=headers["officer"]).status_code == 404


class TestIdentifyAndVerify:
    @pytest.fixture
    def people(self, client: TestClient, headers: Headers) -> dict[str, UUID]:
        return {
            "obama": enroll(client, headers["consular"], "obama.jpg", td3(number="A00000001")),
            "biden": enroll(client, headers["consular"], "biden.jpg", td3(number="B00000002")),
        }

    def identify(self, client: TestClient, headers: Headers, picture: str, k: int = 5) -> Response:
        response: Response = client.post(
            "/v1/identify",
            headers=headers["officer"],
            files={"image": ("p.jpg", photo(picture), "image/jpeg")},
            data={"k": str(k)},
        )
        return response

    def test_identify_finds_the_person_nearest_first(
        self, client: TestClient, headers: Headers, people: dict[str, UUID]
    ) -> None:
        body = self.identify(client, headers, "obama3.jpg").json()
        assert [c["person_id"] for c in body["candidates"]] == [str(people["obama"])]
        assert body["candidates"][0]["distance"] <= body["threshold"]

    def test_a_stranger_gets_no_candidates(
        self, client: TestClient, headers: Headers, people: dict[str, UUID]
    ) -> None:
        body = self.identify(client, headers, "lin-manuel-miranda.png").json()
        assert body["candidates"] == []

    @pytest.mark.parametrize("k", [0, 51, -1])
    def test_k_out_of_range_is_422(self, client: TestClient, headers: Headers, k: int) -> None:
        response = self.identify(client, headers, "obama.jpg", k=k)
        assert response.status_code == 422

    def test_verify(self, client: TestClient, headers: Headers, people: dict[str, UUID]) -> None:
        def verify(picture: str, person: UUID) -> dict[str, object]:
            response = client.post(
                "/v1/verify",
                headers=headers["kiosk"],
                files={"image": ("p.jpg", photo(picture), "image/jpeg")},
                data={"person_id": str(person)},
            )
            assert response.status_code == 200
            result: dict[str, object] = response.json()
            return result

        same = verify("obama2.jpg", people["obama"])
        other = verify("lin-manuel-miranda.png", people["obama"])
        assert same["match"] is True
        assert other["match"] is False
        assert same["threshold"] == other["threshold"] == 0.4
        assert float(same["distance"]) < 0.4 < float(other["distance"])  # type: ignore[arg-type]

    def test_verify_unknown_person_is_404(self, client: TestClient, headers: Headers) -> None:
        response = client.post(
            "/v1/verify",
            headers=headers["officer"],
            files={"image": ("p.jpg", photo("obama.jpg"), "image/jpeg")},
            data={"person_id": str(uuid4())},
        )
        assert response.status_code == 404


class TestWatchlist:
    def test_add_list_and_remove(self, client: TestClient, headers: Headers) -> None:
        person = enroll(client, headers["consular"], "obama.jpg")
        officer = headers["officer"]
        created = client.post(
            "/v1/watchlist", headers=officer, json={"person_id": str(person), "reason": "case 7"}
        )
        assert created.status_code == 201
        entry = created.json()["entry_id"]
        listed = client.get("/v1/watchlist", headers=officer).json()
        assert [(e["entry_id"], e["reason"]) for e in listed] == [(entry, "case 7")]
        bio = client.app_state["bio"]
        assert len(bio.galleries.watchlist) == 1
        assert client.get(f"/v1/persons/{person}", headers=officer).json()["watchlisted"]
        assert client.delete(f"/v1/watchlist/{entry}", headers=officer).status_code == 204
        assert client.get("/v1/watchlist", headers=officer).json() == []
        assert len(bio.galleries.watchlist) == 0
        assert client.delete(f"/v1/watchlist/{entry}", headers=officer).status_code == 404

    def test_unknown_person_and_bad_bodies(self, client: TestClient, headers: Headers) -> None:
        officer = headers["officer"]
        unknown = client.post(
            "/v1/watchlist", headers=officer, json={"person_id": str(uuid4()), "reason": "x"}
        )
        assert unknown.status_code == 404
        for body in ({"person_id": "nope", "reason": "x"}, {"person_id": str(uuid4())}, {}):
            assert client.post("/v1/watchlist", headers=officer, json=body).status_code == 422
        assert counts(client)["watchlist"] == 0


class TestErasure:
    def test_erased_person_is_gone_everywhere_but_the_audit_trail(
        self, client: TestClient, headers: Headers
    ) -> None:
        person = enroll(client, headers["consular"], "obama.jpg")
        client.post(
            "/v1/watchlist",
            headers=headers["officer"],
            json={"person_id": str(person), "reason": "r"},
        )
        assert client.delete(f"/v1/persons/{person}", headers=headers["admin"]).status_code == 204
        assert client.get(f"/v1/persons/{person}", headers=headers["officer"]).status_code == 404
        probe = client.post(
            "/v1/identify",
            headers=headers["officer"],
            files={"image": ("p.jpg", photo("obama3.jpg"), "image/jpeg")},
        ).json()
        assert probe["candidates"] == []
        bio = client.app_state["bio"]
        assert (len(bio.galleries.enrolled), len(bio.galleries.watchlist)) == (0, 0)
        after = counts(client)
        assert (after["captures"], after["documents"]) == (0, 0)
        with runtime_of(client).pool.connection() as conn:
            assert conn.execute(
                "SELECT count(*) FROM data_keys WHERE owner_id = %s", (person,)
            ).fetchone() == (0,)
            actions = [
                r[0]
                for r in conn.execute(
                    "SELECT action FROM audit_events WHERE resource_id = %s ORDER BY seq",
                    (str(person),),
                )
            ]
        assert actions[0] == "persons.create"
        assert actions[-1] == "persons.erase"
        assert client.delete(f"/v1/persons/{person}", headers=headers["admin"]).status_code == 404
        # The document is free again: the same traveller may be enrolled anew.
        enroll(client, headers["consular"], "obama.jpg")
