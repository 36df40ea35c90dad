"""The store is the truth: galleries survive restarts, crashes and erasures."""

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks import populate
from border.cli import app as cli
from border.schema import migration_dirs
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture, galleries, service, store
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from matching.gallery import Gallery
from tests.factories import photo, td3
from visa.mrz import parse_mrz

ADMIN = auth.command_line("test")
PROBES = ("obama3.jpg", "biden.jpg", "lin-manuel-miranda.png")


@pytest.fixture
def rt(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.start(settings, migration_dirs())
    yield runtime
    runtime.close()


def enroll(rt: Runtime, bio: Biometrics, picture: str, number: str) -> UUID:
    data = photo(picture)
    return service.enroll_document(
        rt,
        bio,
        ADMIN,
        document=parse_mrz(td3(number=number)),
        image=data,
        capture=capture.analyse(bio.model, data, rt.settings),
    ).person_id


def answers(rt: Runtime, bio: Biometrics) -> list[list[tuple[str, float]]]:
    out = []
    for probe in PROBES:
        result = service.identify(rt, bio, ADMIN, image=photo(probe), k=5)
        out.append([(str(c.person_id), c.distance) for c in result.candidates])
    return out


def seq_of(bio: Biometrics, before: set[int]) -> int:
    (seq,) = set(bio.galleries.enrolled.ids().tolist()) - before
    return int(seq)


class TestRestart:
    def test_stop_and_restart_give_identical_results(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        enroll(rt, bio, "biden.jpg", "B00000002")
        before = answers(rt, bio)
        assert [len(found) for found in before] == [1, 1, 0]
        bio.close(rt)
        assert (rt.settings.data_dir / "galleries" / "enrolled.snap").exists()
        again = Biometrics.start(rt, face_model)
        assert answers(rt, again) == before
        assert again.galleries.watermark == bio.galleries.watermark

    def test_snapshot_is_encrypted(self, rt: Runtime, face_model: FaceModel) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        bio.close(rt)
        blob = (rt.settings.data_dir / "galleries" / "enrolled.snap").read_bytes()
        assert b"BGAL1" not in blob
        template = capture.analyse(face_model, photo("obama.jpg"), rt.settings).face.template
        unit = (template / np.linalg.norm(template)).astype(np.float32).tobytes()
        assert unit[:64] not in blob

    def test_a_capture_committed_before_a_crash_is_found(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        bio.close(rt)
        crashed = Biometrics.start(rt, face_model)
        ids = set(crashed.galleries.enrolled.ids().tolist())
        biden = enroll(rt, crashed, "biden.jpg", "B00000002")
        # The process dies after the commit, before its gallery (or a snapshot) has it.
        crashed.galleries.remove([seq_of(crashed, ids)])
        crashed.galleries.save(rt.keys)
        restarted = Biometrics.start(rt, face_model)
        found = service.identify(rt, restarted, ADMIN, image=photo("biden.jpg"), k=1)
        assert [c.person_id for c in found.candidates] == [biden]

    def test_a_capture_newer_than_the_snapshot_is_replayed(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        bio.close(rt)
        other = Biometrics.start(rt, face_model)
        miranda = enroll(rt, other, "lin-manuel-miranda.png", "C00000003")  # never saved
        restarted = Biometrics.start(rt, face_model)
        assert len(restarted.galleries.enrolled) == 2
        found = service.identify(rt, restarted, ADMIN, image=photo("lin-manuel-miranda.png"), k=1)
        assert [c.person_id for c in found.candidates] == [miranda]

    def test_an_erasure_after_the_snapshot_is_never_a_hit(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        bio = Biometrics.start(rt, face_model)
        obama = enroll(rt, bio, "obama.jpg", "A00000001")
        bio.close(rt)
        other = Biometrics.start(rt, face_model)
        service.erase(rt, other, ADMIN, obama)
        # ``bio`` never heard of the erasure; the store still answers for it.
        assert service.identify(rt, bio, ADMIN, image=photo("obama3.jpg"), k=5).candidates == []
        restarted = Biometrics.start(rt, face_model)
        assert len(restarted.galleries.enrolled) == 0

    def test_an_unreadable_snapshot_means_a_rebuild(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        bio.close(rt)
        path: Path = rt.settings.data_dir / "galleries" / "enrolled.snap"
        path.write_bytes(b"garbage" * 100)
        restarted = Biometrics.start(rt, face_model)
        assert len(restarted.galleries.enrolled) == 1


class TestTwoProcesses:
    """Two Biometrics on one store stand for two worker processes (`border serve
    --workers 2`): what one commits, the other sees at its next search."""

    def test_a_watchlist_entry_made_elsewhere_is_hit_here(
        self, rt: Runtime, face_model: FaceModel
    ) -> None:
        here = Biometrics.start(rt, face_model)
        elsewhere = Biometrics.start(rt, face_model)
        person = enroll(rt, elsewhere, "obama.jpg", "A00000001")
        probe = capture.analyse(face_model, photo("obama2.jpg"), rt.settings).face.template

        def hits() -> list[UUID]:
            with rt.pool.connection() as conn:
                return [c.person_id for c in service.watchlist_hits(rt, here, conn, probe)]

        assert hits() == []
        entry = service.watchlist_add(rt, elsewhere, ADMIN, person, reason="test").entry_id
        assert hits() == [person]
        assert len(here.galleries.watchlist) == 1
        service.watchlist_remove(rt, elsewhere, ADMIN, entry)
        assert hits() == []
        assert len(here.galleries.watchlist) == 0


class TestIndexRebuild:
    def test_rebuild_command(self, rt: Runtime, face_model: FaceModel, settings: Settings) -> None:
        bio = Biometrics.start(rt, face_model)
        enroll(rt, bio, "obama.jpg", "A00000001")
        enroll(rt, bio, "biden.jpg", "B00000002")
        assert settings.database_url is not None
        env = {
            "BORDER_DATA_DIR": str(settings.data_dir),
            "BORDER_DATABASE_URL": settings.database_url.get_secret_value(),
        }
        result = CliRunner().invoke(cli, ["index", "rebuild"], env=env)
        assert result.exit_code == 0, result.output
        assert "galleries rebuilt: 2 templates (flat), 0 on the watchlist" in result.stdout
        assert "loading captures: 2/2 captures (100%)" in result.stderr
        restarted = Biometrics.start(rt, face_model)
        assert answers(rt, restarted) == answers(rt, bio)


class TestRebuildPastTheIvfSize:
    """A store written by the benchmarks' populator (sealed as enrollment seals) and read
    back a few pages at a time."""

    def test_every_capture_comes_back_and_the_index_is_trained_once(
        self, tmp_path: Path, face_model: FaceModel, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pop = populate.ensure(1_100, model=face_model, root=tmp_path, log=lambda _: None)
        monkeypatch.setattr(galleries, "_BATCH", 250)
        settings = pop.settings(gallery_ivf_min_size=1000)
        runtime = Runtime.start(settings, migration_dirs())
        try:
            rebuilt = galleries.Galleries(settings)
            with runtime.pool.connection() as conn:
                assert rebuilt.rebuild(conn, runtime.keys) == 1_100
                watched = store.watchlisted_capture_seqs(conn)
        finally:
            runtime.close()
        assert isinstance(rebuilt.enrolled, Gallery)
        assert rebuilt.enrolled.index_kind == "ivf"
        # Built once at the final size, not trained at 1,000 and grown past it.
        assert rebuilt.enrolled.trained_size == 1_100
        assert watched
        assert sorted(rebuilt.watchlist.ids().tolist()) == sorted(watched)
        assert rebuilt.watermark == max(rebuilt.enrolled.ids().tolist())
        ids, vectors = next(pop.templates())
        found, dists = rebuilt.enrolled.search(vectors[:200], 1)
        # Synthetic persons with two captures have them 0.25 apart: itself is nearest.
        np.testing.assert_array_equal(found[:, 0], ids[:200])
        assert np.all(dists[:, 0] < 0.02)
