"""An IVF retrain beside the live index against the retrain under the write lock (DESIGN §13).

    uv run python benchmarks/bench_retrain.py --size 1000000 --json retrain-1m.json

A gallery is built at a quarter of ``--size`` (so trained there, as a growing service's
gallery was), grown to ``--size`` without a retrain, and searched at a steady rate; then
enrollment starts (``--add-rate`` captures a second, one capture in ten erased), and its
first capture takes the gallery past four times its trained size, which starts a retrain.
Border's mode (``beside``, the default) trains a new index in a background thread and
swaps it in; the peer (``inline``, the behaviour before) retrains inside that add under
the write lock.

Searches are open-loop: single queries (mated and non-mated probes in turn) are scheduled
at ``--rate`` a second whatever happens, and a search's latency runs from the moment it
was scheduled to its answer, so a search held behind the write lock counts for the whole
time it waited (a closed loop would hide it). Rows give the latency of searches scheduled
before, during and after the retrain, the retrain's time, closed-loop single searches (as
bench_identify.py times them) on the grown index before and on the new one after, and
after the swap the checks: the gallery's ids are exactly what was enrolled and not erased,
and rank-1 recall of the mated probes against exact search.
"""

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import faiss
import numpy as np
import numpy.typing as npt

from benchmarks import bench_identify, common
from matching.gallery import Gallery

MODES = ("beside", "inline")
PEER = "inline"
COLUMNS = (
    "mode",
    "size",
    "trained_before",
    "trained_after",
    "retrain_s",
    "searches_during",
    "p50_during_ms",
    "p99_during_ms",
    "max_during_ms",
    "p99_before_ms",
    "p99_after_ms",
    "closed_p99_grown_ms",
    "closed_p99_retrained_ms",
    "adds_during",
    "max_add_ms",
    "recall_at_1",
    "ids_ok",
    "ratio_p99_during",
    "ratio_max_during",
)
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Row = common.Row


@dataclass
class Options:
    size: int = 1_000_000
    rate: float = 100.0
    add_rate: float = 20.0
    before_s: float = 10.0
    after_s: float = 10.0
    probes: int = 2000
    closed: int = 1000
    seed: int = 1
    modes: tuple[str, ...] = MODES
    quiet: bool = False


@dataclass
class Timeline:
    """When each scheduled search was due and answered (perf_counter seconds)."""

    due: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)

    def latencies_ms(self, start: float, end: float) -> list[float]:
        return [
            1000.0 * (d - s) for s, d in zip(self.due, self.done, strict=True) if start <= s < end
        ]


def _searcher(
    gallery: Gallery, queries: F32, rate: float, stop: threading.Event, line: Timeline
) -> None:
    """One query every 1/rate s, on schedule: a late one starts at once, counted from
    when it was due."""
    started = time.perf_counter()
    n = 0
    while not stop.is_set():
        due = started + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        gallery.search(queries[n % len(queries)], 1)
        line.due.append(due)
        line.done.append(time.perf_counter())
        n += 1


@dataclass
class Writes:
    added: list[int] = field(default_factory=list)
    erased: list[int] = field(default_factory=list)
    add_at: list[float] = field(default_factory=list)  # when each add was called
    add_ms: list[float] = field(default_factory=list)
    first_done: threading.Event = field(default_factory=threading.Event)


def _enroller(
    gallery: Gallery,
    pop: bench_identify.Population,
    *,
    first: int,
    erasable: I64,
    rate: float,
    stop: threading.Event,
    writes: Writes,
) -> None:
    """Captures ``first``, ``first + 1``, … one at a time at ``rate`` a second; every
    tenth add also erases one of ``erasable``."""
    row = first
    while not stop.is_set() and row < len(pop.ids):
        at = time.perf_counter()
        gallery.add(pop.ids[row : row + 1], pop.vectors[row : row + 1])
        writes.add_at.append(at)
        writes.add_ms.append(1000.0 * (time.perf_counter() - at))
        writes.added.append(int(pop.ids[row]))
        writes.first_done.set()
        if len(writes.added) % 10 == 0 and len(writes.erased) < len(erasable):
            gone = int(erasable[len(writes.erased)])
            gallery.remove([gone])
            writes.erased.append(gone)
        row += 1
        stop.wait(max(0.0, at + 1.0 / rate - time.perf_counter()))


def _say(opts: Options, text: str) -> None:
    if not opts.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _ms(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def run_mode(mode: str, pop: bench_identify.Population, opts: Options) -> Row:
    trained = opts.size // 4
    grown = 4 * trained
    out = common.stream(opts.quiet)
    gallery = Gallery(bench_identify.DIM, kind="ivf", background_retrain=mode == "beside")
    with common.ticking(f"{mode}: index {trained:,} templates", stream=out):
        gallery.add(pop.ids[:trained], pop.vectors[:trained])
    progress = common.Progress(f"{mode}: grow to {grown:,}", grown, stream=out)
    for lo in range(trained, grown, 50_000):
        hi = min(grown, lo + 50_000)
        gallery.add(pop.ids[lo:hi], pop.vectors[lo:hi])
        progress.update(hi)
    progress.finish()
    assert gallery.trained_size == trained
    assert not gallery.retraining

    mated_here = np.isin(pop.mated_ids, pop.ids[:grown])
    queries = np.empty((2 * int(mated_here.sum()), bench_identify.DIM), np.float32)
    queries[0::2] = pop.mated[mated_here]
    queries[1::2] = pop.strangers[: int(mated_here.sum())]
    # Erased during the run: enrolled early and never a mated probe's mate.
    erasable = np.setdiff1d(pop.ids[trained : 2 * trained], pop.mated_ids)[:10_000]

    grown_p50, grown_p99 = _closed_loop(gallery, queries, opts.closed, f"{mode}: grown", out)
    stop, halt = threading.Event(), threading.Event()
    line, writes = Timeline(), Writes()
    searcher = threading.Thread(
        target=_searcher, args=(gallery, queries, opts.rate, stop, line), daemon=True
    )
    started = time.perf_counter()
    searcher.start()
    halt.wait(opts.before_s)
    enroller = threading.Thread(
        target=_enroller,
        args=(gallery, pop),
        kwargs={
            "first": grown,
            "erasable": erasable,
            "rate": opts.add_rate,
            "stop": stop,
            "writes": writes,
        },
        daemon=True,
    )
    trigger = time.perf_counter()
    enroller.start()
    with common.ticking(f"{mode}: retrain at {grown + 1:,}", stream=out):
        writes.first_done.wait()
        gallery.wait_for_retrain()
        swapped = time.perf_counter()
    halt.wait(opts.after_s)
    stop.set()
    searcher.join()
    enroller.join()
    ended = time.perf_counter()
    retrained_p50, retrained_p99 = _closed_loop(
        gallery, queries, opts.closed, f"{mode}: retrained", out
    )

    during = line.latencies_ms(trigger, swapped)
    before = line.latencies_ms(started, trigger)
    after = line.latencies_ms(swapped, ended)
    adds_during = [ms for at, ms in zip(writes.add_at, writes.add_ms, strict=True) if at < swapped]
    expected = (set(pop.ids[:grown].tolist()) | set(writes.added)) - set(writes.erased)
    present = gallery.ids()
    ids_ok = len(present) == len(expected) == len(gallery) and set(present.tolist()) == expected
    recall = _recall(gallery, pop, present)
    row: Row = {
        "mode": mode,
        "size": grown,
        "trained_before": trained,
        "trained_after": gallery.trained_size,
        "nlist_after": gallery.nlist,
        "nprobe_after": gallery.probed,
        "retrain_s": round(swapped - trigger, 2),
        "searches_during": len(during),
        "p50_during_ms": _ms(during, 50),
        "p99_during_ms": _ms(during, 99),
        "max_during_ms": round(max(during), 3) if during else None,
        "p50_before_ms": _ms(before, 50),
        "p99_before_ms": _ms(before, 99),
        "p50_after_ms": _ms(after, 50),
        "p99_after_ms": _ms(after, 99),
        "closed_p50_grown_ms": grown_p50,
        "closed_p99_grown_ms": grown_p99,
        "closed_p50_retrained_ms": retrained_p50,
        "closed_p99_retrained_ms": retrained_p99,
        "adds_during": len(adds_during),
        "max_add_ms": round(max(adds_during), 3) if adds_during else None,
        "adds": len(writes.added),
        "erased": len(writes.erased),
        "recall_at_1": recall,
        "ids_ok": ids_ok,
        "rate": opts.rate,
        "threads": faiss.omp_get_max_threads(),
        "ratio_p99_during": None,
        "ratio_max_during": None,
    }
    _say(
        opts,
        f"  {mode}: retrain {row['retrain_s']} s, during p50 {row['p50_during_ms']} / p99 "
        f"{row['p99_during_ms']} / max {row['max_during_ms']} ms, recall {recall}, "
        f"ids {'ok' if ids_ok else 'WRONG'}",
    )
    return row


def _closed_loop(
    gallery: Gallery, queries: F32, count: int, label: str, out: TextIO
) -> tuple[float | None, float | None]:
    """p50 and p99 of ``count`` single searches one after another (as bench_identify.py
    measures them): the gallery's own speed, without the open loop's queueing."""
    if not count:
        return None, None
    for q in queries[:20]:
        gallery.search(q, 1)
    progress = common.Progress(f"{label} single queries", count, stream=out)
    seconds = []
    for n in range(count):
        start = time.perf_counter()
        gallery.search(queries[n % len(queries)], 1)
        seconds.append(time.perf_counter() - start)
        progress.advance()
    progress.finish()
    return (
        round(common.percentile_ms(seconds, 50), 3),
        round(common.percentile_ms(seconds, 99), 3),
    )


def _recall(gallery: Gallery, pop: bench_identify.Population, present: I64) -> float:
    """Rank-1 recall of the mated probes whose mate is enrolled, against exact search over
    what the gallery holds."""
    keep = np.isin(pop.ids, present)
    held = bench_identify.Population(
        ids=pop.ids[keep],
        vectors=pop.vectors[keep],
        mated=pop.mated,
        mated_ids=pop.mated_ids,
        strangers=pop.strangers,
    )
    mated = pop.mated[np.isin(pop.mated_ids, present)]
    exact, _ = bench_identify.exact_rank1(held, mated)
    found, _ = gallery.search(mated, 1)
    return round(bench_identify.rank1_recall(found[:, 0], exact), 4)


def add_ratios(rows: list[Row]) -> None:
    """The peer's (inline) latency during the retrain over each beside row's."""
    peer = next((r for r in rows if r["mode"] == PEER), None)
    if peer is None:
        return
    for row in rows:
        if row["mode"] == PEER:
            continue
        for ratio, key in (
            ("ratio_p99_during", "p99_during_ms"),
            ("ratio_max_during", "max_during_ms"),
        ):
            mine, theirs = row[key], peer[key]
            if isinstance(mine, float) and isinstance(theirs, float) and mine > 0:
                row[ratio] = round(theirs / mine, 1)


def run(opts: Options) -> list[Row]:
    unknown = set(opts.modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    grown = 4 * (opts.size // 4)
    # Templates for the enrollment during the run: more than it can add.
    extra = int(opts.add_rate * (opts.before_s + opts.after_s + 600)) + 100
    pop = bench_identify.make_population(
        grown + extra,
        mated=opts.probes,
        strangers=opts.probes,
        seed=opts.seed,
        quiet=opts.quiet,
    )
    rows = [run_mode(mode, pop, opts) for mode in opts.modes]
    add_ratios(rows)
    return rows


def render(rows: list[Row], facts: dict[str, str]) -> str:
    return "\n".join(
        [
            "machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()),
            "",
            common.table(rows, COLUMNS),
        ]
    )


def parse(argv: Sequence[str] | None = None) -> tuple[Options, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size", type=int, default=1_000_000, help="templates when it retrains")
    p.add_argument("--rate", type=float, default=100.0, help="searches scheduled a second")
    p.add_argument("--add-rate", type=float, default=20.0, help="captures enrolled a second")
    p.add_argument("--before", type=float, default=10.0, help="seconds searched before")
    p.add_argument("--after", type=float, default=10.0, help="seconds searched after the swap")
    p.add_argument("--probes", type=int, default=2000, help="mated probes (and strangers)")
    p.add_argument(
        "--closed",
        type=int,
        default=1000,
        help="single searches one after another on the grown and the retrained index",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--modes", default=",".join(MODES), help=f"comma list of {MODES}")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    a = p.parse_args(argv)
    opts = Options(
        size=a.size,
        rate=a.rate,
        add_rate=a.add_rate,
        before_s=a.before,
        after_s=a.after,
        probes=a.probes,
        closed=a.closed,
        seed=a.seed,
        modes=tuple(m for m in a.modes.split(",") if m),
        quiet=a.quiet,
    )
    return opts, a.json


def main(argv: Sequence[str] | None = None) -> list[Row]:
    opts, json_path = parse(argv)
    rows = run(opts)
    facts = bench_identify.machine_facts()
    print(render(rows, facts))
    if json_path is not None:
        for row in rows:
            row.update({"cpu": facts["cpu"], "nproc": facts["nproc"], "faiss": facts["faiss"]})
        common.write_json(json_path, rows)
    return rows


if __name__ == "__main__":
    main()
