"""``border alerts import FILE.csv``: a lost-and-stolen document list of N rows loaded into
a fresh store (DESIGN §10: 100,000 rows "in seconds", with progress).

    uv run python benchmarks/bench_alerts_import.py [--rows 100000] [--json alerts.json]

The list is generated first: N distinct documents, each a random issuing state (three
letters A-Z), a random document number (nine characters A-Z 0-9) and a category drawn from
``lost_stolen_document`` and ``invalidated_document``, under the header
``issuing_state,document_number,category``. It is loaded by
``enrollment.alerts.import_document_list``, the function the command runs, on a fresh
embedded PostgreSQL in a scratch directory (or an empty migrated database given by
``--database-url``), timed as a whole and in its two phases, each measured by wrapping the
product's function where the import calls it (as bench_crossing.py does):

- ``read``: the file read, every row checked (``DocumentAlertIn``), its blind index
  computed (HMAC) and its contents sealed (AES-256-GCM under the alert key);
- ``copy``: ``store.import_document_alerts``, a binary COPY into a staging table and one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into ``alerts`` and ``alert_indexes``;
  the rest of the transaction (the audit event and the commit) is given as its own row.

The same file is then imported again (every row already active: 0 added), and a
crossing's lookup is timed: ``store.alert_hits(conn, [index])`` for one document's blind
index, on documents of the list (one hit each) and on documents not on it (none), the
HMAC computed beforehand, one query at a time on one connection.

The peer is the naive loader: one ``enrollment.alerts.add`` per row with a
``DocumentAlertIn``, what ``POST /v1/alerts`` runs without its HTTP layer (seal, blind
index, one INSERT per alert and per index, an audit event, one transaction per row), on a
sample of rows not in the file (``--peer-sample``), after the import; its time per row is
extrapolated to N. Ratio = peer / Border.
"""

import argparse
import csv
import json
import random
import shutil
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, TextIO, cast

from pydantic import SecretStr

from benchmarks import common
from border.schema import migration_dirs
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from enrollment import alerts, indexes, models, store
from enrollment.service import Biometrics

TARGET_ROWS: Final = 100_000
TARGET_S: Final = 10.0  # "in seconds": taken as under ten
CATEGORIES: Final = ("lost_stolen_document", "invalidated_document")
_LETTERS: Final = string.ascii_uppercase
_NUMBER_CHARS: Final = string.ascii_uppercase + string.digits
COLUMNS: Final = ("measure", "border", "peer", "ratio")

Document = tuple[str, str, str]


def documents(count: int, rng: random.Random, avoid: set[tuple[str, str]]) -> list[Document]:
    """``count`` documents (state, number, category), distinct from each other and from
    ``avoid`` (which receives them)."""
    out: list[Document] = []
    while len(out) < count:
        state = "".join(rng.choices(_LETTERS, k=3))
        number = "".join(rng.choices(_NUMBER_CHARS, k=9))
        if (state, number) in avoid:
            continue
        avoid.add((state, number))
        out.append((state, number, rng.choice(CATEGORIES)))
    return out


def write_list(path: Path, rows: list[Document], out: TextIO) -> None:
    """The CSV an operator would import, header first."""
    progress = common.Progress("writing the list", len(rows), stream=out)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(alerts.CSV_COLUMNS)
        for i in range(0, len(rows), 10_000):
            writer.writerows(rows[i : i + 10_000])
            progress.update(min(i + 10_000, len(rows)))
    progress.finish()


@contextmanager
def scratch_runtime(database_url: str | None, root: Path | None) -> Iterator[Runtime]:
    """A Runtime on a fresh embedded store in a scratch directory (removed afterwards), or
    on the given empty database with its key file in the scratch directory."""
    folder = Path(tempfile.mkdtemp(prefix="bench-alerts-", dir=root))
    settings = Settings(
        data_dir=folder,
        database_url=None if database_url is None else SecretStr(database_url),
        master_key=None,
        log_level="WARNING",
    )
    try:
        rt = Runtime.start(settings, migration_dirs())
        try:
            yield rt
        finally:
            rt.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def phases_timed(
    label: str, out: TextIO, read_done: Callable[[], None]
) -> Iterator[dict[str, float]]:
    """The import's two phases timed where ``import_document_list`` calls them;
    ``read_done`` is called when the file has been read, checked and sealed."""
    timings: dict[str, float] = {}
    read, copy = alerts.read_document_list, store.import_document_alerts

    def timed_read(*args: Any, **kwargs: Any) -> list[store.AlertRow]:
        started = time.perf_counter()
        try:
            return read(*args, **kwargs)
        finally:
            timings["read"] = time.perf_counter() - started
            read_done()

    def timed_copy(*args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        try:
            with common.ticking(f"{label}: COPY and insert", stream=out):
                return copy(*args, **kwargs)
        finally:
            timings["copy"] = time.perf_counter() - started

    alerts.read_document_list = timed_read
    store.import_document_alerts = timed_copy
    try:
        yield timings
    finally:
        alerts.read_document_list = read
        store.import_document_alerts = copy


def import_once(rt: Runtime, path: Path, label: str, out: TextIO) -> dict[str, float | int]:
    """One ``border alerts import`` of ``path``: its counts and timings in seconds."""
    principal = auth.command_line("alerts import")
    progress: common.Progress | None = None

    def report(done: int, total: int) -> None:
        nonlocal progress
        if progress is None:
            progress = common.Progress(f"{label}: checking and sealing", total, stream=out)
        progress.update(done)

    def read_done() -> None:
        if progress is not None:
            progress.finish()

    with phases_timed(label, out, read_done) as timings:
        started = time.perf_counter()
        read, added = alerts.import_document_list(rt, principal, path, report)
        total = time.perf_counter() - started
    return {
        "rows": read,
        "added": added,
        "total_s": total,
        "read_s": timings["read"],
        "copy_s": timings["copy"],
        "rest_s": total - timings["read"] - timings["copy"],
    }


def lookups(
    rt: Runtime, listed: list[Document], unlisted: list[Document], out: TextIO
) -> dict[str, dict[str, float | int]]:
    """``alert_hits`` for one document's blind index at a time: p50/p99 in ms and how many
    alerts were found, for documents on the list and documents not on it."""
    result: dict[str, dict[str, float | int]] = {}
    with rt.pool.connection() as conn:
        store.alert_hits(conn, [b"warm-up"])
        for name, docs in (("listed", listed), ("unlisted", unlisted)):
            keys = [indexes.document_index(rt.keys, s, n) for s, n, _ in docs]
            progress = common.Progress(f"lookups, {name} documents", len(keys), stream=out)
            seconds: list[float] = []
            found = 0
            for key in keys:
                started = time.perf_counter()
                hits = store.alert_hits(conn, [key])
                seconds.append(time.perf_counter() - started)
                found += len(hits)
                progress.advance()
            progress.finish()
            result[name] = {
                "queries": len(keys),
                "found": found,
                "p50_ms": common.percentile_ms(seconds, 50),
                "p99_ms": common.percentile_ms(seconds, 99),
            }
    return result


def naive_peer(rt: Runtime, sample: list[Document], out: TextIO) -> dict[str, float | int]:
    """The same kind of rows added one by one through the service call POST /v1/alerts
    makes (one transaction, one INSERT per alert and per index, one audit event each)."""
    principal = auth.command_line("alerts naive loader")
    # A document alert never touches the face model or the galleries.
    no_biometrics = cast(Biometrics, None)
    progress = common.Progress("peer: one alerts.add per row", len(sample), stream=out)
    started = time.perf_counter()
    for state, number, category in sample:
        body = models.DocumentAlertIn(
            kind="document",
            issuing_state=state,
            document_number=number,
            category=category,  # type: ignore[arg-type]
        )
        alerts.add(rt, no_biometrics, principal, body)
        progress.advance()
    elapsed = time.perf_counter() - started
    progress.finish()
    return {"rows": len(sample), "total_s": elapsed, "per_row_s": elapsed / len(sample)}


def count_document_alerts(rt: Runtime) -> dict[str, int]:
    with rt.pool.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM alerts WHERE kind = 'document' AND active),"
            " (SELECT count(*) FROM alert_indexes)"
        ).fetchone()
    assert row is not None
    return {"document_alerts": int(row[0]), "alert_indexes": int(row[1])}


def _ratio(peer: float | None, border: float) -> float | None:
    return None if peer is None or border <= 0 else round(peer / border, 1)


def result_rows(
    n: int,
    first: dict[str, float | int],
    again: dict[str, float | int],
    peer: dict[str, float | int] | None,
    looked: dict[str, dict[str, float | int]],
) -> list[common.Row]:
    per_row = float(first["total_s"]) / n
    peer_row = None if peer is None else float(peer["per_row_s"])
    peer_total = None if peer_row is None else peer_row * n
    rows: list[common.Row] = [
        {
            "measure": f"import of {n:,} rows, total s",
            "border": round(float(first["total_s"]), 2),
            "peer": None if peer_total is None else round(peer_total, 1),
            "ratio": _ratio(peer_total, float(first["total_s"])),
        },
        {
            "measure": "  read, check and seal the file, s",
            "border": round(float(first["read_s"]), 2),
            "peer": None,
            "ratio": None,
        },
        {
            "measure": "  COPY and insert (store.import_document_alerts), s",
            "border": round(float(first["copy_s"]), 2),
            "peer": None,
            "ratio": None,
        },
        {
            "measure": "  audit event and commit, s",
            "border": round(float(first["rest_s"]), 3),
            "peer": None,
            "ratio": None,
        },
        {
            "measure": "rows per second",
            "border": round(n / float(first["total_s"])),
            "peer": None if peer_row is None else round(1.0 / peer_row),
            "ratio": _ratio(peer_total, float(first["total_s"])),
        },
        {
            "measure": "time per row, ms",
            "border": round(1000 * per_row, 3),
            "peer": None if peer_row is None else round(1000 * peer_row, 2),
            "ratio": None if peer_row is None else round(peer_row / per_row, 1),
        },
        {
            "measure": "alerts added",
            "border": int(first["added"]),
            "peer": None if peer is None else int(peer["rows"]),
            "ratio": None,
        },
        {
            "measure": f"re-import of the same file ({int(again['added'])} added), total s",
            "border": round(float(again["total_s"]), 2),
            "peer": None,
            "ratio": None,
        },
    ]
    for name, figures in looked.items():
        for q in ("p50", "p99"):
            rows.append(
                {
                    "measure": f"crossing lookup alert_hits, {name} document, {q} ms",
                    "border": round(float(figures[f"{q}_ms"]), 3),
                    "peer": None,
                    "ratio": None,
                }
            )
    return rows


def run(
    rows: int = TARGET_ROWS,
    *,
    peer_sample: int = 2000,
    lookups_each: int = 1000,
    seed: int = 0,
    database_url: str | None = None,
    root: Path | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    out = common.stream(quiet)
    rng = random.Random(seed)
    seen: set[tuple[str, str]] = set()
    listed = documents(rows, rng, seen)
    others = documents(peer_sample + lookups_each, rng, seen)
    with scratch_runtime(database_url, root) as rt:
        csv_path = Path(rt.settings.data_dir) / "lost-and-stolen.csv"
        write_list(csv_path, listed, out)
        first = import_once(rt, csv_path, "import", out)
        loaded = count_document_alerts(rt)
        again = import_once(rt, csv_path, "re-import", out)
        probes = rng.sample(listed, min(lookups_each, rows))
        looked = lookups(rt, probes, others[:lookups_each], out)
        peer = naive_peer(rt, others[lookups_each:], out) if peer_sample else None
        after_peer = count_document_alerts(rt)
        csv_bytes = csv_path.stat().st_size
    total = float(first["total_s"])
    return {
        "benchmark": "alerts_import",
        "machine": common.machine(),
        "params": {
            "rows": rows,
            "peer_sample": peer_sample,
            "lookups_each": lookups_each,
            "seed": seed,
            "store": "given database" if database_url else "fresh embedded PostgreSQL",
            "csv_bytes": csv_bytes,
        },
        "import": first,
        "reimport": again,
        "loaded": loaded,
        "after_peer": after_peer,
        "lookups": looked,
        "peer": peer,
        "target": {
            "rows": TARGET_ROWS,
            "seconds": TARGET_S,
            "measured_s": round(total * TARGET_ROWS / rows, 2),
            "met": total * TARGET_ROWS / rows <= TARGET_S,
        },
        "rows": result_rows(rows, first, again, peer, looked),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="`border alerts import` of a lost-and-stolen list")
    parser.add_argument("--rows", type=int, default=TARGET_ROWS, help="rows in the list (N)")
    parser.add_argument(
        "--peer-sample", type=int, default=2000, help="rows the naive peer adds (0: no peer)"
    )
    parser.add_argument("--lookups", type=int, default=1000, help="lookups per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--database-url", default=None, help="an empty migrated database (else embedded, fresh)"
    )
    parser.add_argument("--root", type=Path, default=None, help="scratch folder's parent")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.peer_sample < 0 or args.lookups < 1:
        parser.error("--rows and --lookups must be at least 1, --peer-sample at least 0")
    result = run(
        args.rows,
        peer_sample=args.peer_sample,
        lookups_each=args.lookups,
        seed=args.seed,
        database_url=args.database_url,
        root=args.root,
        quiet=args.quiet,
    )
    print(
        f"\nborder alerts import, N = {args.rows:,} rows (peer: one alerts.add per row on "
        f"{args.peer_sample:,} rows, extrapolated to N; ratio = peer / Border)"
    )
    print(common.table(result["rows"], COLUMNS))
    t = result["target"]
    print(
        f"\ntarget: {t['rows']:,} rows in seconds (taken as <= {t['seconds']:.0f} s):"
        f" {t['measured_s']} s{'' if args.rows == t['rows'] else ' (scaled)'},"
        f" {'met' if t['met'] else 'NOT met'}"
    )
    print(f"loaded: {json.dumps(result['loaded'])}")
    print(f"machine: {json.dumps(result['machine'])}")
    if args.json:
        common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
