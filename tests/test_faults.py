"""Faults: the store going away under load, and a process killed between a commit and its
gallery update. Nothing acknowledged is lost, nothing is doubled."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from border.app import create_app
from core.settings import Settings
from enrollment.templates import FaceModel
from tests.conftest import runtime_of
from tests.factories import new_key_headers, photo, td3

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def own_server(tmp_path: Path, face_model: FaceModel) -> Iterator[TestClient]:
    """An app on an embedded PostgreSQL of its own, which this test may stop."""
    settings = Settings(data_dir=tmp_path, pool_min_size=1, pool_timeout_s=1.0)
    with TestClient(create_app(settings, face_model), raise_server_exceptions=False) as client:
        yield client


def cross(client: TestClient, headers: dict[str, str], direction: str) -> tuple[int, str | None]:
    response = client.post(
        "/v1/crossings",
        headers=headers,
        files={"image": ("live.jpg", photo("obama2.jpg"), "image/jpeg")},
        data={
            "mrz": td3(nationality="UTO", number="N12345678"),
            "direction": direction,
            "border_point": "UTO-AIR-1",
        },
    )
    body = response.json()
    return response.status_code, body.get(
        "crossing_id"
    ) if response.status_code == 201 else body.get("error")


class TestStoreRestart:
    def test_crossings_fail_fast_while_down_and_nothing_is_lost_or_doubled(
        self, own_server: TestClient
    ) -> None:
        client = own_server
        rt = runtime_of(client)
        server = rt.store.server
        assert server is not None
        kiosk = new_key_headers(rt, "kiosk", "UTO-AIR-1")
        acknowledged: list[str] = []
        directions = iter(["entry", "exit"] * 20)

        def send() -> tuple[int, str | None]:
            started = time.monotonic()
            status, value = cross(client, kiosk, next(directions))
            if status == 201:
                assert value is not None
                acknowledged.append(value)
            else:
                assert (status, value) == (503, "unavailable")
                assert time.monotonic() - started < 5, "a request waited too long on a dead store"
            return status, value

        assert [send()[0] for _ in range(4)] == [201] * 4
        server.stop()  # type: ignore[attr-defined]
        assert [send()[0] for _ in range(3)] == [503] * 3
        server.start()  # type: ignore[attr-defined]
        # The pool reconnects in the background, with backoff: no restart of the service.
        deadline = time.monotonic() + 60
        while send()[0] != 201:
            assert time.monotonic() < deadline, "the service did not recover"
            time.sleep(0.5)
        assert [send()[0] for _ in range(3)] == [201] * 3
        with rt.pool.connection() as conn:
            stored = [str(r[0]) for r in conn.execute("SELECT id FROM crossings ORDER BY at")]
        assert sorted(stored) == sorted(acknowledged)


KILLED_AFTER_COMMIT = """
import os, signal, sys
from border.schema import migration_dirs
from core import auth
from core.db import transaction
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture, service
from visa.mrz import parse_mrz
settings = Settings()
rt = Runtime.start(settings, migration_dirs())
bio = service.Biometrics.start(rt)
data = open(sys.argv[1], "rb").read()
taken = capture.analyse(bio.model, data, settings)
with transaction(rt.pool) as conn:
    created, seq = service.enroll_in(
        rt, bio, conn, auth.command_line("fault test"),
        document=parse_mrz(sys.argv[2]), image=data, capture=taken,
    )
print(created.person_id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before the gallery or a snapshot
"""


class TestKilledAfterCommit:
    def test_every_committed_template_is_found_after_restart(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        assert settings.database_url is not None
        env = {
            **os.environ,
            "BORDER_DATA_DIR": str(settings.data_dir),
            "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
        }
        with TestClient(create_app(settings, face_model)) as client:
            officer = new_key_headers(runtime_of(client), "officer")
        # The snapshot written at that shutdown predates the killed process's enrollment.
        done = subprocess.run(
            [sys.executable, "-c", KILLED_AFTER_COMMIT, str(ROOT / "samples/faces/biden.jpg"),
             td3(number="K00000001")],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == -9, done.stderr[-2000:]
        person_id = done.stdout.strip()
        with TestClient(create_app(settings, face_model)) as client:
            found = client.post(
                "/v1/identify",
                headers=officer,
                files={"image": ("probe.jpg", photo("biden.jpg"), "image/jpeg")},
            ).json()
        assert [c["person_id"] for c in found["candidates"]] == [person_id]


STARTED_TOGETHER = """
import sys, time
from pathlib import Path
from border.schema import migration_dirs
from core.runtime import Runtime
from core.settings import Settings
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
while not go.exists():
    time.sleep(0.001)
rt = Runtime.start(Settings(), migration_dirs())
print("started", flush=True)
rt.close()
"""


def _scrape(base: str) -> str:
    with urllib.request.urlopen(f"{base}/metrics") as response:
        return str(response.read().decode())


def _check_metrics_sum_across_workers(base: str) -> None:
    """Requests spread over the workers are counted once each, whichever worker answers
    the scrape; each worker gives its own process figures."""
    for _ in range(20):
        with urllib.request.urlopen(f"{base}/health/live") as response:
            assert response.status == 200
    counted = 'border_http_requests_total{method="GET",path="/health/live",status="200"} 20.0'
    deadline = time.monotonic() + 15
    pids: set[str] = set()
    while True:
        scrapes = [_scrape(base) for _ in range(6)]
        pids = {
            line.split('pid="')[1].split('"')[0]
            for text in scrapes
            for line in text.splitlines()
            if line.startswith("process_start_time_seconds{")
        }
        if all(counted in text for text in scrapes) and len(pids) == 2:
            break
        assert time.monotonic() < deadline, (pids, [t[:3000] for t in scrapes])
        time.sleep(0.5)
    assert "border_db_pool_connections" in scrapes[0]
    assert 'border_gallery_templates{gallery="enrolled"} 0.0' in scrapes[0]


class TestFirstStartTogether:
    def test_processes_starting_on_a_new_data_dir_at_once_all_start(self, tmp_path: Path) -> None:
        """What `border serve --workers N` does on a new data directory: every worker
        starts the embedded server, creates the database and roles, migrates and writes
        the key file at the same moment."""
        data_dir = tmp_path / "var"
        env = {**os.environ, "BORDER_DATA_DIR": str(data_dir)}
        go = tmp_path / "go"
        ready = [tmp_path / f"ready{i}" for i in range(3)]
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", STARTED_TOGETHER, str(flag), str(go)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for flag in ready
        ]
        try:
            deadline = time.monotonic() + 120
            while not all(flag.exists() for flag in ready):
                assert time.monotonic() < deadline, "the processes did not get ready"
                time.sleep(0.01)
            go.touch()
            results = [(p.wait(timeout=180), *p.communicate()) for p in processes]
        finally:
            for process in processes:
                process.kill()
        for code, out, err in results:
            assert (code, out.strip()) == (0, "started"), err[-3000:]

    def test_serve_with_two_workers_starts_on_a_new_data_dir_and_stops_its_server(
        self, tmp_path: Path
    ) -> None:
        data_dir = tmp_path / "var"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "border", "serve", "--workers", "2", "--port", str(port)],
            env={**os.environ, "BORDER_DATA_DIR": str(data_dir)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline, body = time.monotonic() + 180, b""
            while not body:
                assert process.poll() is None, process.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the service did not start"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
                        body = response.read()
                except OSError:
                    time.sleep(0.2)
            assert body == b'{"status":"ok"}'
            base = f"http://127.0.0.1:{port}"
            _check_metrics_sum_across_workers(base)
            request = urllib.request.Request(
                f"{base}/v1/persons", headers={"X-Request-ID": "ops-check.1"}
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request)
            assert refused.value.code == 401
            assert refused.value.headers["x-request-id"] == "ops-check.1"
        finally:
            process.terminate()
            code = process.wait(timeout=60)
        assert code in (0, -signal.SIGTERM)
        # Off a terminal the log is one JSON object a line, uvicorn's lines included, and
        # the access line of a request carries its id.
        lines = [json.loads(line) for line in process.communicate()[1].splitlines() if line]
        assert {"ts", "level", "logger", "msg"} <= set(lines[0])
        assert any(line["logger"].startswith("uvicorn") for line in lines)
        (access,) = [line for line in lines if line.get("request_id") == "ops-check.1"]
        assert (access["route"], access["status"]) == ("/v1/persons", 401)
        # The last process to let go of the embedded server, the supervisor, stopped it.
        postmaster = data_dir / "pg" / "postmaster.pid"
        deadline = time.monotonic() + 20
        while postmaster.exists():
            assert time.monotonic() < deadline, "the embedded server was left running"
            time.sleep(0.2)
