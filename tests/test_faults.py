"""Faults: the store going away under load, and a process killed between a commit and its
gallery update. Nothing acknowledged is lost, nothing is doubled."""

import os
import subprocess
import sys
import time
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
        kiosk = new_key_headers(rt, "kiosk")
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
from border.app import migration_dirs
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
            [sys.executable, "-c", KILLED_AFTER_COMMIT, str(ROOT.parent / "shared/faces/biden.jpg"),
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
