"""Many threads enrolling and crossing at once: the audit chain holds, one document never
becomes two persons, no update is lost."""

from collections import Counter

from fastapi.testclient import TestClient

from tests.conftest import in_parallel, runtime_of
from tests.factories import photo, td3

Headers = dict[str, dict[str, str]]


def test_enrolling_and_crossing_at_once(client: TestClient, headers: Headers) -> None:
    same_document = td3(number="S00000001", nationality="KEN", issuing_state="KEN")
    pictures = iter(["obama.jpg", "obama2.jpg", "obama3.jpg", "obama-720p.jpg"])
    visitor = td3(number="V00000002", nationality="USA", issuing_state="USA")
    tasks = [("enroll", next(pictures)) for _ in range(4)] + [("cross", "biden.jpg")] * 4

    def work() -> tuple[str, int]:
        kind, picture = tasks.pop()
        if kind == "enroll":
            response = client.post(
                "/v1/persons",
                headers=headers["consular"],
                files={"image": ("p.jpg", photo(picture), "image/jpeg")},
                data={"mrz": same_document},
            )
        else:
            response = client.post(
                "/v1/crossings",
                headers=headers["kiosk"],
                files={"image": ("p.jpg", photo(picture), "image/jpeg")},
                data={"mrz": visitor, "direction": "entry", "border_point": "UTO-AIR-1"},
            )
        return kind, response.status_code

    outcomes = Counter(in_parallel(work, times=len(tasks)))
    assert outcomes[("enroll", 201)] == 1
    assert outcomes[("enroll", 409)] == 3
    assert outcomes[("cross", 201)] == 4
    with runtime_of(client).pool.connection() as conn:
        persons = conn.execute("SELECT count(*) FROM persons").fetchone()
        documents = conn.execute("SELECT count(*) FROM documents").fetchone()
        decisions = conn.execute(
            "SELECT decision, count(*) FROM crossings GROUP BY decision ORDER BY decision"
        ).fetchall()
    # One person per document: the contested passport and the visitor enrolled at entry.
    assert persons == documents == (2,)
    # The visitor's four simultaneous entries: one admitted, the others referred.
    assert decisions == [("admit", 1), ("refer", 3)]
    verdict = client.get("/v1/audit/verify", headers=headers["auditor"]).json()
    assert verdict["ok"] is True
