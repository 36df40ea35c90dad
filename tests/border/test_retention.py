"""Retention (DESIGN §12): runs at future dates erase exactly the files past their period,
dry runs change nothing, every erasure is audited, the dpo's due list, an admin's erasure
clearing the blind index, a run killed half-way, and the command line."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from border import retention
from border.cli import app as cli
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture as capture_mod
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from tests.border.crossing_helpers import (
    Clock,
    Headers,
    codes,
    cross,
    cross_by_post,
    issue_visa,
    traveller,
)
from tests.conftest import runtime_of
from tests.factories import photo, td3
from visa import service as visa_service
from visa.policy import Policy, load_policy

ROOT = Path(__file__).resolve().parents[2]
PERIODS = {
    "crossing_years": 1,
    "overstayer_years": 5,
    "refusal_years": 3,
    "national_capture_days": 1,
    "national_crossing_days": 2,
}
NOTE = "retention test: different travellers photographed with one face"
WHO = retention.Actor("test:retention", "admin")


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """The default policy with the test's retention periods."""
    text = (ROOT / "visa" / "default_policy.toml").read_text()
    for key, value in PERIODS.items():
        text, found = re.subn(rf"(?m)^{key} = \d+$", f"{key} = {value}", text)
        assert found == 1, key
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.fixture
def settings(tmp_path: Path, app_database_url: str, policy_file: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=SecretStr(app_database_url),
        pool_min_size=1,
        policy_file=policy_file,
    )


@pytest.fixture
def policy(policy_file: Path) -> Policy:
    return load_policy(policy_file)


@pytest.fixture
def clock() -> Clock:
    return Clock.start()


def years_after(day: date, years: int) -> date:
    return day.replace(year=day.year + years)


def enroll_over(client: TestClient, headers: Headers, mrz: str, taken: list[UUID]) -> UUID:
    """A person enrolled by an officer over the dedup candidates: every test traveller
    shows the same real face (samples/faces has three people)."""
    data: dict[str, Any] = {"mrz": mrz}
    if taken:
        data |= {"not_duplicate_of": [str(t) for t in taken], "note": NOTE}
    response = client.post(
        "/v1/persons",
        headers=headers["officer"],
        files={"image": ("capture.jpg", photo("obama.jpg"), "image/jpeg")},
        data=data,
    )
    assert response.status_code == 201, response.json()
    person = UUID(response.json()["person_id"])
    taken.append(person)
    return person


def resolve_refusal(client: TestClient, headers: Headers, crossing_id: str) -> None:
    response = client.post(
        f"/v1/crossings/{crossing_id}/resolution",
        headers=headers["officer"],
        json={"outcome": "refuse", "note": "two faces at the gate", "grounds": ["E"]},
    )
    assert response.status_code == 200, response.json()


@dataclass(frozen=True)
class Population:
    plain: UUID  # crossed in and out a month ago: kept crossing_years
    overstayer: UUID  # stayed 140 days of 90: kept overstayer_years
    refused: UUID  # refused three days ago: kept refusal_years
    national: UUID  # a host national: their capture goes after a day
    visa_holder: UUID  # a visa valid two more years keeps the file


@pytest.fixture
def population(client: TestClient, headers: Headers, clock: Clock) -> Population:
    taken: list[UUID] = []
    plain_mrz = traveller("USA", "US1000001")
    plain = enroll_over(client, headers, plain_mrz, taken)
    cross_by_post(client, headers, mrz=plain_mrz, at=clock.ago(30))
    cross_by_post(client, headers, mrz=plain_mrz, at=clock.ago(20), direction="exit")

    over_mrz = traveller("USA", "US1000002")
    overstayer = enroll_over(client, headers, over_mrz, taken)
    cross_by_post(client, headers, mrz=over_mrz, at=clock.ago(150))
    left = cross_by_post(client, headers, mrz=over_mrz, at=clock.ago(10), direction="exit")
    assert "OVERSTAY" in codes(left)

    refused_mrz = traveller("USA", "US1000003")
    refused = enroll_over(client, headers, refused_mrz, taken)
    referred = cross_by_post(
        client, headers, mrz=refused_mrz, at=clock.ago(3), picture="two_people.jpg"
    )
    assert referred["decision"] == "refer"
    resolve_refusal(client, headers, referred["crossing_id"])

    national_mrz = td3(number="UTO000001")
    national = enroll_over(client, headers, national_mrz, taken)
    cross(client, headers["kiosk"], mrz=national_mrz, at=clock.now)

    visa_mrz = traveller("KEN", "KE1000001")
    visa_holder = enroll_over(client, headers, visa_mrz, taken)
    issue_visa(
        client, headers, visa_holder, clock,
        valid_from=clock.day(10).isoformat(), valid_until=clock.day(-730).isoformat(),
    )  # fmt: skip
    cross_by_post(client, headers, mrz=visa_mrz, at=clock.ago(5))
    cross_by_post(client, headers, mrz=visa_mrz, at=clock.ago(4), direction="exit")
    return Population(plain, overstayer, refused, national, visa_holder)


def run(client: TestClient, on: date, *, dry_run: bool = False) -> retention.Summary:
    rt = runtime_of(client)
    bio: Biometrics = client.app_state["bio"]
    policy: Policy = client.app_state["policy"]
    return retention.run(rt, policy, WHO, on=on, dry_run=dry_run, galleries=bio.galleries)


def held(client: TestClient, person: UUID) -> dict[str, int]:
    """What the store holds of the person, row counts by table."""
    with runtime_of(client).pool.connection() as conn:
        found: dict[str, int] = {}
        for table, query in {
            "active": "SELECT count(*) FROM persons WHERE id = %(p)s AND status = 'active'",
            "documents": "SELECT count(*) FROM documents WHERE person_id = %(p)s",
            "captures": "SELECT count(*) FROM captures WHERE person_id = %(p)s",
            "visas": "SELECT count(*) FROM visas WHERE person_id = %(p)s",
            "crossings": "SELECT count(*) FROM crossings WHERE person_id = %(p)s",
            "key": "SELECT count(*) FROM data_keys WHERE owner_id = %(p)s",
        }.items():
            row = conn.execute(query, {"p": person}).fetchone()
            assert row is not None
            found[table] = int(row[0])
    return found


def erased(client: TestClient, person: UUID) -> bool:
    counts = held(client, person)
    return counts == dict.fromkeys(counts, 0)


def whole(client: TestClient, person: UUID) -> bool:
    counts = held(client, person)
    return all(counts[t] >= 1 for t in ("active", "documents", "captures", "key"))


def table_counts(client: TestClient) -> dict[str, int]:
    queries = {
        "persons_active": "SELECT count(*) FROM persons WHERE status = 'active'",
        "documents": "SELECT count(*) FROM documents",
        "captures": "SELECT count(*) FROM captures",
        "visas": "SELECT count(*) FROM visas",
        "crossings": "SELECT count(*) FROM crossings",
        "data_keys": "SELECT count(*) FROM data_keys",
        "audit_events": "SELECT count(*) FROM audit_events",
        "retention_runs": "SELECT count(*) FROM retention_runs",
    }
    with runtime_of(client).pool.connection() as conn:
        out = {}
        for name, query in queries.items():
            row = conn.execute(query).fetchone()
            assert row is not None
            out[name] = int(row[0])
    return out


def erasure_events(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    """The retention.erase events as (actor, resource id, detail)."""
    with runtime_of(client).pool.connection() as conn:
        rows = conn.execute(
            "SELECT actor, resource_id, detail FROM audit_events"
            " WHERE action = 'retention.erase' ORDER BY seq"
        ).fetchall()
    return [(r[0], str(r[1]), r[2]) for r in rows]


def identified(client: TestClient, headers: Headers) -> set[str]:
    response = client.post(
        "/v1/identify",
        headers=headers["officer"],
        files={"image": ("probe.jpg", photo("obama2.jpg"), "image/jpeg")},
        data={"k": "10"},
    )
    assert response.status_code == 200, response.json()
    return {c["person_id"] for c in response.json()["candidates"]}


class TestRunAtAFutureDate:
    def test_erases_exactly_the_files_past_their_period(
        self, client: TestClient, headers: Headers, population: Population, clock: Clock
    ) -> None:
        p = population
        summary = run(client, years_after(clock.today, 1) + timedelta(days=1))

        assert erased(client, p.plain)
        assert held(client, p.national)["active"] == 0
        for kept in (p.overstayer, p.refused, p.visa_holder):
            assert whole(client, kept)
        assert summary.persons == {"crossing": 1, "national": 1}
        assert summary.deleted["crossings"] == 2
        assert summary.deleted["national captures"] == 1
        assert summary.deleted["national crossings"] == 1
        assert client.get(f"/v1/persons/{p.plain}", headers=headers["officer"]).status_code == 404
        # The templates left this process's galleries: never a search hit again.
        found = identified(client, headers)
        assert str(p.plain) not in found
        assert str(p.national) not in found
        assert str(p.overstayer) in found

    def test_refusals_and_visas_keep_a_file_and_overstayers_longest(
        self, client: TestClient, population: Population, clock: Clock
    ) -> None:
        p = population
        second = run(client, years_after(clock.today, 3) + timedelta(days=1))
        assert second.persons == {"crossing": 2, "refusal": 1, "national": 1}
        assert erased(client, p.refused)
        assert erased(client, p.visa_holder)
        assert second.deleted["visas"] == 1
        assert whole(client, p.overstayer)

        third = run(client, years_after(clock.today, 5) + timedelta(days=1))
        assert third.persons == {"overstay": 1}
        assert erased(client, p.overstayer)

    def test_a_nationals_capture_and_crossing_go_after_days(
        self, client: TestClient, population: Population, clock: Clock
    ) -> None:
        p = population
        summary = run(client, clock.today + timedelta(days=1))
        assert summary.persons == {"national": 1}
        assert summary.deleted["national crossings"] == 0  # kept 2 days
        assert held(client, p.national)["crossings"] == 1
        assert held(client, p.national)["captures"] == 0
        for kept in (p.plain, p.overstayer, p.refused, p.visa_holder):
            assert whole(client, kept)

        later = run(client, clock.today + timedelta(days=2))
        assert later.persons == {}
        assert later.deleted["national crossings"] == 1
        assert held(client, p.national)["crossings"] == 0

    def test_a_run_today_erases_nobody(self, client: TestClient, population: Population) -> None:
        before = table_counts(client)
        summary = run(client, retention.today(runtime_of(client)))
        assert summary.persons == {}
        assert sum(summary.deleted.values()) == 0
        after = table_counts(client)
        assert after["retention_runs"] == before["retention_runs"] + 1
        assert {k: v for k, v in after.items() if k != "retention_runs"} == {
            k: v for k, v in before.items() if k != "retention_runs"
        }

    def test_an_unattributed_crossing_goes_with_its_period(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        # A traveller who needs a visa and is not enrolled: referred, tied to nobody, its
        # live capture kept for the officer.
        body = cross(client, headers["kiosk"], mrz=traveller("KEN", "KE2000001"), at=clock.now)
        assert body["decision"] == "refer"
        kept = run(client, years_after(clock.today, 1) - timedelta(days=1))
        assert kept.deleted["unattributed crossings"] == 0
        gone = run(client, years_after(clock.today, 1))
        assert gone.deleted["unattributed crossings"] == 1
        assert table_counts(client)["crossings"] == 0


class TestDryRun:
    def test_changes_nothing_and_reports_what_a_run_does(
        self, client: TestClient, population: Population, clock: Clock
    ) -> None:
        on = years_after(clock.today, 3) + timedelta(days=1)
        before = table_counts(client)
        dry = run(client, on, dry_run=True)
        assert table_counts(client) == before
        assert whole(client, population.plain)

        real = run(client, on)
        assert dry.persons == real.persons
        assert dry.deleted == real.deleted
        assert dry.persons == {"crossing": 2, "refusal": 1, "national": 1}
        assert dry.lines()[1:] != real.lines()[1:]  # "would be erased" against "erased"


class TestAudit:
    def test_each_erasure_is_one_event_without_personal_data(
        self, client: TestClient, population: Population, clock: Clock
    ) -> None:
        p = population
        run(client, years_after(clock.today, 3) + timedelta(days=1))
        events = erasure_events(client)
        assert sorted(r for _, r, _ in events) == sorted(
            str(x) for x in (p.plain, p.national, p.refused, p.visa_holder)
        )
        by_person = {r: d for _, r, d in events}
        assert by_person[str(p.refused)]["reason"] == "refusal"
        assert by_person[str(p.refused)]["period_years"] == 3
        assert by_person[str(p.plain)]["reason"] == "crossing"
        assert by_person[str(p.plain)]["period_years"] == 1
        assert by_person[str(p.national)] | {"period_days": 1} == by_person[str(p.national)]
        allowed = {
            "reason", "period_years", "period_days", "kept_until", "on", "already_erased",
            "crossings", "visas", "captures", "national_captures",
        }  # fmt: skip
        for actor, _, detail in events:
            assert actor == WHO.actor
            assert set(detail) <= allowed
        text = json.dumps([d for _, _, d in events])
        assert "TRAVELLER" not in text
        assert "US1000001" not in text


class TestDueList:
    def test_lists_the_persons_due_with_date_and_reason(
        self, client: TestClient, headers: Headers, population: Population, clock: Clock
    ) -> None:
        p = population
        response = client.get("/v1/retention/due?within_days=400", headers=headers["dpo"])
        assert response.status_code == 200, response.json()
        body = response.json()
        listed = {d["person_id"]: (d["due_on"], d["reason"]) for d in body["persons"]}
        assert listed == {
            str(p.national): ((clock.today + timedelta(days=1)).isoformat(), "national"),
            str(p.plain): (years_after(clock.today, 1).isoformat(), "crossing"),
        }
        assert [d["person_id"] for d in body["persons"]] == [str(p.national), str(p.plain)]
        assert body["more"] is False

        soon = client.get("/v1/retention/due?within_days=1", headers=headers["dpo"]).json()
        assert [d["person_id"] for d in soon["persons"]] == [str(p.national)]
        longer = client.get("/v1/retention/due?within_days=3650", headers=headers["dpo"]).json()
        reasons = {d["person_id"]: d["reason"] for d in longer["persons"]}
        assert reasons[str(p.overstayer)] == "overstay"
        assert reasons[str(p.refused)] == "refusal"
        assert set(longer["persons"][0]) == {"person_id", "due_on", "reason"}

    @pytest.mark.parametrize("within", ["0", "3651", "-5", "soon", "1.5"])
    def test_a_bad_range_is_refused_naming_the_field(
        self, client: TestClient, headers: Headers, within: str
    ) -> None:
        before = table_counts(client)["audit_events"]
        response = client.get(f"/v1/retention/due?within_days={within}", headers=headers["dpo"])
        assert response.status_code == 422
        assert response.json()["field"] == "within_days"
        # Only the refusal's own event.
        assert table_counts(client)["audit_events"] == before + 1

    def test_the_due_list_is_audited(self, client: TestClient, headers: Headers) -> None:
        client.get("/v1/retention/due", headers=headers["dpo"])
        with runtime_of(client).pool.connection() as conn:
            row = conn.execute(
                "SELECT role, detail FROM audit_events WHERE action = 'retention.due'"
            ).fetchone()
        assert row == ("dpo", {"within_days": 90, "persons": 0})


class TestAdminErasure:
    def test_clears_the_documents_blind_index_from_crossings(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        mrz = traveller("KEN", "KE3000001")
        # First seen unknown (tied to nobody), then enrolled with a visa, then crossing.
        unknown = cross(client, headers["kiosk"], mrz=mrz, at=clock.ago(1))
        assert unknown["decision"] == "refer"
        person = enroll_over(client, headers, mrz, [])
        issue_visa(client, headers, person, clock)
        cross(client, headers["kiosk"], mrz=mrz, at=clock.now)

        def indexed() -> int:
            with runtime_of(client).pool.connection() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM crossings WHERE document_index IS NOT NULL"
                ).fetchone()
            assert row is not None
            return int(row[0])

        assert indexed() == 2
        response = client.delete(f"/v1/persons/{person}", headers=headers["admin"])
        assert response.status_code == 204
        assert indexed() == 0
        assert held(client, person)["crossings"] == 1  # kept until retention's period
        assert client.delete(f"/v1/persons/{person}", headers=headers["admin"]).status_code == 404

    def test_an_erased_persons_crossings_and_visas_go_by_the_periods(
        self, client: TestClient, headers: Headers, clock: Clock
    ) -> None:
        mrz = traveller("KEN", "KE3000002")
        person = enroll_over(client, headers, mrz, [])
        issue_visa(client, headers, person, clock)
        cross(client, headers["kiosk"], mrz=mrz, at=clock.ago(2))
        cross(client, headers["kiosk"], mrz=mrz, at=clock.now, direction="exit")
        assert client.delete(f"/v1/persons/{person}", headers=headers["admin"]).status_code == 204
        assert held(client, person)["visas"] == 1

        # The visa's end (120 days ahead) plus crossing_years.
        kept = run(client, years_after(clock.today, 1))
        assert kept.persons == {}
        assert held(client, person)["crossings"] == 2
        summary = run(client, years_after(clock.today, 2))
        assert summary.persons == {"crossing": 1}
        assert erased(client, person)
        (event,) = erasure_events(client)
        assert event[2]["already_erased"] is True


def _enroll_many(rt: Runtime, bio: Biometrics, count: int) -> list[UUID]:
    """``count`` persons with one real capture each, enrolled by the service's own use
    case over the dedup candidates (one face for all, as the benchmarks do)."""
    image = photo("obama.jpg")
    capture = capture_mod.analyse(bio.model, image, rt.settings)
    principal = auth.Principal(client_id=None, role="officer", border_point=None, purpose="test")
    persons: list[UUID] = []
    for i in range(count):
        document = visa_service.read_mrz(traveller("USA", f"US9{i:06d}"))
        override = enrollment_service.Override(frozenset(persons), NOTE) if persons else None
        created = enrollment_service.enroll_document(
            rt, bio, principal, document=document, image=image, capture=capture, override=override
        )
        persons.append(created.person_id)
    return persons


def _cli_env(settings: Settings) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        **os.environ,
        "BORDER_DATA_DIR": str(settings.data_dir),
        "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
        "BORDER_POLICY_FILE": str(settings.policy_file),
        "BORDER_LOG_LEVEL": "WARNING",
    }


def _erase_events(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'retention.erase'"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def many(client: TestClient) -> list[UUID]:
    rt = runtime_of(client)
    return _enroll_many(rt, client.app_state["bio"], 300)


class TestInterruptedRun:
    def test_a_killed_run_leaves_each_person_whole_or_erased_and_the_next_finishes(
        self,
        client: TestClient,
        settings: Settings,
        database_url: str,
        many: list[UUID],
        clock: Clock,
    ) -> None:
        on = (years_after(clock.today, 2)).isoformat()
        command = [sys.executable, "-m", "border", "retention", "run", "--on", on]
        process = subprocess.Popen(
            command,
            env=_cli_env(settings),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while _erase_events(database_url) < 5:
                assert process.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline
                time.sleep(0.005)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL

        states = [(erased(client, p), whole(client, p)) for p in many]
        done = sum(1 for gone, _ in states if gone)
        assert all(gone != kept for gone, kept in states)  # never half
        assert 5 <= done < len(many)
        assert _erase_events(database_url) == done
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT count(*) FROM retention_runs").fetchone() == (0,)

        finish = subprocess.run(
            command, env=_cli_env(settings), cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert finish.returncode == 0, finish.stderr
        assert f"persons erased: {len(many) - done} (crossing {len(many) - done}," in finish.stdout
        assert all(erased(client, p) for p in many)
        assert _erase_events(database_url) == len(many)  # each person once


class TestCommand:
    def test_prints_the_summary_by_kind_and_shows_progress(
        self, client: TestClient, settings: Settings, population: Population, clock: Clock
    ) -> None:
        env = _cli_env(settings)
        on = (years_after(clock.today, 1) + timedelta(days=1)).isoformat()
        dry = CliRunner().invoke(cli, ["retention", "run", "--dry-run", "--on", on], env=env)
        assert dry.exit_code == 0, dry.output
        assert dry.stdout.splitlines() == [
            f"retention on {on} (dry run: nothing changed)",
            "persons would be erased: 2 (crossing 1, overstay 0, refusal 0, national 1)",
            "rows that would be deleted: crossings 2, visas 0, captures 1, national captures 1,"
            " national crossings 1, unattributed crossings 0",
        ]
        # The national is looked at twice: for their captures, then for their file.
        assert "retention: files checked: 3/3 files (100%)" in dry.stderr
        assert whole(client, population.plain)

        real = CliRunner().invoke(cli, ["retention", "run", "--on", on], env=env)
        assert real.exit_code == 0, real.output
        assert real.stdout.splitlines()[1] == (
            "persons erased: 2 (crossing 1, overstay 0, refusal 0, national 1)"
        )
        assert erased(client, population.plain)

    @pytest.mark.parametrize("on", ["2030-02-30", "tomorrow", "30/11/2030", ""])
    def test_a_malformed_date_exits_2_with_one_line(self, settings: Settings, on: str) -> None:
        result = CliRunner().invoke(cli, ["retention", "run", "--on", on], env=_cli_env(settings))
        assert result.exit_code == 2
        assert result.stderr.strip() == "error: --on must be a date, YYYY-MM-DD"

    def test_one_run_at_a_time(
        self, client: TestClient, settings: Settings, policy: Policy
    ) -> None:
        rt = runtime_of(client)
        with rt.pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (0x7265_7465,))
            try:
                with pytest.raises(retention.RunInProgress):
                    retention.run(rt, policy, WHO, on=date.today())
                busy = CliRunner().invoke(cli, ["retention", "run"], env=_cli_env(settings))
                assert busy.exit_code == 1
                assert "another retention run is in progress" in busy.stderr
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (0x7265_7465,))
                conn.commit()


class TestDaily:
    def test_runs_once_a_day_and_catches_the_galleries_up(
        self, client: TestClient, policy: Policy
    ) -> None:
        rt = runtime_of(client)
        bio: Biometrics = client.app_state["bio"]
        daily = retention.Daily()
        first = daily.tick(rt, policy, bio.galleries)
        assert first is not None
        assert first.on == retention.today(rt)
        assert daily.tick(rt, policy, bio.galleries) is None  # done for today
        other = retention.Daily()
        assert other.tick(rt, policy, bio.galleries) is None
        assert other.seen_run == daily.seen_run is not None

    def test_a_failed_run_is_logged_and_tried_again_tomorrow(
        self,
        client: TestClient,
        policy: Policy,
        database_url: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        rt = runtime_of(client)
        bio: Biometrics = client.app_state["bio"]
        # A store that refuses the run's record: the run fails at its very end.
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("REVOKE INSERT ON retention_runs FROM border_app")
        daily = retention.Daily()
        assert daily.tick(rt, policy, bio.galleries) is None
        assert daily.failed_on == retention.today(rt)
        assert "retention run for" in caplog.text
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("GRANT INSERT ON retention_runs TO border_app")
        assert daily.tick(rt, policy, bio.galleries) is None  # not again today
        assert retention.Daily().tick(rt, policy, bio.galleries) is not None
