"""``GET /v1/statistics`` over a year of 10M crossings (DESIGN §12: a year within 200 ms).

    uv run python benchmarks/bench_statistics.py [--crossings 10000000] [--json stats.json]

N synthetic crossings over one year (2025) are generated with numpy, in blocks of a
million, with realistic spreads: a seasonal day curve (a summer peak, busier weekends),
20 border points and 150 nationalities with Zipf-like weights, entries and exits half and
half, decisions 95.5% admit, 3% referral still open, 1% refuse, 0.5% protection (with its
flags), one or two reason codes on every crossing not admitted outright, visa types
(none 70%, C 25%, D 4%, A 1%) and eight age bands. Each block is counted in numpy by its
keys, as the aggregates count it; the counts are then written through
``border.statistics_store.add_bulk`` (COPY into a staging table, then the upsert
``INSERT ... ON CONFLICT DO UPDATE SET count = count + EXCLUDED.count`` that every
crossing runs), on a fresh embedded PostgreSQL (or an empty migrated database given by
``--database-url``), followed by ``VACUUM ANALYZE`` (autovacuum's job in service).

Border is then timed through the real app (``create_app`` under Starlette's TestClient,
a statistician's key, the audit event included): ``GET /v1/statistics`` for the whole
year grouped by ``month,border_point``, by ``nationality`` (each read from a small
cuboid) and by ``nationality,age_band`` (which no small cuboid holds: read from cuboid 0,
every key), ``--runs`` times each after a warm-up, p50 and p95.

The peer answers the same questions the way a system without aggregates would: a
``GROUP BY`` scan of a crossings-like table of the N crossings (day, border point,
nationality, direction, decision, reasons, visa type, age band, protection), loaded with
COPY and analysed, queried straight through psycopg (no HTTP, no audit, no suppression:
it has less to do per query). Ratio = peer / Border. Both answers are compared: every cell
Border shows has the peer's count, and both have the same cells.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, TextIO

import numpy as np
import numpy.typing as npt
import psycopg
from fastapi.testclient import TestClient
from psycopg import sql
from pydantic import SecretStr

from benchmarks import common
from border import models as border_models
from border import service as border_service
from border import statistics_store as store
from border.app import create_app
from border.schema import migration_dirs
from core import auth, db
from core.runtime import Runtime
from core.settings import Settings
from enrollment.templates import FaceModel

TARGET_CROSSINGS: Final = 10_000_000
TARGET_MS: Final = 200.0
YEAR: Final = 2025
BLOCK: Final = 1_000_000
COPY_BATCH: Final = 250_000
COLUMNS: Final = ("query", "border_p50_ms", "border_p95_ms", "peer_p50_ms", "peer_p95_ms", "ratio")
QUERIES: Final = (
    ("month,border_point", ("month", "border_point")),
    ("nationality", ("nationality",)),
    # No small cuboid holds these two: read from cuboid 0, every key of every crossing.
    ("nationality,age_band", ("nationality", "age_band")),
)

Ints = npt.NDArray[np.int64]

DAYS: Final = [date(YEAR, 1, 1) + timedelta(days=i) for i in range(365)]
POINTS: Final = [f"P{i:02d}-{kind}" for i, kind in enumerate(["AIR", "LAND", "SEA", "RAIL"] * 5)]
_LETTERS: Final = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
DIRECTIONS: Final = ["entry", "exit"]
DECISIONS: Final = ["admit", "refer", "refuse", "protection"]
DECISION_P: Final = [0.955, 0.03, 0.01, 0.005]
VISAS: Final = ["none", "C", "D", "A"]
VISA_P: Final = [0.70, 0.25, 0.04, 0.01]
AGES: Final = ["0-13", "14-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
AGE_P: Final = [0.08, 0.04, 0.12, 0.22, 0.20, 0.15, 0.11, 0.08]
PROTECTIONS: Final = [
    "none", "asylum_request", "possible_trafficking_victim", "unaccompanied_minor",
    "asylum_request+unaccompanied_minor",
]  # fmt: skip
PROTECTION_P: Final = [0.0, 0.7, 0.1, 0.1, 0.1]
REASONS: Final = [
    "none", "FACE_MISMATCH", "FACE_NOT_DETECTED", "FACE_QUALITY_LOW", "VISA_REQUIRED",
    "STAY_EXCEEDED", "DOCUMENT_EXPIRED", "ALERT", "DOCUMENT_CHANGED",
]  # fmt: skip
REASON_P: Final = [0.0, 0.15, 0.2, 0.2, 0.1, 0.1, 0.08, 0.07, 0.1]
# Mixed radix of one crossing's keys, then of a reason row (the crossing's key and a reason).
RADIX: Final = (365, len(POINTS), 150, 2, 4, 4, 8, 5)


def nationalities(rng: np.random.Generator) -> list[str]:
    codes: set[str] = set()
    while len(codes) < RADIX[2]:
        codes.add("".join(rng.choice(_LETTERS, 3)))
    return sorted(codes)


def _zipf(n: int, s: float) -> npt.NDArray[np.float64]:
    w: npt.NDArray[np.float64] = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    return w / float(w.sum())


def _day_weights() -> npt.NDArray[np.float64]:
    d = np.arange(365, dtype=np.float64)
    w = 1.0 + 0.3 * np.sin(2 * np.pi * (d - 100) / 365)
    weekday = np.array([x.weekday() for x in DAYS])
    w = w * np.where(weekday >= 5, 1.1, 1.0)
    out: npt.NDArray[np.float64] = w / float(w.sum())
    return out


def generate(
    n: int, rng: np.random.Generator, out: TextIO
) -> tuple[tuple[Ints, Ints], tuple[Ints, Ints], list[tuple[Ints, ...]]]:
    """N crossings in blocks: the distinct crossing keys with their counts, the distinct
    reason keys with theirs, and the crossings themselves as code columns (for the peer)."""
    day_p, point_p, nat_p = _day_weights(), _zipf(len(POINTS), 1.1), _zipf(RADIX[2], 1.2)
    keys: list[Ints] = []
    counts: list[Ints] = []
    reason_keys: list[Ints] = []
    reason_counts: list[Ints] = []
    columns: list[tuple[Ints, ...]] = []
    progress = common.Progress("generating and counting crossings", n, stream=out)
    done = 0
    while done < n:
        m = min(BLOCK, n - done)
        decision = rng.choice(4, m, p=DECISION_P)
        cols = (
            rng.choice(365, m, p=day_p),
            rng.choice(len(POINTS), m, p=point_p),
            rng.choice(RADIX[2], m, p=nat_p),
            rng.integers(0, 2, m),
            decision,
            rng.choice(4, m, p=VISA_P),
            rng.choice(8, m, p=AGE_P),
            np.where(decision == 3, rng.choice(5, m, p=PROTECTION_P), 0),
        )
        not_admitted = decision != 0
        first = np.where(not_admitted, rng.choice(len(REASONS), m, p=REASON_P), 0)
        second = rng.choice(len(REASONS), m, p=REASON_P)
        two = not_admitted & (rng.random(m) < 0.3) & (second != first)
        key = encode(cols)
        u, c = np.unique(key, return_counts=True)
        keys.append(u)
        counts.append(c.astype(np.int64))
        rk = np.concatenate([key * len(REASONS) + first, (key * len(REASONS) + second)[two]])
        u, c = np.unique(rk, return_counts=True)
        reason_keys.append(u)
        reason_counts.append(c.astype(np.int64))
        columns.append((*cols, first, np.where(two, second, -1)))
        done += m
        progress.update(done)
    progress.finish()
    return _merge(keys, counts), _merge(reason_keys, reason_counts), columns


def encode(cols: tuple[Ints, ...]) -> Ints:
    key = np.zeros(len(cols[0]), dtype=np.int64)
    for col, base in zip(cols, RADIX, strict=True):
        key = key * base + col.astype(np.int64)
    return key


def decode(key: Ints) -> list[Ints]:
    out: list[Ints] = []
    for base in reversed(RADIX):
        key, part = np.divmod(key, base)
        out.append(part)
    return out[::-1]


def _merge(keys: list[Ints], counts: list[Ints]) -> tuple[Ints, Ints]:
    u, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    total = np.bincount(inverse, weights=np.concatenate(counts)).astype(np.int64)
    return u, total


def _counts(key: Ints, count: Ints, nats: list[str], *, reasons: bool) -> Iterator[store.Count]:
    reason = None
    if reasons:
        key, reason = np.divmod(key, len(REASONS))
    day, point, nat, direction, decision, visa, age, protection = (c.tolist() for c in decode(key))
    reason_of = None if reason is None else reason.tolist()
    counts = count.tolist()
    for i in range(len(day)):
        yield store.Count(
            day=DAYS[day[i]],
            border_point=POINTS[point[i]],
            nationality=nats[nat[i]],
            direction=DIRECTIONS[direction[i]],
            decision=DECISIONS[decision[i]],
            visa_type=VISAS[visa[i]],
            age_band=AGES[age[i]],
            protection=PROTECTIONS[protection[i]],
            reason=None if reason_of is None else REASONS[reason_of[i]],
            count=counts[i],
        )


def fill(
    rt: Runtime, counted: tuple[Ints, Ints], label: str, nats: list[str], out: TextIO, *,
    reasons: bool,
) -> float:  # fmt: skip
    """The counts written through ``add_bulk``, COPY_BATCH rows per transaction."""
    key, count = counted
    progress = common.Progress(label, len(key), stream=out)
    started = time.perf_counter()
    for i in range(0, len(key), COPY_BATCH):
        part = slice(i, i + COPY_BATCH)
        with rt.pool.connection() as conn, conn.transaction():
            store.add_bulk(conn, _counts(key[part], count[part], nats, reasons=reasons))
        progress.update(min(i + COPY_BATCH, len(key)))
    progress.finish()
    return time.perf_counter() - started


@contextmanager
def scratch(database_url: str | None, root: Path | None) -> Iterator[tuple[Settings, str]]:
    """Settings on a fresh embedded store in a scratch directory (stopped and removed
    afterwards), or on the given database; and the schema owner's URL. The embedded server
    is located to keep running: the runtime and the app each stop it when they close, and
    the peer's connections must outlive the first."""
    folder = Path(tempfile.mkdtemp(prefix="bench-statistics-", dir=root))
    url = None if database_url is None else SecretStr(database_url)
    try:
        settings = Settings(
            data_dir=folder,
            database_url=url,
            owner_database_url=url,
            master_key=None,
            log_level="WARNING",
        )
        held = db.locate(settings, keep_running=True)
        assert held.owner_url is not None
        try:
            yield settings, held.owner_url
        finally:
            if database_url is None:
                db.stop_embedded(settings)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


PEER_TABLE: Final = (
    "CREATE TABLE bench_crossings (day date NOT NULL, border_point text NOT NULL,"
    " nationality text NOT NULL, direction text NOT NULL, decision text NOT NULL,"
    " reasons text[] NOT NULL, visa_type text NOT NULL, age_band text NOT NULL,"
    " protection text NOT NULL)"
)
PEER_QUERIES: Final = {
    "month,border_point": "SELECT to_char(day, 'YYYY-MM'), border_point, count(*)"
    " FROM bench_crossings WHERE day >= %(first)s AND day <= %(last)s GROUP BY 1, 2",
    "nationality": "SELECT nationality, count(*) FROM bench_crossings"
    " WHERE day >= %(first)s AND day <= %(last)s GROUP BY 1",
    "nationality,age_band": "SELECT nationality, age_band, count(*) FROM bench_crossings"
    " WHERE day >= %(first)s AND day <= %(last)s GROUP BY 1, 2",
}


def fill_peer(
    owner_url: str, columns: list[tuple[Ints, ...]], nats: list[str], out: TextIO
) -> float:
    """The crossings-like table of the N crossings, loaded with COPY and analysed."""
    total = sum(len(c[0]) for c in columns)
    progress = common.Progress("peer: COPY of the crossings", total, stream=out)
    started = time.perf_counter()
    with psycopg.connect(owner_url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_crossings")
        conn.execute(PEER_TABLE)
        done = 0
        for cols in columns:
            day, point, nat, direction, decision, visa, age, protection, first, second = (
                c.tolist() for c in cols
            )
            with conn.cursor().copy(
                "COPY bench_crossings (day, border_point, nationality, direction, decision,"
                " reasons, visa_type, age_band, protection) FROM STDIN"
            ) as copy:
                for i in range(len(day)):
                    codes = [REASONS[first[i]]] + ([REASONS[second[i]]] if second[i] >= 0 else [])
                    copy.write_row(
                        (
                            DAYS[day[i]],
                            POINTS[point[i]],
                            nats[nat[i]],
                            DIRECTIONS[direction[i]],
                            DECISIONS[decision[i]],
                            codes,
                            VISAS[visa[i]],
                            AGES[age[i]],
                            PROTECTIONS[protection[i]],
                        )
                    )
            conn.commit()
            done += len(day)
            progress.update(done)
        progress.finish()
        conn.autocommit = True
        with common.ticking("peer: VACUUM ANALYZE", stream=out):
            conn.execute("VACUUM ANALYZE bench_crossings")
    return time.perf_counter() - started


AGGREGATES: Final = ("statistics_daily", "statistics_monthly")


def vacuum(owner_url: str, out: TextIO) -> None:
    """What autovacuum does in service after a load: visibility map and planner figures."""
    with psycopg.connect(owner_url) as conn:
        conn.autocommit = True
        with common.ticking("VACUUM ANALYZE aggregates", stream=out):
            for table in AGGREGATES:
                conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def aggregate_rows(owner_url: str) -> dict[str, int]:
    held: dict[str, int] = {}
    with psycopg.connect(owner_url) as conn:
        for name in AGGREGATES:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()
            assert row is not None
            held[name] = int(row[0])
    return held


def time_border(
    client: TestClient, key: str, group_by: str, runs: int, out: TextIO
) -> tuple[list[float], dict[str, Any]]:
    params = {"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31", "group_by": group_by}
    headers = {"Authorization": f"Bearer {key}"}
    body: dict[str, Any] = client.get("/v1/statistics", headers=headers, params=params).json()
    seconds: list[float] = []
    progress = common.Progress(f"border: GET /v1/statistics by {group_by}", runs, stream=out)
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get("/v1/statistics", headers=headers, params=params)
        seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(
                f"GET /v1/statistics answered {response.status_code}: {response.text}"
            )
        progress.advance()
    progress.finish()
    return seconds, body


def time_peer(
    owner_url: str, group_by: str, runs: int, out: TextIO
) -> tuple[list[float], dict[tuple[str, ...], int]]:
    query = PEER_QUERIES[group_by]
    params = {"first": date(YEAR, 1, 1), "last": date(YEAR, 12, 31)}
    seconds: list[float] = []
    with psycopg.connect(owner_url) as conn:
        rows = conn.execute(query, params).fetchall()
        progress = common.Progress(f"peer: GROUP BY scan by {group_by}", runs, stream=out)
        for _ in range(runs):
            started = time.perf_counter()
            conn.execute(query, params).fetchall()
            seconds.append(time.perf_counter() - started)
            progress.advance()
        progress.finish()
    return seconds, {tuple(str(v) for v in r[:-1]): int(r[-1]) for r in rows}


def agree(body: dict[str, Any], keys: tuple[str, ...], peer: dict[tuple[str, ...], int]) -> bool:
    """Border and the peer have the same cells, and every count Border shows is the peer's."""
    cells = {tuple(str(c[k]) for k in keys): c["count"] for c in body["cells"]}
    return set(cells) == set(peer) and all(v is None or v == peer[k] for k, v in cells.items())


def _ms(seconds: list[float], q: float) -> float:
    return round(common.percentile_ms(seconds, q), 2)


def run(
    crossings: int = TARGET_CROSSINGS,
    *,
    runs: int = 30,
    seed: int = 0,
    database_url: str | None = None,
    root: Path | None = None,
    face_model: FaceModel | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    out = common.stream(quiet)
    rng = np.random.default_rng(seed)
    nats = nationalities(rng)
    counted, reason_counted, columns = generate(crossings, rng, out)
    with scratch(database_url, root) as (settings, owner_url):
        rt = Runtime.start(settings, migration_dirs())
        try:
            fill_s = fill(rt, counted, "aggregates: crossings", nats, out, reasons=False)
            fill_s += fill(rt, reason_counted, "aggregates: reasons", nats, out, reasons=True)
            key = border_service.create_client(
                rt, auth.command_line("benchmark"),
                border_models.ClientIn(name="bench statistician", role="statistician"),
            ).api_key  # fmt: skip
        finally:
            rt.close()
        vacuum(owner_url, out)
        rows_held = aggregate_rows(owner_url)
        peer_fill_s = fill_peer(owner_url, columns, nats, out)
        timings: list[common.Row] = []
        agreed: dict[str, bool] = {}
        app = create_app(settings, face_model)
        with TestClient(app, raise_server_exceptions=True) as client:
            for group_by, keys in QUERIES:
                border_s, body = time_border(client, key, group_by, runs, out)
                peer_s, peer_cells = time_peer(owner_url, group_by, runs, out)
                agreed[group_by] = agree(body, keys, peer_cells)
                timings.append(
                    {
                        "query": f"a year by {group_by} ({len(body['cells'])} cells,"
                        f" {body['suppressed']} suppressed)",
                        "border_p50_ms": _ms(border_s, 50),
                        "border_p95_ms": _ms(border_s, 95),
                        "peer_p50_ms": _ms(peer_s, 50),
                        "peer_p95_ms": _ms(peer_s, 95),
                        "ratio": round(
                            common.percentile_ms(peer_s, 50) / common.percentile_ms(border_s, 50), 1
                        ),
                    }
                )
        if database_url is not None:
            with psycopg.connect(owner_url) as conn:
                conn.execute("DROP TABLE bench_crossings")
    worst = max(float(r["border_p95_ms"] or 0) for r in timings)
    return {
        "benchmark": "statistics",
        "machine": common.machine(),
        "params": {
            "crossings": crossings,
            "runs": runs,
            "seed": seed,
            "year": YEAR,
            "store": "given database" if database_url else "fresh embedded PostgreSQL",
        },
        "fill_s": round(fill_s, 1),
        "peer_fill_s": round(peer_fill_s, 1),
        "aggregate_rows": rows_held,
        "agree": agreed,
        "target": {"ms": TARGET_MS, "worst_p95_ms": worst, "met": worst <= TARGET_MS},
        "rows": timings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="GET /v1/statistics over a year of crossings")
    parser.add_argument("--crossings", type=int, default=TARGET_CROSSINGS, help="N crossings")
    parser.add_argument("--runs", type=int, default=30, help="timed queries of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--database-url", default=None, help="an empty migrated database (else embedded, fresh)"
    )
    parser.add_argument("--root", type=Path, default=None, help="scratch folder's parent")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args(argv)
    if args.crossings < 1 or args.runs < 1:
        parser.error("--crossings and --runs must be at least 1")
    result = run(
        args.crossings,
        runs=args.runs,
        seed=args.seed,
        database_url=args.database_url,
        root=args.root,
        quiet=args.quiet,
    )
    print(
        f"\nGET /v1/statistics over a year of {args.crossings:,} crossings (peer: GROUP BY"
        " scan of a crossings table; ratio = peer p50 / Border p50)"
    )
    print(common.table(result["rows"], COLUMNS))
    t = result["target"]
    print(
        f"\ntarget: a year within {t['ms']:.0f} ms: worst p95 {t['worst_p95_ms']} ms,"
        f" {'met' if t['met'] else 'NOT met'}"
    )
    print(f"filled in {result['fill_s']} s; aggregate rows: {json.dumps(result['aggregate_rows'])}")
    print(f"answers agree with the peer: {json.dumps(result['agree'])}")
    print(f"machine: {json.dumps(result['machine'])}")
    if args.json:
        common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
