"""benchmarks/bench_statistics.py at a tiny size, through its functions and its command
line: the aggregates it fills count every generated crossing once (and once per reason),
Border's answers agree with the peer's GROUP BY scan, and the table and the JSON carry the
same rows. Nothing is timed here (benchmarks/README.md)."""

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from benchmarks import bench_statistics as bench
from border import statistics_store as store
from enrollment.templates import FaceModel

CROSSINGS = 20_000
RUNS = 2


@pytest.fixture
def result(
    database_url: str, tmp_path: Path, face_model: FaceModel, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], str]:
    report = bench.run(
        CROSSINGS, runs=RUNS, database_url=database_url, root=tmp_path,
        face_model=face_model, quiet=True,
    )  # fmt: skip
    return report, capsys.readouterr().out


def test_the_aggregates_count_every_crossing_and_the_answers_agree(
    result: tuple[dict[str, Any], str], database_url: str
) -> None:
    report, _ = result
    assert report["agree"] == {
        "month,border_point": True, "nationality": True, "nationality,age_band": True,
    }  # fmt: skip
    with psycopg.connect(database_url) as conn:
        sums = conn.execute(
            "SELECT 'daily', cuboid, sum(count) FROM statistics_daily GROUP BY cuboid"
            " UNION ALL SELECT 'monthly', cuboid, sum(count) FROM statistics_monthly"
            " GROUP BY cuboid"
        ).fetchall()
        peer_table = conn.execute("SELECT to_regclass('bench_crossings')").fetchone()
    by_cuboid = {(table, cuboid): int(total) for table, cuboid, total in sums}
    with_reasons = by_cuboid[("daily", 1)]
    # Every crossing once in each cuboid without the reason; once per reason code in each
    # cuboid with it (those with two reasons twice).
    assert with_reasons > CROSSINGS
    for (_, cuboid), total in by_cuboid.items():
        expected = with_reasons if "reason" in store.CUBOIDS[cuboid] else CROSSINGS
        assert total == expected, cuboid
    assert len(by_cuboid) == 2 * len(store.CUBOIDS)
    assert peer_table == (None,)  # the peer's table is dropped from a given database
    held = report["aggregate_rows"]
    assert held["statistics_monthly"] < held["statistics_daily"]
    rows = report["rows"]
    assert len(rows) == 3
    assert all(set(row) == set(bench.COLUMNS) for row in rows)
    # At this size the peer may be as fast as Border: the ratio is a figure, not a claim.
    assert all(row["border_p50_ms"] > 0 and row["peer_p50_ms"] > 0 for row in rows)
    assert all(row["ratio"] is not None and row["ratio"] >= 0 for row in rows)


def test_generated_crossings_keep_their_counts_through_the_keys() -> None:
    rng = np.random.default_rng(3)
    (keys, counts), (_, reason_counts), columns = bench.generate(5000, rng, io.StringIO())
    assert int(counts.sum()) == 5000
    assert len(np.unique(keys)) == len(keys)
    firsts = sum(len(c[0]) for c in columns)
    seconds = sum(int((c[-1] >= 0).sum()) for c in columns)
    assert int(reason_counts.sum()) == firsts + seconds
    cols = columns[0][:8]
    assert np.array_equal(bench.decode(bench.encode(cols))[2], cols[2])


def test_the_command_line_prints_the_table_and_writes_the_json(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "statistics.json"
    argv = ["--crossings", "3000", "--runs", "1", "--database-url", database_url]
    assert bench.main([*argv, "--root", str(tmp_path), "--quiet", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text(encoding="utf-8"))
    for row in report["rows"]:
        assert f"| {row['query']}" in printed
    assert "GET /v1/statistics over a year of 3,000 crossings" in printed
    assert "target: a year within 200 ms" in printed
