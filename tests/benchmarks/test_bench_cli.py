"""benchmarks/bench_cli.py with one run a command: every command it starts runs, and
none of Border's loads a heavy module. Nothing is timed here (benchmarks/README.md)."""

import json
from pathlib import Path

import pytest

from benchmarks import bench_cli


def test_rows_for_border_the_peer_and_the_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.json"
    assert bench_cli.main(["--runs", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [r["side"] for r in rows] == ["border", "border", "border", "peer", "floor"]
    assert all(r["heavy_imports"] == "none" for r in rows if r["side"] != "floor")
    assert next(r for r in rows if r["side"] == "peer")["x_peer"] == 1.0
    printed = capsys.readouterr().out
    assert "border --help" in printed
    assert "target" in printed
