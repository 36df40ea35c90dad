"""Tiny runs of the service benchmarks (crossing, enrollment, restart) on a store of 200
captures: each runs end to end and produces rows with the expected keys. Nothing is timed
here; speed is measured by the scripts themselves (benchmarks/RESULTS.md)."""

import argparse
from pathlib import Path

import pytest

from benchmarks import bench_crossing, bench_enroll, bench_restart, populate
from enrollment.templates import FaceModel

SIZE = 200


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, face_model: FaceModel) -> Path:
    """A population cache shared by the three benchmarks, built once."""
    folder = tmp_path_factory.mktemp("bench")
    populate.ensure(SIZE, model=face_model, root=folder, log=lambda _: None)
    return folder


class TestPopulate:
    def test_the_store_holds_every_capture_and_its_snapshot(
        self, root: Path, face_model: FaceModel
    ) -> None:
        pop = populate.ensure(SIZE, model=face_model, root=root, log=lambda _: None)
        assert pop.size == SIZE
        assert sum(len(ids) for ids, _ in pop.templates()) == SIZE
        assert all(path.exists() for path in pop.snapshot_files)
        assert len(pop.travellers) == SIZE // 4


class TestCrossingBenchmark:
    def test_both_kinds_of_crossing_give_stage_and_total_rows(
        self, root: Path, face_model: FaceModel
    ) -> None:
        result = bench_crossing.run(
            SIZE, returning=3, first_time=2, warmup=1, root=root, model=face_model, quiet=True
        )
        rows = result["rows"]
        assert rows
        assert all(set(row) == set(bench_crossing.COLUMNS) for row in rows)
        assert {row["scenario"] for row in rows} == {"returning", "first-time"}
        totals = [row for row in rows if str(row["stage"]).startswith("server-side total")]
        assert len(totals) == 6
        assert all(row["border_ms"] and row["peer_ms"] and row["ratio"] for row in totals)
        assert result["decisions"]["first_time"].get("admit") == 2


class TestEnrollBenchmark:
    def test_in_process_and_served_enrollments_give_rows(
        self, root: Path, face_model: FaceModel
    ) -> None:
        result = bench_enroll.run(
            SIZE,
            requests=3,
            warmup=1,
            seconds=2.0,
            warmup_s=0.5,
            served=((1, 1),),
            peer_captures=2,
            root=root,
            model=face_model,
            quiet=True,
        )
        rows = result["rows"]
        assert all(set(row) == set(bench_enroll.COLUMNS) for row in rows)
        measures = [str(row["measure"]) for row in rows]
        assert any("sustained captures/s" in m for m in measures)
        assert result["served"][0]["enrolled"] > 0
        assert set(result["served"][0]["statuses"]) == {"201"}


class TestRestartBenchmark:
    def test_snapshot_and_rebuild_starts_give_rows(self, root: Path, face_model: FaceModel) -> None:
        result = bench_restart.run(
            SIZE, repeats=1, rebuild_repeats=1, cli=False, root=root, model=face_model, quiet=True
        )
        rows = result["rows"]
        assert all(set(row) == set(bench_restart.COLUMNS) for row in rows)
        first = rows[0]
        assert first["snapshot"]
        assert first["rebuild"]
        assert first["ratio"]
        assert result["runs"]["snapshot"][0]["candidates"] >= 0


class TestServedRuns:
    def test_workers_by_clients(self) -> None:
        assert bench_enroll.parse_served("1x2, 2x4,3x6") == ((1, 2), (2, 4), (3, 6))

    @pytest.mark.parametrize("text", ["2", "2x", "x4", "0x4", "2x0", "two x four"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(argparse.ArgumentTypeError, match="WORKERSxCLIENTS"):
            bench_enroll.parse_served(text)
