"""The command line's start (DESIGN §15: `border --help` in under a second).

    uv run python benchmarks/bench_cli.py [--runs 10] [--json cli.json]

Each run is a new Python process, timed from spawn to exit, as an operator's shell would
see it (the interpreter already in the page cache after a first, untimed run). Border's
rows: `border --help`, a group's help, and `border policy check` on the shipped policy (a
command that reads settings and a file, and loads neither the service nor the face
model). The peer is the floor of any Typer command line: a Typer app of one command
answering `--help`; a bare interpreter is shown too. Each row names the heavy modules its
process imported (none is the point): the tests assert the same of `border.cli` without
timing anything.
"""

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import common

TARGET_S = 1.0
HEAVY = ("faiss", "dlib", "face_recognition", "cv2", "numpy", "fastapi", "psycopg")
POLICY = Path(__file__).resolve().parents[1] / "visa" / "default_policy.toml"

# Runs ``argv`` as ``python -m border`` would, then names the heavy modules it imported;
# the exit of --help (SystemExit 0) is caught so the check still runs.
_BORDER = """
import sys
sys.argv = ["border", *sys.argv[1:]]
from border.cli import app
try:
    app()
except SystemExit as end:
    code = end.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""

_PEER = """
import sys
import typer
app = typer.Typer()
@app.command()
def hello(name: str) -> None:
    print(name)
try:
    app(["--help"])
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""

CASES: tuple[tuple[str, str, str, list[str]], ...] = (
    ("border", "border --help", _BORDER, ["--help"]),
    ("border", "border db --help", _BORDER, ["db", "--help"]),
    ("border", "border policy check (shipped policy)", _BORDER, ["policy", "check", str(POLICY)]),
    ("peer", "typer app of one command, --help", _PEER, []),
    ("floor", "python -c pass", "", []),
)


def _once(code: str, args: list[str]) -> tuple[float, str]:
    argv = [sys.executable, "-c", code.format(heavy=HEAVY) if code else "pass", *args]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args) or 'peer'} failed:\n{done.stderr[-2000:]}")
    heavy = next((line[6:] for line in done.stderr.splitlines() if line.startswith("HEAVY=")), "")
    return elapsed, heavy


def measure(runs: int) -> list[dict[str, common.Cell]]:
    rows: list[dict[str, common.Cell]] = []
    for side, label, code, args in CASES:
        _once(code, args)  # untimed: the files into the page cache
        times, heavy = [], ""
        for _ in range(runs):
            elapsed, heavy = _once(code, args)
            times.append(elapsed)
        rows.append(
            {
                "side": side,
                "command": label,
                "median_s": statistics.median(times),
                "max_s": max(times),
                "heavy_imports": heavy or ("none" if code else "-"),
            }
        )
    peer = next(float(r["median_s"]) for r in rows if r["side"] == "peer")  # type: ignore[arg-type]
    for row in rows:
        row["x_peer"] = float(row["median_s"]) / peer  # type: ignore[arg-type]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    rows = measure(args.runs)
    print(common.table(rows, ["side", "command", "median_s", "max_s", "x_peer", "heavy_imports"]))
    worst = max(float(r["max_s"]) for r in rows if r["side"] == "border")  # type: ignore[arg-type]
    verdict = "within" if worst < TARGET_S else "OVER"
    print(f"\nslowest border run {worst:.2f} s: {verdict} the {TARGET_S:.0f} s target")
    if args.json:
        common.write_json(args.json, {"machine": common.machine(), "runs": args.runs, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
