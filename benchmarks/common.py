"""Helpers shared by the benchmark scripts: progress on stderr, timing percentiles, a plain
text table, JSON output and the facts about the machine a result was measured on."""

import io
import json
import os
import platform
import socket
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

Cell = str | int | float | bool | None
Row = dict[str, Cell]


class Progress:
    """``label: done/total (pct) elapsed, eta`` on one stderr line, at most every
    ``every_s`` seconds; ``finish()`` ends the line with the total time."""

    def __init__(
        self, label: str, total: int, *, every_s: float = 2.0, stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.every_s = every_s
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.perf_counter()
        self._shown = 0.0
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.perf_counter()
        if now - self._shown < self.every_s and done < self.total:
            return
        self._shown = now
        elapsed = now - self.started
        eta = elapsed * (self.total - done) / done if done else float("nan")
        self.stream.write(
            f"\r{self.label}: {done:,}/{self.total:,} ({100 * done / self.total:.0f}%)"
            f" {elapsed:.0f}s, eta {eta:.0f}s   "
        )
        self.stream.flush()

    def advance(self, step: int = 1) -> None:
        self.update(self.done + step)

    def finish(self) -> float:
        elapsed = time.perf_counter() - self.started
        self.stream.write(f"\r{self.label}: {self.total:,} done in {elapsed:.1f}s{' ' * 20}\n")
        self.stream.flush()
        return elapsed


@contextmanager
def ticking(label: str, *, every_s: float = 10.0, stream: TextIO | None = None) -> Iterator[None]:
    """For one long blocking call that reports nothing itself (a faiss train, a CREATE
    INDEX): prints the elapsed time every ``every_s`` seconds until the block ends. The
    call must release the GIL, as faiss and psycopg do."""
    out = stream if stream is not None else sys.stderr
    stop = threading.Event()
    started = time.perf_counter()

    def tick() -> None:
        while not stop.wait(every_s):
            out.write(f"\r{label}: {time.perf_counter() - started:.0f}s ")
            out.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out.write(f"\r{label}: done in {time.perf_counter() - started:.1f}s{' ' * 20}\n")
        out.flush()


def stream(quiet: bool = False) -> TextIO:
    """Where progress goes: stderr, or a sink when ``quiet``."""
    return io.StringIO() if quiet else sys.stderr


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation) of durations in seconds, in ms."""
    if not seconds:
        raise ValueError("no samples")
    return float(np.percentile(np.asarray(seconds, dtype=np.float64), q) * 1000.0)


def fmt(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return value


def table(rows: Sequence[Mapping[str, Cell]], columns: Sequence[str]) -> str:
    """Rows as a Markdown table (readable as plain text too): text left, numbers right."""
    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), int | float) or row.get(c) is None for row in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if n else ("-" * (w + 2))
            for w, n in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(columns)), rule, *(line(r) for r in cells)])


def write_json(path: Path, payload: object) -> None:
    """Pretty JSON, written atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def machine() -> dict[str, str]:
    """What a result depends on: cores, CPU model, library versions, BLAS overrides."""
    model = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts = {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        facts[name] = os.environ.get(name, "(unset)")
    return facts


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, for a server a benchmark starts."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
