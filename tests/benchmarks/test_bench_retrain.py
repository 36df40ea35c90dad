"""benchmarks/bench_retrain.py at a tiny size: both modes run, their rows carry what
RESULTS.md reports, and after each retrain the gallery holds exactly what was enrolled and
not erased. Speed is never asserted here (benchmarks/README.md)."""

import json
from pathlib import Path

import pytest

from benchmarks import bench_retrain as bench
from benchmarks import common


class TestRun:
    def test_tiny_run_of_both_modes_writes_the_rows(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        out = tmp_path / "retrain.json"
        argv = [
            "--size",
            "8000",
            "--rate",
            "200",
            "--add-rate",
            "50",
            "--probes",
            "100",
            "--closed",
            "30",
        ]
        bench.main([*argv, "--before", "0.3", "--after", "0.3", "--json", str(out), "--quiet"])

        rows = json.loads(out.read_text(encoding="utf-8"))
        assert [r["mode"] for r in rows] == ["beside", "inline"]
        for row in rows:
            assert set(bench.COLUMNS) <= row.keys(), row
            assert (row["size"], row["trained_before"]) == (8000, 2000)
            # The retrain ran (on what the gallery held when it began) and lost nothing.
            assert row["trained_after"] > 8000
            assert row["ids_ok"] is True
            assert row["adds"] >= 1
            assert row["recall_at_1"] >= 0.95
            assert row["retrain_s"] > 0
            assert row["p99_before_ms"] > 0
        beside, inline = rows
        assert inline["ratio_p99_during"] is None
        if beside["p99_during_ms"] is not None and inline["p99_during_ms"] is not None:
            expected = round(inline["p99_during_ms"] / beside["p99_during_ms"], 1)
            assert beside["ratio_p99_during"] == expected
        assert "| beside" in capsys.readouterr().out

    def test_an_unknown_mode_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown modes"):
            bench.run(bench.Options(size=8000, modes=("sideways",)))


class TestTimeline:
    def test_latency_runs_from_when_a_search_was_due(self) -> None:
        line = bench.Timeline(due=[0.0, 1.0, 2.0], done=[0.5, 3.0, 3.1])
        assert line.latencies_ms(0.0, 2.0) == pytest.approx([500.0, 2000.0])
        assert line.latencies_ms(2.0, 9.0) == pytest.approx([1100.0])


class TestRatios:
    def test_the_peer_over_each_beside_row(self) -> None:
        rows: list[common.Row] = [
            {"mode": "beside", "p99_during_ms": 2.0, "max_during_ms": 10.0},
            {"mode": "inline", "p99_during_ms": 80_000.0, "max_during_ms": 90_000.0},
        ]
        bench.add_ratios(rows)
        assert (rows[0]["ratio_p99_during"], rows[0]["ratio_max_during"]) == (40_000.0, 9000.0)
        assert "ratio_p99_during" not in rows[1]
