"""benchmarks/bench_alerts_import.py at a tiny size, through its command line: it loads
every row of the list it generates, re-imports it adding nothing, finds each listed
document at lookup and no unlisted one, and prints and writes its rows. Nothing is timed
here (benchmarks/README.md)."""

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from benchmarks import bench_alerts_import as bench

ROWS = 300
PEER = 20
LOOKUPS = 50
Report = tuple[dict[str, Any], str]


@pytest.fixture
def result(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Report:
    out = tmp_path / "alerts.json"
    argv = ["--rows", str(ROWS), "--peer-sample", str(PEER), "--lookups", str(LOOKUPS)]
    argv += ["--database-url", database_url, "--root", str(tmp_path), "--quiet"]
    assert bench.main([*argv, "--json", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8")), capsys.readouterr().out


class TestRun:
    def test_every_row_is_loaded_once_and_the_peer_adds_its_sample(
        self, result: Report, database_url: str
    ) -> None:
        report, _ = result
        assert report["import"]["rows"] == report["import"]["added"] == ROWS
        assert report["reimport"]["rows"] == ROWS
        assert report["reimport"]["added"] == 0
        assert report["loaded"] == {"document_alerts": ROWS, "alert_indexes": ROWS}
        total = ROWS + PEER
        assert report["after_peer"] == {"document_alerts": total, "alert_indexes": total}
        assert report["peer"]["rows"] == PEER
        with psycopg.connect(database_url) as conn:
            events: dict[str, int] = dict(
                conn.execute(
                    "SELECT action, count(*) FROM audit_events"
                    " WHERE action IN ('alerts.import', 'alerts.add') GROUP BY action"
                ).fetchall()
            )
        assert events == {"alerts.import": 2, "alerts.add": PEER}

    def test_lookups_find_each_listed_document_and_no_other(self, result: Report) -> None:
        report, _ = result
        lookups = report["lookups"]
        assert lookups["listed"]["queries"] == lookups["listed"]["found"] == LOOKUPS
        assert lookups["unlisted"]["queries"] == LOOKUPS
        assert lookups["unlisted"]["found"] == 0

    def test_the_table_and_the_json_carry_the_same_rows(self, result: Report) -> None:
        report, printed = result
        rows = report["rows"]
        assert isinstance(rows, list)
        assert all(set(row) == set(bench.COLUMNS) for row in rows)
        measures = [str(row["measure"]) for row in rows]
        assert measures[0] == f"import of {ROWS} rows, total s"
        assert "re-import of the same file (0 added), total s" in measures
        assert sum("crossing lookup alert_hits" in m for m in measures) == 4
        by = {str(row["measure"]).strip(): row for row in rows}
        total = by[f"import of {ROWS} rows, total s"]
        assert total["border"]
        assert total["peer"]
        assert total["ratio"]
        assert by["alerts added"]["border"] == ROWS
        assert by["alerts added"]["peer"] == PEER
        for row in rows:
            assert f"| {row['measure']}" in printed
        assert "border alerts import, N = 300 rows" in printed
        assert '"document_alerts": 300' in printed


def test_generated_documents_are_distinct_and_well_formed(tmp_path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    listed = bench.documents(500, random.Random(1), seen)
    others = bench.documents(100, random.Random(1), seen)  # the same stream: all repeats
    assert len({(s, n) for s, n, _ in listed + others}) == 600
    for state, number, category in listed + others:
        assert len(state) == 3
        assert state.isalpha()
        assert state.isupper()
        assert len(number) == 9
        assert number.isalnum()
        assert number == number.upper()
        assert category in bench.CATEGORIES
    path = tmp_path / "list.csv"
    bench.write_list(path, listed, io.StringIO())
    with path.open(newline="") as f:
        lines = list(csv.reader(f))
    assert tuple(lines[0]) == ("issuing_state", "document_number", "category")
    assert [tuple(line) for line in lines[1:]] == listed
