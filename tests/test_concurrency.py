"""Many threads enrolling, crossing and erasing at once: the audit chain holds, one document
never becomes two persons, no update is lost, no crossing outlives its traveller's
erasure."""

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from border import store as border_store
from core.runtime import Runtime
from enrollment import store as enrollment_store
from tests.border.crossing_helpers import with_officer_record
from tests.conftest import in_parallel, runtime_of
from tests.factories import enroll, photo, td3

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


class TestErasureRacingCrossings:
    """DESIGN §14: erasure takes the traveller's lock, and a crossing re-reads the person's
    status under it. A crossing that committed after the erasure of its traveller would
    hold an admitted crossing of a person who no longer exists (and its verify would read
    captures already deleted)."""

    MRZ = td3(number="E00000001", nationality="USA", issuing_state="USA")

    def post(self, client: TestClient, headers: Headers, mrz: str, picture: str) -> Response:
        """A kiosk's entry of the traveller holding ``mrz``."""
        response: Response = client.post(
            "/v1/crossings",
            headers=headers["kiosk"],
            files={"image": ("p.jpg", photo(picture), "image/jpeg")},
            data={"mrz": mrz, "direction": "entry", "border_point": "UTO-AIR-1"},
        )
        return response

    def test_erasure_and_crossings_take_one_lock_for_a_person(
        self, client: TestClient, headers: Headers
    ) -> None:
        """enrollment may not import border, so the key is computed in both stores: the
        person's lock taken as erasure takes it is the one a crossing waits for."""
        rt = runtime_of(client)
        person = enroll(client, headers["consular"], "obama.jpg", self.MRZ)
        url = rt.settings.database_url
        assert url is not None
        with psycopg.connect(url.get_secret_value()) as erasing:
            enrollment_store.lock_traveller(erasing, person)
            with psycopg.connect(url.get_secret_value()) as crossing:
                crossing.execute("SET lock_timeout = '200ms'")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    border_store.lock_traveller(crossing, person.bytes)

    def test_an_erasure_waits_for_a_crossing_that_holds_the_traveller(
        self, client: TestClient, headers: Headers
    ) -> None:
        """The crossing reaches the person's lock first: it is recorded as theirs, and the
        erasure comes after it in the chain, never before."""
        rt = runtime_of(client)
        person = enroll(client, headers["consular"], "obama.jpg", self.MRZ)
        with ThreadPoolExecutor(max_workers=2) as pool, _holding_traveller(rt, person) as held:
            crossing = pool.submit(self.post, client, headers, self.MRZ, "obama2.jpg")
            _wait_for(lambda: _waiting(rt) == 1 or crossing.done())
            erasure = pool.submit(client.delete, f"/v1/persons/{person}", headers=headers["admin"])
            _wait_for(lambda: _waiting(rt) == 2 or erasure.done())
            held.commit()
            crossed, erased = crossing.result(), erasure.result()

        assert (crossed.status_code, erased.status_code) == (201, 204), crossed.text
        body = with_officer_record(client, crossed.json())
        assert (body["decision"], body["person_id"]) == ("admit", str(person))
        assert _crossings_after_erasure(rt, person) == []

    def test_a_crossing_that_found_the_holder_reads_them_erased_and_enrolls_nobody(
        self, client: TestClient, headers: Headers
    ) -> None:
        """The erasure reaches the person's lock first; the crossing found the person as
        the document's holder and waits behind it. Under the lock it reads them erased: the
        document is nobody's now, and the crossing goes to an officer instead of enrolling
        the person again from a capture taken while they were being erased."""
        rt = runtime_of(client)
        person = enroll(client, headers["consular"], "obama.jpg", self.MRZ)
        with ThreadPoolExecutor(max_workers=2) as pool, _holding_traveller(rt, person) as held:
            erasure = pool.submit(client.delete, f"/v1/persons/{person}", headers=headers["admin"])
            _wait_for(lambda: _waiting(rt) == 1 or erasure.done())
            crossing = pool.submit(self.post, client, headers, self.MRZ, "obama2.jpg")
            _wait_for(lambda: _waiting(rt) == 2 or crossing.done())
            held.commit()
            crossed, erased = crossing.result(), erasure.result()

        assert (crossed.status_code, erased.status_code) == (201, 204), crossed.text
        body = with_officer_record(client, crossed.json())
        assert (body["decision"], body["person_id"]) == ("refer", None)
        assert [r["code"] for r in body["reasons"]] == ["UNKNOWN_TRAVELER"]
        assert "erased" in body["reasons"][0]["detail"]
        with rt.pool.connection() as conn:
            persons = conn.execute("SELECT id, status FROM persons").fetchall()
            detail = conn.execute(
                "SELECT detail FROM audit_events WHERE action = 'crossings.create'"
            ).fetchone()
        assert persons == [(person, "erased")]  # nobody enrolled again
        assert detail is not None
        assert (detail[0]["holder_erased"], detail[0]["enrolled"]) == (True, False)
        assert _crossings_after_erasure(rt, person) == []

    def test_an_officers_link_and_the_erasure_of_the_person_take_turns(
        self, client: TestClient, headers: Headers
    ) -> None:
        """The officer links a renewed passport to the person while the person is being
        erased. Joining the document needs the enrollment lock, which erasure takes before
        the person's: a link that took the person's first and then waited for the
        enrollment lock would deadlock with it. The link goes first here, then the
        erasure."""
        rt = runtime_of(client)
        person = enroll(client, headers["consular"], "obama.jpg", self.MRZ)
        renewed = td3(number="E00000002", nationality="USA", issuing_state="USA")
        changed = self.post(client, headers, renewed, "obama2.jpg").json()
        assert [r["code"] for r in changed["reasons"]] == ["DOCUMENT_CHANGED"], changed
        link = {"outcome": "admit", "note": "same person", "link_person_id": str(person)}

        with ThreadPoolExecutor(max_workers=2) as pool, _holding_traveller(rt, person) as held:
            resolution = pool.submit(
                client.post,
                f"/v1/crossings/{changed['crossing_id']}/resolution",
                headers=headers["officer"],
                json=link,
            )
            _wait_for(lambda: _waiting(rt) == 1 or resolution.done())
            erasure = pool.submit(client.delete, f"/v1/persons/{person}", headers=headers["admin"])
            _wait_for(lambda: _waiting(rt) == 2 or erasure.done())
            held.commit()
            resolved, erased = resolution.result(), erasure.result()

        assert (resolved.status_code, erased.status_code) == (200, 204), resolved.text
        assert resolved.json()["person_id"] == str(person)

    def test_erasure_racing_crossings_of_the_person(
        self, client: TestClient, headers: Headers
    ) -> None:
        """Rounds of one erasure against three kiosk crossings of the person's document,
        the erasure started a little later each round so that it lands before, inside and
        after the crossings' transactions. No crossing is ever recorded as the person's
        after the erasure, and every request gets its answer (no 404 from captures deleted
        under a verify, no deadlock)."""
        rt = runtime_of(client)
        warm_up = td3(number="W00000000")
        enroll(client, headers["consular"], "obama.jpg", warm_up)
        started = time.monotonic()
        assert self.post(client, headers, warm_up, "obama2.jpg").status_code == 201
        # One crossing's time, face detection included: the range the erasure's start sweeps.
        span = time.monotonic() - started
        _erase_active(client, headers)
        refused, late_by = [], []
        for round_ in range(RACE_ROUNDS):
            mrz = td3(number=f"E{round_:08d}", nationality="USA", issuing_state="USA")
            person = enroll(client, headers["consular"], "obama.jpg", mrz)
            statuses = self.race(client, headers, person, mrz, delay=span * round_ / RACE_ROUNDS)
            if statuses != [204, 201, 201, 201]:
                refused.append((round_, statuses))
            late_by += [(round_, c) for c in _crossings_after_erasure(rt, person)]
            _erase_active(client, headers)

        assert late_by == [], "crossings recorded as an erased person's after the erasure"
        assert refused == [], "(round, [erasure, crossings...]) answered otherwise"
        verdict = client.get("/v1/audit/verify", headers=headers["auditor"]).json()
        assert verdict["ok"] is True

    def race(
        self, client: TestClient, headers: Headers, person: UUID, mrz: str, *, delay: float
    ) -> list[int]:
        """The person's erasure, ``delay`` seconds late, against three kiosk crossings of
        their document, all released at once: the erasure's status, then the crossings'."""
        pictures = ["obama2.jpg", "obama3.jpg", "obama-720p.jpg"]
        gate = threading.Barrier(1 + len(pictures))

        def erase() -> int:
            gate.wait()
            time.sleep(delay)
            response: Response = client.delete(f"/v1/persons/{person}", headers=headers["admin"])
            return response.status_code

        def cross(picture: str) -> int:
            gate.wait()
            return self.post(client, headers, mrz, picture).status_code

        with ThreadPoolExecutor(max_workers=1 + len(pictures)) as pool:
            erased = pool.submit(erase)
            crossed = [pool.submit(cross, p) for p in pictures]
            return [erased.result(), *(c.result() for c in crossed)]


RACE_ROUNDS = 21


@contextmanager
def _holding_traveller(rt: Runtime, person_id: UUID) -> Iterator[psycopg.Connection[Any]]:
    """A transaction of the test's own holding the person's traveller lock (the key a
    crossing takes) until the caller commits it."""
    url = rt.settings.database_url
    assert url is not None
    with psycopg.connect(url.get_secret_value()) as conn:
        border_store.lock_traveller(conn, person_id.bytes)
        yield conn


def _waiting(rt: Runtime) -> int:
    """Backends of this database waiting for an advisory lock."""
    with rt.pool.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _crossings_after_erasure(rt: Runtime, person_id: UUID) -> list[UUID]:
    """The person's crossings whose audit event follows the person's erasure in the chain
    (the chain's lock is held to commit, so its order is the order of the commits)."""
    with rt.pool.connection() as conn:
        rows = conn.execute(
            "SELECT c.id FROM crossings c JOIN audit_events a ON a.resource_id = c.id::text"
            " AND a.action = 'crossings.create' WHERE c.person_id = %(p)s AND a.seq >"
            " (SELECT seq FROM audit_events WHERE action = 'persons.erase'"
            " AND resource_id = %(p)s::text)",
            {"p": person_id},
        ).fetchall()
    return [UUID(str(r[0])) for r in rows]


def _erase_active(client: TestClient, headers: Headers) -> None:
    """Erase everyone still enrolled (a crossing after an erasure enrols the traveller
    anew), so that the next round's enrollment of the same face is no duplicate."""
    with runtime_of(client).pool.connection() as conn:
        active = [r[0] for r in conn.execute("SELECT id FROM persons WHERE status = 'active'")]
    for person_id in active:
        response = client.delete(f"/v1/persons/{person_id}", headers=headers["admin"])
        assert response.status_code == 204, response.text
