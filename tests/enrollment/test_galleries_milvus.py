"""The service with its galleries in Milvus (DESIGN §13): Milvus Lite on a file for one
process, a real Milvus standalone server shared by several. The records store stays the
truth: erasures leave Milvus, restarts reconcile, a rebuild refills it, and Milvus going
away answers 503 `unavailable` until it is back, without a restart and losing nothing."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from border.app import create_app
from border.cli import app as cli
from border.schema import migration_dirs
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture, store
from enrollment.galleries import open_templates
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from matching.milvus import MilvusGallery, connect
from tests.conftest import runtime_of
from tests.factories import enroll, new_key_headers, photo, td3
from tests.milvus import Relay, free_port

ROOT = Path(__file__).resolve().parents[2]
Headers = dict[str, dict[str, str]]


def milvus_settings(settings: Settings, uri: str, **more: object) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:10]}"  # each test its own collections on a shared server
    return settings.model_copy(
        update={
            "gallery_backend": "milvus",
            "milvus_uri": uri,
            "milvus_collection_prefix": prefix,
            **more,
        }
    )


def keys_for(client: TestClient) -> Headers:
    rt = runtime_of(client)
    return {role: new_key_headers(rt, role) for role in ("consular", "officer", "admin")}


def identify(client: TestClient, headers: Headers, picture: str) -> tuple[int, Any]:
    """The status and the candidates' person ids (or the error code)."""
    response = client.post(
        "/v1/identify",
        headers=headers["officer"],
        files={"image": ("probe.jpg", photo(picture), "image/jpeg")},
    )
    body = response.json()
    if response.status_code != 200:
        return response.status_code, body["error"]
    return 200, [c["person_id"] for c in body["candidates"]]


def bio_of(client: TestClient) -> Biometrics:
    bio: Biometrics = client.app_state["bio"]
    return bio


@pytest.fixture
def lite(settings: Settings, face_model: FaceModel) -> Iterator[TestClient]:
    lite_settings = milvus_settings(settings, str(settings.data_dir / "milvus.db"))
    with TestClient(create_app(lite_settings, face_model), raise_server_exceptions=False) as c:
        yield c


class TestMilvusLite:
    def test_enroll_dedup_identify_erase_and_restart(
        self, lite: TestClient, settings: Settings, face_model: FaceModel
    ) -> None:
        headers = keys_for(lite)
        obama = enroll(lite, headers["consular"], "obama.jpg", td3(number="A00000001"))
        biden = enroll(lite, headers["consular"], "biden.jpg", td3(number="B00000002"))
        galleries = bio_of(lite).galleries
        assert isinstance(galleries.enrolled, MilvusGallery)
        assert len(galleries.enrolled) == 2
        assert not (settings.data_dir / "galleries" / "enrolled.snap").exists()

        # The same face under another document is a duplicate; nothing is written.
        again = lite.post(
            "/v1/persons",
            headers=headers["consular"],
            files={"image": ("c.jpg", photo("obama2.jpg"), "image/jpeg")},
            data={"mrz": td3(number="C00000003", surname="OTHER")},
        )
        assert again.status_code == 409, again.json()
        assert again.json()["candidates"][0]["person_id"] == str(obama)
        assert len(galleries.enrolled) == 2

        # Open-set: a stranger is no match, a new photo of an enrolled person is.
        assert identify(lite, headers, "lin-manuel-miranda.png") == (200, [])
        assert identify(lite, headers, "obama3.jpg") == (200, [str(obama)])

        # Erasure takes the template out of Milvus in the same flow.
        assert lite.delete(f"/v1/persons/{biden}", headers=headers["admin"]).status_code == 204
        assert len(galleries.enrolled) == 1
        assert identify(lite, headers, "biden.jpg") == (200, [])

    def test_a_restart_reconciles_milvus_with_the_store(
        self, settings: Settings, face_model: FaceModel
    ) -> None:
        lite_settings = milvus_settings(settings, str(settings.data_dir / "milvus.db"))
        with TestClient(create_app(lite_settings, face_model)) as first:
            headers = keys_for(first)
            obama = enroll(first, headers["consular"], "obama.jpg", td3(number="A00000001"))
            enroll(first, headers["consular"], "biden.jpg", td3(number="B00000002"))
            enrolled = bio_of(first).galleries.enrolled
            lost = max(enrolled.ids().tolist())
            # Behind the service's back: Milvus loses one template and gains a stray one.
            enrolled.remove([lost])
            stray = capture.analyse(face_model, photo("obama2.jpg"), settings).face.template
            enrolled.add([999_999], stray)
        with TestClient(create_app(lite_settings, face_model)) as second:
            galleries = bio_of(second).galleries
            assert lost in galleries.enrolled
            assert 999_999 not in galleries.enrolled
            assert len(galleries.enrolled) == 2
            headers = keys_for(second)
            assert identify(second, headers, "obama3.jpg") == (200, [str(obama)])
            assert identify(second, headers, "biden.jpg")[1] != []

    def test_index_rebuild_refills_milvus_and_other_commands_never_open_it(
        self, settings: Settings, face_model: FaceModel, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        lite_settings = milvus_settings(settings, str(settings.data_dir / "milvus.db"))
        with TestClient(create_app(lite_settings, face_model)) as c:
            headers = keys_for(c)
            enroll(c, headers["consular"], "obama.jpg", td3(number="A00000001"))
            enroll(c, headers["consular"], "biden.jpg", td3(number="B00000002"))
            bio_of(c).galleries.enrolled.remove(bio_of(c).galleries.enrolled.ids())
        for name, value in {
            "BORDER_DATA_DIR": str(settings.data_dir),
            "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
            "BORDER_GALLERY_BACKEND": "milvus",
            "BORDER_MILVUS_URI": lite_settings.milvus_uri,
            "BORDER_MILVUS_COLLECTION_PREFIX": lite_settings.milvus_collection_prefix,
        }.items():
            monkeypatch.setenv(name, str(value))
        runner = CliRunner()
        doctor = runner.invoke(cli, ["doctor"])
        assert "galleries    ok    in Milvus at" in doctor.output, doctor.output
        rebuilt = runner.invoke(cli, ["index", "rebuild"])
        assert rebuilt.exit_code == 0, rebuilt.output
        assert "galleries rebuilt: 2 templates (milvus-flat), 0 on the watchlist" in rebuilt.output
        client = connect(str(lite_settings.milvus_uri))
        gallery = MilvusGallery(
            client, f"{lite_settings.milvus_collection_prefix}_enrolled", lite=True
        )
        assert len(gallery) == 2
        gallery.close()


class TestMilvusServer:
    def test_going_away_answers_503_and_coming_back_needs_no_restart(
        self, settings: Settings, face_model: FaceModel, milvus_server: str
    ) -> None:
        relay = Relay(int(milvus_server.rsplit(":", 1)[1]))
        shared = milvus_settings(settings, relay.uri, milvus_timeout_s=2)
        try:
            with TestClient(create_app(shared, face_model), raise_server_exceptions=False) as c:
                headers = keys_for(c)
                obama = enroll(c, headers["consular"], "obama.jpg", td3(number="A00000001"))
                rt = runtime_of(c)
                galleries = bio_of(c).galleries
                (seq,) = galleries.enrolled.ids().tolist()
                relay.cut()
                assert identify(c, headers, "obama3.jpg") == (503, "unavailable")
                refused = c.post(
                    "/v1/persons",
                    headers=headers["consular"],
                    files={"image": ("c.jpg", photo("biden.jpg"), "image/jpeg")},
                    data={"mrz": td3(number="B00000002")},
                )
                assert (refused.status_code, refused.json()["error"]) == (503, "unavailable")
                with rt.pool.connection() as conn:
                    assert conn.execute("SELECT count(*) FROM persons").fetchone() == (1,)

                # What reaches the store while Milvus is away is made good when it is back:
                # a removal (as an erasure makes) is kept and retried...
                galleries.remove([seq])
                relay.restore()
                with rt.pool.connection() as conn:
                    galleries.catch_up(conn, rt.keys)
                assert seq not in galleries.enrolled
                # ...and a committed capture Milvus could not take is added from the store.
                relay.cut()
                with rt.pool.connection() as conn:
                    seqs, templates = open_templates(rt.keys, store.templates_by_seq(conn, [seq]))
                galleries.add(seqs, templates, set())
                relay.restore()
                with rt.pool.connection() as conn:
                    galleries.catch_up(conn, rt.keys)
                assert seq in galleries.enrolled
                assert identify(c, headers, "obama3.jpg") == (200, [str(obama)])
        finally:
            relay.restore()
            relay.close()

    def test_two_processes_share_one_gallery(
        self, tmp_path: Path, milvus_server: str, settings: Settings
    ) -> None:
        """Two `border serve` processes on one store and one Milvus: a face enrolled
        through one is a duplicate through the other at once."""
        prefix = f"t{uuid.uuid4().hex[:10]}"
        env = {
            **os.environ,
            "BORDER_DATA_DIR": str(settings.data_dir),
            "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),  # type: ignore[union-attr]
            "BORDER_GALLERY_BACKEND": "milvus",
            "BORDER_MILVUS_URI": milvus_server,
            "BORDER_MILVUS_COLLECTION_PREFIX": prefix,
        }
        ports = [free_port(), free_port()]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "border", "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for port in ports
        ]
        try:
            for process, port in zip(processes, ports, strict=True):
                wait_ready(process, port)
            rt = Runtime.start(settings, migration_dirs())
            try:
                consular = new_key_headers(rt, "consular")
            finally:
                rt.close()
            first = post_person(ports[0], consular, "obama.jpg", td3(number="A00000001"))
            assert first[0] == 201, first
            second = post_person(ports[1], consular, "obama2.jpg", td3(number="C00000003"))
            assert second[0] == 409, second
            client = connect(milvus_server)
            assert len(MilvusGallery(client, f"{prefix}_enrolled", lite=False)) == 1
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)


def wait_ready(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 180
    while True:
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the service did not start"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready") as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)


def post_person(port: int, headers: dict[str, str], picture: str, mrz: str) -> tuple[int, bytes]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="mrz"\r\n\r\n{mrz}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="c.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo(picture)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/persons",
        data=body,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


class TestStart:
    def run_serve(self, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "border", "serve", "--port", str(free_port()), *args],
            env={**os.environ, "BORDER_DATA_DIR": str(tmp_path / "var"),
                 "BORDER_GALLERY_BACKEND": "milvus", **env},
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    def test_an_unreachable_milvus_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        done = self.run_serve(
            tmp_path,
            BORDER_MILVUS_URI=f"http://user:secret@127.0.0.1:{free_port()}",
            BORDER_MILVUS_TIMEOUT_S="2",
        )
        assert done.returncode == 2, done.stderr[-2000:]
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert "does not answer" in line
        assert "BORDER_MILVUS_URI" in line
        assert "secret" not in done.stderr

    def test_milvus_lite_refuses_several_workers(self, tmp_path: Path) -> None:
        done = self.run_serve(tmp_path, "--workers", "2")
        assert done.returncode == 2, done.stderr[-2000:]
        assert "Milvus Lite" in done.stderr
        assert "--workers 1" in done.stderr
