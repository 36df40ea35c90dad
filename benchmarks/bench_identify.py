"""1:N identification: Border's gallery against the naive scan and pgvector (DESIGN §8, §9).

    uv run python benchmarks/bench_identify.py --size 1000000 --json identify.json

Synthetic templates shaped like dlib's, calibrated on the photos in samples/faces (measured
with enrollment.templates.FaceModel, in Border's unit, the L2 distance between unit-length
templates): distinct photos of one person lie 0.23-0.29 apart (docs/biometrics.md: 0.17-0.29),
different people 0.47-0.61 (0.46-0.61). An identity is a centre ``normalise(mean +
CENTRE_SPREAD·g)`` around one shared direction (real embeddings share one); a capture is
``normalise(centre + SAMPLE_SPREAD·g)``. SAMPLE_SPREAD = 0.015 puts two captures of one
person 0.17-0.30 apart (median 0.235); CENTRE_SPREAD = 0.033 puts different people 0.46-0.62
apart (1st-99th percentile, median 0.54). tests/matching/test_gallery.py uses 0.0457, which
puts strangers about 0.68 apart: these data are denser, so harder for an approximate index.
The generator prints the distances it produced, so a run shows its own calibration.

Probes: mated ones are a fresh capture of an enrolled identity; non-mated ones are captures of
identities never enrolled, and must come back with no candidate within the 1:N threshold that
enrollment.galleries.Galleries.identify_threshold gives a gallery of that size.

Rows: Border's exact (``flat``) and IVF (``ivf``, float16 lists) galleries; the naive scan that
face_recognition teaches (``face_recognition.face_distance(known_encodings, probe)`` over an
(N, 128) float64 array, as ``face_encodings`` returns them); pgvector HNSW in the embedded
PostgreSQL, one row per ``hnsw.ef_search``. Recall is rank-1 against exact search
(faiss.contrib.exhaustive_search.knn_ground_truth, measured with
faiss.contrib.evaluation.knn_intersection_measure as in faiss's benchs/bench_hnsw.py).
"""

import argparse
import json
import os
import secrets
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import face_recognition
import faiss
import numpy as np
import numpy.typing as npt
import psycopg
from faiss.contrib import evaluation, exhaustive_search
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks import common
from core import db
from core.settings import Settings
from enrollment.galleries import Galleries
from matching import milvus
from matching.gallery import Gallery, NProbe

DIM = 128
SAMPLE_SPREAD = 0.015
CENTRE_SPREAD = 0.033
ID_BASE = 10**12  # gallery ids are the caller's numbers, never row positions
KINDS = ("flat", "ivf", "numpy", "numpy32", "pgvector", "milvus")
DEFAULT_KINDS = ("flat", "ivf", "numpy", "pgvector")
REQUIRED_KEYS = (
    "size",
    "index",
    "build_s",
    "memory_mb",
    "p50_ms",
    "p99_ms",
    "batch_qps",
    "recall_at_1",
    "nonmated_fp_rate",
    "ratio_vs_numpy",
    "ratio_vs_pgvector",
)
COLUMNS = (*REQUIRED_KEYS[:2], "params", *REQUIRED_KEYS[2:])
NAIVE = "numpy"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Row = common.Row

# faiss.contrib is untyped: give the two functions used their types.
knn_ground_truth: Callable[..., tuple[F32, I64]] = exhaustive_search.knn_ground_truth
knn_intersection_measure: Callable[[I64, I64], float] = evaluation.knn_intersection_measure


def unit_rows(x: F64) -> F64:
    rows: F64 = x / np.linalg.norm(x, axis=-1, keepdims=True)
    return rows


@dataclass(frozen=True)
class Population:
    """Enrolled templates (unit rows, one capture per identity) and the probes."""

    ids: I64
    vectors: F32
    mated: F32
    mated_ids: I64
    strangers: F32


class Faces:
    """A seeded stream of identities and captures (see the module doc for the calibration)."""

    def __init__(self, seed: int, centre_spread: float = CENTRE_SPREAD) -> None:
        self.rng = np.random.default_rng(seed)
        self.centre_spread = centre_spread
        self.mean = unit_rows(self.rng.standard_normal(DIM))

    def identities(self, n: int) -> F64:
        return unit_rows(self.mean + self.centre_spread * self.rng.standard_normal((n, DIM)))

    def captures(self, centres: F64) -> F32:
        noisy = centres + SAMPLE_SPREAD * self.rng.standard_normal(centres.shape)
        return unit_rows(noisy).astype(np.float32)


def make_population(
    size: int,
    *,
    mated: int,
    strangers: int,
    seed: int,
    centre_spread: float = CENTRE_SPREAD,
    chunk: int = 100_000,
    quiet: bool = False,
) -> Population:
    faces = Faces(seed, centre_spread)
    chosen = faces.rng.choice(size, min(mated, size), replace=False)
    chosen_centres = np.empty((len(chosen), DIM), np.float64)
    vectors = np.empty((size, DIM), np.float32)
    progress = common.Progress("templates", size, stream=common.stream(quiet))
    for lo in range(0, size, chunk):
        hi = min(size, lo + chunk)
        centres = faces.identities(hi - lo)
        vectors[lo:hi] = faces.captures(centres)
        here = (chosen >= lo) & (chosen < hi)
        chosen_centres[here] = centres[chosen[here] - lo]
        progress.update(hi)
    progress.finish()
    ids: I64 = ID_BASE + 7 * np.arange(size, dtype=np.int64)
    return Population(
        ids=ids,
        vectors=vectors,
        mated=faces.captures(chosen_centres),
        mated_ids=ids[chosen],
        strangers=faces.captures(faces.identities(strangers)),
    )


def calibration(
    seed: int, centre_spread: float = CENTRE_SPREAD, pairs: int = 5000
) -> dict[str, float]:
    """Genuine (two captures of one identity) and impostor pair distances of these data."""
    faces = Faces(seed + 1, centre_spread)
    centres = faces.identities(pairs)
    first, second = faces.captures(centres), faces.captures(centres)
    genuine = np.linalg.norm(first - second, axis=1)
    impostor = np.linalg.norm(first - np.roll(second, 1, axis=0), axis=1)
    return {
        "genuine_min": float(genuine.min()),
        "genuine_median": float(np.median(genuine)),
        "genuine_max": float(genuine.max()),
        "impostor_p1": float(np.percentile(impostor, 1)),
        "impostor_median": float(np.median(impostor)),
        "impostor_p99": float(np.percentile(impostor, 99)),
    }


@contextmanager
def blas_threshold(value: int) -> Iterator[None]:
    """faiss searches a flat index with BLAS only from this many queries up (a global)."""
    before = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = value
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = before


def exact_rank1(pop: Population, queries: F32, chunk: int = 200_000) -> tuple[I64, F32]:
    """Exact nearest enrolled id and distance for each query (knn_ground_truth by blocks)."""

    def blocks() -> Iterator[F32]:
        for lo in range(0, len(pop.vectors), chunk):
            yield pop.vectors[lo : lo + chunk]

    with blas_threshold(1):
        sims, rows = knn_ground_truth(queries, blocks(), 1, metric_type=faiss.METRIC_INNER_PRODUCT)
    ids: I64 = pop.ids[rows[:, 0]]
    return ids, _ip_distance(sims[:, 0])


def _ip_distance(similarity: npt.NDArray[np.floating]) -> F32:
    distances: F32 = np.sqrt(np.clip(2.0 - 2.0 * similarity.astype(np.float64), 0, 4)).astype(
        np.float32
    )
    return distances


def rank1_recall(found: I64, exact: I64) -> float:
    """Share of probes whose rank-1 id is the exact rank-1 id (knn_intersection_measure)."""
    return float(knn_intersection_measure(found.reshape(-1, 1), exact.reshape(-1, 1)))


class _SizedGallery(Gallery):
    """An empty gallery that reports ``size`` templates: all the threshold rule reads."""

    def __init__(self, size: int) -> None:
        super().__init__(DIM, kind="flat")
        self._size = size

    def __len__(self) -> int:
        return self._size


def identify_threshold(size: int, settings: Settings) -> float:
    """The 1:N threshold production (enrollment.galleries) uses for a gallery of this size."""
    galleries = Galleries(settings)
    galleries.enrolled = _SizedGallery(size)
    return galleries.identify_threshold()


class Engine(Protocol):
    index: str
    params: str
    has_batch: bool

    def search_one(self, query: F32) -> tuple[int, float]: ...

    def search(self, queries: F32) -> tuple[I64, F32]: ...


class GalleryEngine:
    has_batch = True

    def __init__(self, index: str, gallery: Gallery | milvus.MilvusGallery, params: str) -> None:
        self.index = index
        self.gallery = gallery
        self.params = params

    def search_one(self, query: F32) -> tuple[int, float]:
        ids, dists = self.gallery.search(query, 1)
        return int(ids[0, 0]), float(dists[0, 0])

    def search(self, queries: F32) -> tuple[I64, F32]:
        ids, dists = self.gallery.search(queries, 1)
        return ids[:, 0], dists[:, 0]


class NaiveEngine:
    """What the face_recognition docs teach: every distance, then the smallest."""

    has_batch = False  # face_distance takes one probe: a batch is a loop

    def __init__(self, index: str, ids: I64, known: npt.NDArray[np.floating]) -> None:
        self.index = index
        self.ids = ids
        self.known = known
        self.params = f"face_distance over ({len(known):,}, {DIM}) {known.dtype}"

    def search_one(self, query: F32) -> tuple[int, float]:
        distances = face_recognition.face_distance(self.known, query.astype(self.known.dtype))
        best = int(np.argmin(distances))
        return int(self.ids[best]), float(distances[best])

    def search(self, queries: F32) -> tuple[I64, F32]:
        found = [self.search_one(q) for q in queries]
        return (
            np.array([i for i, _ in found], np.int64),
            np.array([d for _, d in found], np.float32),
        )


@dataclass
class Measured:
    p50_ms: float
    p99_ms: float
    batch_qps: float
    batch_ids: I64
    batch_dists: F32
    latencies_s: list[float] = field(repr=False)


def measure(
    engine: Engine, single: F32, batch: F32, *, warm: int = 20, quiet: bool = False
) -> Measured:
    """Single queries one at a time (after ``warm`` untimed ones), then one batch."""
    for q in single[:warm]:
        engine.search_one(q)
    stream = common.stream(quiet)
    progress = common.Progress(f"{engine.index} single queries", len(single), stream=stream)
    latencies: list[float] = []
    single_ids, single_dists = [], []
    for q in single:
        start = time.perf_counter()
        found, dist = engine.search_one(q)
        latencies.append(time.perf_counter() - start)
        single_ids.append(found)
        single_dists.append(dist)
        progress.advance()
    progress.finish()
    if engine.has_batch:
        start = time.perf_counter()
        ids, dists = engine.search(batch)
        qps = len(batch) / (time.perf_counter() - start)
    else:
        ids = np.array(single_ids, np.int64)
        dists = np.array(single_dists, np.float32)
        qps = len(single) / sum(latencies)
    return Measured(
        p50_ms=common.percentile_ms(latencies, 50),
        p99_ms=common.percentile_ms(latencies, 99),
        batch_qps=qps,
        batch_ids=ids,
        batch_dists=dists,
        latencies_s=latencies,
    )


@dataclass(frozen=True)
class Probes:
    """Interleaved mated/non-mated probes: the single-query set is a prefix of the batch."""

    queries: F32
    is_mated: npt.NDArray[np.bool_]
    exact_ids: I64  # exact rank-1 id of each query
    mate_ids: I64  # the enrolled id of a mated probe's identity, -1 for strangers

    @classmethod
    def build(cls, pop: Population, count: int) -> "Probes":
        half = min(count // 2, len(pop.mated), len(pop.strangers))
        queries = np.empty((2 * half, DIM), np.float32)
        queries[0::2], queries[1::2] = pop.mated[:half], pop.strangers[:half]
        is_mated = np.zeros(2 * half, bool)
        is_mated[0::2] = True
        mate_ids = np.full(2 * half, -1, np.int64)
        mate_ids[0::2] = pop.mated_ids[:half]
        exact_ids, _ = exact_rank1(pop, queries)
        return cls(queries, is_mated, exact_ids, mate_ids)


def score(
    engine: Engine,
    m: Measured,
    probes: Probes,
    *,
    size: int,
    build_s: float,
    memory_mb: float,
    threshold: float,
) -> Row:
    n = len(m.batch_ids)
    mated = probes.is_mated[:n]
    strangers = ~mated
    hit = (m.batch_ids == probes.mate_ids[:n]) & (m.batch_dists <= threshold)
    return {
        "size": size,
        "index": engine.index,
        "params": engine.params,
        "build_s": round(build_s, 3),
        "memory_mb": round(memory_mb, 1),
        "p50_ms": round(m.p50_ms, 4),
        "p99_ms": round(m.p99_ms, 4),
        "batch_qps": round(m.batch_qps, 1),
        "recall_at_1": round(rank1_recall(m.batch_ids[mated], probes.exact_ids[:n][mated]), 4),
        "nonmated_fp_rate": round(float(np.mean(m.batch_dists[strangers] <= threshold)), 4),
        "fnir": round(float(1.0 - np.mean(hit[mated])), 4),
        "threshold": round(threshold, 4),
        "mated_probes": int(mated.sum()),
        "nonmated_probes": int(strangers.sum()),
        "single_queries": len(m.latencies_s),
        "batch_queries": n,
        "threads": faiss.omp_get_max_threads(),
        "ratio_vs_numpy": None,
        "ratio_vs_pgvector": None,
    }


_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", ">i8"),
        ("vec_len", ">i4"),
        ("dim", ">u2"),
        ("unused", ">u2"),
        ("v", ">f4", (DIM,)),
    ]
)
_PG_QUERY = "SELECT id, embedding <#> %s::vector FROM items ORDER BY 2 LIMIT 1"


def vector_text(q: F32) -> str:
    # Python's repr of a float32 value round-trips exactly through pgvector's strtof.
    return "[" + ",".join(map(repr, q.tolist())) + "]"


@contextmanager
def embedded_postgres(data_dir: Path, shared_buffers_mb: int) -> Iterator[str]:
    """Border's embedded PostgreSQL (core.db.locate), restarted once with shared buffers
    large enough to hold the HNSW index, as a tuned pgvector server would have."""
    settings = Settings(data_dir=data_dir)
    store = db.locate(settings)
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(
                sql.Literal(f"{shared_buffers_mb}MB")
            )
        )
    store.close()
    store = db.locate(settings)
    try:
        yield store.url
    finally:
        store.close()


@contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A database of its own on the server at ``url``, dropped afterwards."""
    name = f"bench_identify_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class PgVector:
    """pgvector HNSW (vector_ip_ops: on unit vectors inner product ranks as L2 does)."""

    has_batch = True

    def __init__(self, url: str, *, clients: int, quiet: bool = False) -> None:
        self.url = url
        self.clients = clients
        self.quiet = quiet
        self.index = "pgvector-hnsw"
        self.params = ""
        self.m = 0
        self.ef_construction = 0
        self.ef_search = 0
        self.conns: list[psycopg.Connection[tuple[int, float]]] = []

    def _connect(self) -> "psycopg.Connection[tuple[int, float]]":
        conn: psycopg.Connection[tuple[int, float]] = psycopg.connect(self.url, autocommit=True)
        conn.execute("SET jit = off")
        # At a high ef_search the planner costs HNSW above a sequential scan: keep the index.
        conn.execute("SET enable_seqscan = off")
        return conn

    def load(self, ids: I64, vectors: F32, chunk: int = 50_000) -> float:
        """COPY in binary; returns seconds."""
        stream = common.stream(self.quiet)
        progress = common.Progress("pgvector COPY", len(ids), stream=stream)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("CREATE TABLE items (id bigint NOT NULL, embedding vector(128) NOT NULL)")
            with (
                conn.cursor() as cur,
                cur.copy("COPY items (id, embedding) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
                for lo in range(0, len(ids), chunk):
                    hi = min(len(ids), lo + chunk)
                    block = np.empty(hi - lo, _COPY_ROW)
                    block["fields"] = 2
                    block["id_len"] = 8
                    block["id"] = ids[lo:hi]
                    block["vec_len"] = 4 + 4 * DIM
                    block["dim"] = DIM
                    block["unused"] = 0
                    block["v"] = vectors[lo:hi]
                    copy.write(block.tobytes())
                    progress.update(hi)
                copy.write(struct.pack(">h", -1))
            conn.execute("ANALYZE items")
        return progress.finish()

    def build(self, *, m: int, ef_construction: int, workers: int, size: int) -> float:
        """CREATE INDEX ... USING hnsw, progress from pg_stat_progress_create_index."""
        self.m, self.ef_construction = m, ef_construction
        # The graph must fit in maintenance_work_mem or the build slows down on disk.
        work_mem_mb = max(256, size * 2600 // 2**20)
        stop = threading.Event()
        started = time.perf_counter()

        def watch() -> None:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not stop.wait(5.0):
                    row = conn.execute(
                        "SELECT phase, tuples_done FROM pg_stat_progress_create_index"
                    ).fetchone()
                    if row is not None and not self.quiet:
                        sys.stderr.write(
                            f"\rpgvector HNSW build: {row[0]}, {row[1]:,}/{size:,} tuples, "
                            f"{time.perf_counter() - started:.0f}s   "
                        )
                        sys.stderr.flush()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(f"{work_mem_mb}MB"))
                )
                conn.execute(
                    sql.SQL("SET max_parallel_maintenance_workers = {}").format(
                        sql.Literal(workers)
                    )
                )
                conn.execute(
                    sql.SQL(
                        "CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_ip_ops) "
                        "WITH (m = {}, ef_construction = {})"
                    ).format(sql.Literal(m), sql.Literal(ef_construction))
                )
        finally:
            stop.set()
            watcher.join()
        elapsed = time.perf_counter() - started
        if not self.quiet:
            sys.stderr.write(f"\rpgvector HNSW build: done in {elapsed:.1f}s{' ' * 40}\n")
        return elapsed

    def memory_mb(self, relation: str = "items_hnsw") -> float:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_relation_size(%s::regclass)", (relation,)).fetchone()
        assert row is not None
        return float(row[0]) / 2**20

    def use(self, ef_search: int | None) -> None:
        """(Re)open the clients with ``hnsw.ef_search`` set, or (None) for an exact
        sequential scan, and check that the plan is the one meant."""
        self.close()
        exact = ef_search is None
        self.ef_search = ef_search or 0
        self.has_batch = not exact  # an exact scan is timed on the single queries only
        if exact:
            self.index = "pgvector-exact"
            self.params = "sequential scan, index off"
        else:
            self.index = f"pgvector-hnsw ef={ef_search}"
            self.params = f"m={self.m} ef_construction={self.ef_construction} ef_search={ef_search}"
        for _ in range(self.clients):
            conn = self._connect()
            if exact:
                conn.execute("SET enable_indexscan = off")
                conn.execute("SET enable_seqscan = on")
            else:
                conn.execute(sql.SQL("SET hnsw.ef_search = {}").format(sql.Literal(ef_search)))
            self.conns.append(conn)
        probe = vector_text(np.ones(DIM, np.float32) / np.sqrt(DIM))
        with self.conns[0].cursor() as cur:
            plan = " ".join(str(r[0]) for r in cur.execute("EXPLAIN " + _PG_QUERY, (probe,)))
        if ("items_hnsw" in plan) == exact:
            raise RuntimeError(f"pgvector query plan is not the one meant: {plan}")

    def _query(self, conn: "psycopg.Connection[tuple[int, float]]", q: F32) -> tuple[int, float]:
        row = conn.execute(_PG_QUERY, (vector_text(q),), prepare=True).fetchone()
        assert row is not None
        return int(row[0]), float(np.sqrt(max(0.0, 2.0 + 2.0 * row[1])))

    def search_one(self, query: F32) -> tuple[int, float]:
        return self._query(self.conns[0], query)

    def search(self, queries: F32) -> tuple[I64, F32]:
        """One client per core, each running its share one query at a time."""
        parts = np.array_split(np.arange(len(queries)), self.clients)

        def run(
            conn: "psycopg.Connection[tuple[int, float]]", rows: npt.NDArray[np.intp]
        ) -> list[tuple[int, float]]:
            return [self._query(conn, queries[r]) for r in rows]

        with ThreadPoolExecutor(self.clients) as pool:
            results = list(pool.map(run, self.conns, parts))
        found = [pair for part in results for pair in part]
        return (
            np.array([i for i, _ in found], np.int64),
            np.array([d for _, d in found], np.float32),
        )

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.conns = []


def bandwidth_gbs(nbytes: int = 1 << 30, repeats: int = 5) -> Row:
    """Read bandwidth in GB/s from numpy reductions (max, float32 sum, int64 sum) over an
    array far larger than the caches, on one thread and on one thread per core (numpy
    releases the GIL in reductions); ``read_*`` is the best kernel. Copy counts read + write."""
    a = np.ones(nbytes // 4, np.float32)
    as_int = a.view(np.int64)
    cores = os.cpu_count() or 1
    kernels: dict[str, Callable[[npt.NDArray[Any]], object]] = {
        "max": np.max,
        "sum": np.sum,
        "isum": np.sum,
    }

    def best(fn: Callable[[], object], moved: int) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return moved / min(times) / 1e9

    out: Row = {}
    with ThreadPoolExecutor(cores) as pool:
        for name, kernel in kernels.items():
            data = as_int if name == "isum" else a
            parts = np.array_split(data, cores)
            out[f"{name}_1thread"] = round(best(partial(kernel, data), a.nbytes), 1)
            everywhere = partial(_map_all, pool, kernel, parts)
            out[f"{name}_{cores}threads"] = round(best(everywhere, a.nbytes), 1)
    target = np.empty_like(a)
    out["copy_1thread"] = round(best(lambda: np.copyto(target, a), 2 * a.nbytes), 1)
    out["read_1thread"] = max(
        _f(v) for k, v in out.items() if k.endswith("_1thread") and "copy" not in k
    )
    out["read_all_cores"] = max(_f(v) for k, v in out.items() if k.endswith(f"_{cores}threads"))
    return out


def _map_all(
    pool: ThreadPoolExecutor, fn: Callable[[npt.NDArray[Any]], object], parts: list[Any]
) -> list[object]:
    return list(pool.map(fn, parts))


def flat_profile(pop: Population, queries: F32, *, count: int = 30) -> list[Row]:
    """Single-query exact search on a bare faiss IndexFlatIP: threads x BLAS threshold."""
    index = faiss.IndexFlatIP(DIM)
    index.add(pop.vectors)
    rows: list[Row] = []
    threads_before = faiss.omp_get_max_threads()
    try:
        for threads in sorted({1, threads_before}):
            faiss.omp_set_num_threads(threads)
            for threshold in (faiss.cvar.distance_compute_blas_threshold, 1):
                with blas_threshold(threshold):
                    index.search(queries[:3], 1)
                    times = []
                    for q in queries[:count]:
                        start = time.perf_counter()
                        index.search(q[None, :], 1)
                        times.append(time.perf_counter() - start)
                rows.append(
                    {
                        "threads": threads,
                        "blas_threshold": threshold,
                        "p50_ms": round(common.percentile_ms(times, 50), 3),
                        "p99_ms": round(common.percentile_ms(times, 99), 3),
                    }
                )
        with blas_threshold(1):
            start = time.perf_counter()
            index.search(queries, 1)
            batch_blas = len(queries) / (time.perf_counter() - start)
        rows.append({"threads": threads_before, "blas_threshold": 1, "batch_qps": batch_blas})
    finally:
        faiss.omp_set_num_threads(threads_before)
    return rows


@dataclass
class Options:
    size: int = 1_000_000
    queries: int = 300
    batch: int = 2000
    seed: int = 1
    kinds: tuple[str, ...] = DEFAULT_KINDS
    nprobe: tuple[NProbe, ...] = ()
    ef_search: tuple[int, ...] = (40, 100, 200, 400, 1000)
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    pg_url: str | None = None
    pg_clients: int = 0
    pg_exact: bool = True
    centre_spread: float = CENTRE_SPREAD
    floor: bool = True
    quiet: bool = False
    threads: tuple[int, ...] = (1,)
    peers_from: Path | None = None
    milvus_uri: str | None = None
    milvus_index: milvus.MilvusIndex = "auto"


@dataclass
class Report:
    rows: list[Row]
    calibration: dict[str, float]
    threshold: float
    bandwidth: Row | None = None
    flat_profile: list[Row] = field(default_factory=list)
    floor_ms: Row = field(default_factory=dict)


def _say(opts: Options, text: str) -> None:
    if not opts.quiet:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def run(opts: Options) -> Report:
    unknown = set(opts.kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
    settings = Settings()
    nprobes: tuple[NProbe, ...] = opts.nprobe or (settings.gallery_nprobe,)
    cal = calibration(opts.seed, opts.centre_spread)
    _say(
        opts,
        "calibration (unit L2): " + ", ".join(f"{k}={v:.3f}" for k, v in cal.items()),
    )
    pop = make_population(
        opts.size,
        mated=opts.batch // 2,
        strangers=opts.batch // 2,
        seed=opts.seed,
        centre_spread=opts.centre_spread,
        quiet=opts.quiet,
    )
    with common.ticking("exact ground truth", stream=common.stream(opts.quiet)):
        probes = Probes.build(pop, opts.batch)
    single = probes.queries[: min(opts.queries, len(probes.queries))]
    rows: list[Row] = []
    threshold = identify_threshold(opts.size, settings)

    def record(engine: Engine, build_s: float, memory_mb: float) -> Row:
        m = measure(engine, single, probes.queries, quiet=opts.quiet)
        row = score(
            engine,
            m,
            probes,
            size=opts.size,
            build_s=build_s,
            memory_mb=memory_mb,
            threshold=threshold,
        )
        rows.append(row)
        _say(
            opts,
            f"  {row['index']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"recall {row['recall_at_1']}, non-mated FP {row['nonmated_fp_rate']}",
        )
        return row

    for kind in ("ivf", "flat"):
        if kind not in opts.kinds:
            continue
        # Built once; each nprobe and thread count is a setting of the same index.
        gallery = Gallery(DIM, kind=kind, nprobe=settings.gallery_nprobe)
        with common.ticking(f"border {kind} build", stream=common.stream(opts.quiet)):
            start = time.perf_counter()
            gallery.add(pop.ids, pop.vectors)
            build_s = time.perf_counter() - start
        if gallery.index_kind != kind:
            raise RuntimeError(f"asked for {kind}, got {gallery.index_kind}")
        memory = (len(gallery.to_bytes()) - 69) / 2**20
        for nprobe in nprobes if kind == "ivf" else (settings.gallery_nprobe,):
            name = (
                f"border-{kind}" if len(nprobes) == 1 or kind == "flat" else f"border-ivf{nprobe}"
            )
            for threads in opts.threads:
                gallery.tune(nprobe=nprobe, threads=threads)
                params = (
                    f"nlist={gallery.nlist} nprobe={gallery.probed}"
                    + (" (auto)" if nprobe == "auto" else "")
                    if kind == "ivf"
                    else f"IndexFlatIP, blas_threshold={faiss.cvar.distance_compute_blas_threshold}"
                )
                label = name if len(opts.threads) == 1 else f"{name} {threads}t"
                record(GalleryEngine(label, gallery, params), build_s, memory)["threads"] = threads
        del gallery
    for kind in ("numpy", "numpy32"):
        if kind not in opts.kinds:
            continue
        start = time.perf_counter()
        # face_recognition.face_encodings returns float64 arrays; numpy32 halves the bytes.
        known: npt.NDArray[np.floating[Any]] = (
            pop.vectors.astype(np.float64) if kind == "numpy" else pop.vectors.copy()
        )
        build_s = time.perf_counter() - start
        record(NaiveEngine(kind, pop.ids, known), build_s, known.nbytes / 2**20)["threads"] = 1
        del known

    if "milvus" in opts.kinds:
        rows.append(_milvus_row(opts, pop, probes, single, threshold))
    if "pgvector" in opts.kinds:
        rows.extend(_pgvector_rows(opts, pop, probes, single, threshold))
    if opts.peers_from is not None:
        rows.extend(earlier_peers(opts.peers_from, opts.size))

    report = Report(rows=rows, calibration=cal, threshold=threshold)
    if opts.floor:
        _say(opts, "memory bandwidth and exact-search profile")
        report.bandwidth = bandwidth_gbs()
        report.flat_profile = flat_profile(pop, probes.queries)
        scanned = opts.size * DIM * 4
        report.floor_ms = {
            "bytes_per_query": scanned,
            "floor_all_cores_ms": round(
                scanned / (_f(report.bandwidth["read_all_cores"]) * 1e6), 3
            ),
            "floor_1thread_ms": round(scanned / (_f(report.bandwidth["read_1thread"]) * 1e6), 3),
        }
    add_ratios(rows, probes)
    return report


def descendants_rss_mb() -> float:
    """Resident memory of this process's child processes (Milvus Lite runs its server as
    one), from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    mine: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    return sum(rss.get(pid, 0) for pid in mine) / 2**20


def _milvus_row(
    opts: Options, pop: Population, probes: Probes, single: F32, threshold: float
) -> Row:
    """Milvus beside FAISS at the same size, data and probes: Milvus Lite in a temporary
    file unless ``--milvus-uri`` names a server. Build is insert plus flush (and on a
    server until the index holds every row); memory is the Milvus Lite server process's
    resident memory (unknown for a remote server)."""
    out = common.stream(opts.quiet)
    with tempfile.TemporaryDirectory(prefix="bench-identify-milvus-") as scratch:
        uri = opts.milvus_uri or str(Path(scratch) / "bench.db")
        lite = milvus.is_lite(uri)
        rss_before = descendants_rss_mb()
        client = milvus.connect(uri, timeout_s=600)
        gallery = milvus.MilvusGallery(
            client,
            f"bench_identify_{secrets.token_hex(4)}",
            DIM,
            lite=lite,
            index=opts.milvus_index,
            timeout_s=600,
        )
        try:
            progress = common.Progress(f"{gallery.index_kind} insert", len(pop.ids), stream=out)

            def batches() -> Iterator[tuple[I64, F32]]:
                for lo in range(0, len(pop.ids), 50_000):
                    yield pop.ids[lo : lo + 50_000], pop.vectors[lo : lo + 50_000]
                    progress.update(min(len(pop.ids), lo + 50_000))

            start = time.perf_counter()
            written = gallery.rebuild(batches())
            progress.finish()
            if not lite:
                with common.ticking("milvus index build", stream=out):
                    _wait_for_index(client, gallery.name)
            build_s = time.perf_counter() - start
            if written != len(pop.ids) or len(gallery) != len(pop.ids):
                raise RuntimeError(f"milvus holds {len(gallery)} of {len(pop.ids)} templates")
            memory = descendants_rss_mb() - rss_before if lite else float("nan")
            where = "Lite, temporary file" if lite and opts.milvus_uri is None else uri
            name = f"milvus-{'lite-' if lite else ''}{gallery.index.lower()}"
            engine = GalleryEngine(
                name, gallery, f"{gallery.index}, IP, strong consistency; {where}"
            )
            m = measure(engine, single, probes.queries, quiet=opts.quiet)
            row = score(
                engine,
                m,
                probes,
                size=opts.size,
                build_s=build_s,
                memory_mb=memory,
                threshold=threshold,
            )
        finally:
            gallery.drop()
            gallery.close()
    if not lite:
        row["memory_mb"] = None
    row["threads"] = faiss.omp_get_max_threads()
    _say(
        opts,
        f"  {row['index']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
        f"recall {row['recall_at_1']}, build {row['build_s']} s",
    )
    return row


def _wait_for_index(client: Any, collection: str, poll_s: float = 2.0) -> None:
    """Until a server's index covers every row of the collection (or alias)."""
    while True:
        names = client.list_indexes(collection)
        described = [client.describe_index(collection, index_name=n) for n in names]
        if all(int(d.get("pending_index_rows", 0)) == 0 for d in described):
            return
        time.sleep(poll_s)


def _pgvector_rows(
    opts: Options, pop: Population, probes: Probes, single: F32, threshold: float
) -> list[Row]:
    clients = opts.pg_clients or (os.cpu_count() or 1)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-identify-pg-") as scratch:
        if opts.pg_url is not None:
            server_ctx = _given(opts.pg_url)
        else:
            # Heap (~540 B a row) and graph (~700 B a row at m=16) both cached.
            buffers_mb = max(128, min(8192, opts.size * 1400 // 2**20))
            server_ctx = embedded_postgres(Path(scratch), buffers_mb)
        with server_ctx as server, scratch_database(server) as url:
            pg = PgVector(url, clients=clients, quiet=opts.quiet)
            try:
                load_s = pg.load(pop.ids, pop.vectors)
                build_s = pg.build(
                    m=opts.hnsw_m,
                    ef_construction=opts.hnsw_ef_construction,
                    workers=max(0, (os.cpu_count() or 1) - 1),
                    size=opts.size,
                )
                memory = pg.memory_mb()
                settings: list[int | None] = [*opts.ef_search, *([None] if opts.pg_exact else [])]
                for ef in settings:
                    pg.use(ef)
                    m = measure(pg, single, probes.queries, quiet=opts.quiet)
                    # The exact scan has no index: its memory is the table it reads.
                    row = score(
                        pg,
                        m,
                        probes,
                        size=opts.size,
                        build_s=build_s if ef is not None else 0.0,
                        memory_mb=memory if ef is not None else pg.memory_mb("items"),
                        threshold=threshold,
                    )
                    row["load_s"] = round(load_s, 3)
                    row["threads"] = clients
                    rows.append(row)
                    _say(
                        opts,
                        f"  {row['index']}: p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
                        f"recall {row['recall_at_1']}",
                    )
            finally:
                pg.close()
    return rows


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


def earlier_peers(path: Path, size: int) -> list[Row]:
    """The peers' rows of an earlier run at this size (their figures do not depend on
    Border's code; pgvector's HNSW build alone takes about 19 minutes at 1M), marked with
    the file they came from."""
    rows: list[Row] = json.loads(path.read_text())
    peers = [
        {**row, "from": path.name}
        for row in rows
        if row.get("size") == size and not str(row.get("index", "")).startswith("border")
    ]
    if not peers:
        raise ValueError(f"{path} has no peer rows of size {size}")
    return peers


def add_ratios(rows: list[Row], probes: Probes) -> None:
    """p99 of the peer over p99 of each Border row. The pgvector row compared is the fastest
    one whose recall reaches the Border row's (else the one with the best recall)."""
    naive = next((r for r in rows if r["index"] == NAIVE), None)
    pg_rows = [r for r in rows if str(r["index"]).startswith("pgvector")]
    for row in rows:
        if not str(row["index"]).startswith(("border", "milvus")):
            continue
        if naive is not None:
            row["ratio_vs_numpy"] = round(_f(naive["p99_ms"]) / _f(row["p99_ms"]), 2)
        if pg_rows:
            peer = matched_pgvector(pg_rows, _f(row["recall_at_1"]))
            row["ratio_vs_pgvector"] = round(_f(peer["p99_ms"]) / _f(row["p99_ms"]), 2)
            row["pgvector_peer"] = peer["index"]


def matched_pgvector(pg_rows: Sequence[Row], recall: float) -> Row:
    reaching = [r for r in pg_rows if _f(r["recall_at_1"]) >= recall]
    if reaching:
        return min(reaching, key=lambda r: _f(r["p99_ms"]))
    return max(pg_rows, key=lambda r: (_f(r["recall_at_1"]), -_f(r["p99_ms"])))


def _f(value: common.Cell) -> float:
    assert isinstance(value, int | float), value
    return float(value)


def machine_facts() -> dict[str, str]:
    facts = common.machine()
    facts["faiss"] = faiss.__version__
    facts["faiss_threads"] = str(faiss.omp_get_max_threads())
    facts["faiss_blas_threshold"] = str(faiss.cvar.distance_compute_blas_threshold)
    return facts


def render(report: Report, facts: dict[str, str]) -> str:
    lines = [
        "machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()),
        "calibration (unit L2): "
        + ", ".join(f"{k}={v:.3f}" for k, v in report.calibration.items()),
        f"identify threshold for this size: {report.threshold:.4f}",
        "",
        common.table(report.rows, COLUMNS),
    ]
    extra = [r for r in report.rows if "pgvector_peer" in r]
    if extra:
        lines.append("")
        lines.append(
            "ratio_vs_pgvector compares with: "
            + "; ".join(f"{r['index']} -> {r['pgvector_peer']}" for r in extra)
        )
    if report.bandwidth is not None:
        lines += [
            "",
            "memory bandwidth: " + ", ".join(f"{k}={v}" for k, v in report.bandwidth.items()),
            "exact-search floor: " + ", ".join(f"{k}={v}" for k, v in report.floor_ms.items()),
            "faiss IndexFlatIP single query (threads x blas threshold):",
            common.table(
                report.flat_profile, ("threads", "blas_threshold", "p50_ms", "p99_ms", "batch_qps")
            ),
        ]
        for flat in (r for r in report.rows if str(r["index"]).startswith("border-flat")):
            for key in ("floor_all_cores_ms", "floor_1thread_ms"):
                floor = _f(report.floor_ms[key])
                lines.append(f"{flat['index']} p50 / {key}: {_f(flat['p50_ms']) / floor:.2f}x")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> tuple[Options, Path | None]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--size", type=int, default=1_000_000, help="enrolled templates")
    p.add_argument("--queries", type=int, default=300, help="single queries, timed one by one")
    p.add_argument("--batch", type=int, default=2000, help="batch: half mated, half not")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help=f"comma list of {KINDS}")
    p.add_argument("--nprobe", default="", help="IVF nprobe values, numbers or auto (one row each)")
    p.add_argument("--peers", default="", help="alias of --kinds for peers only: numpy,pgvector")
    p.add_argument(
        "--ef-search", default="40,100,200,400,1000", help="pgvector hnsw.ef_search (max 1000)"
    )
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--hnsw-ef-construction", type=int, default=200)
    p.add_argument("--pg-url", default=None, help="an existing server (else embedded, tuned)")
    p.add_argument("--pg-clients", type=int, default=0, help="batch clients (default: cores)")
    p.add_argument("--no-pg-exact", action="store_true", help="skip pgvector's exact scan")
    p.add_argument("--centre-spread", type=float, default=CENTRE_SPREAD)
    p.add_argument("--no-floor", action="store_true", help="skip the bandwidth floor")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--threads", default="1", help="Border rows for each of these search threads (e.g. 1,2)"
    )
    p.add_argument(
        "--peers-from", type=Path, default=None, help="take the peers' rows from this earlier JSON"
    )
    p.add_argument(
        "--milvus-uri", default=None, help="a Milvus server (else Milvus Lite in a temporary file)"
    )
    p.add_argument(
        "--milvus-index",
        default="auto",
        choices=("auto", "FLAT", "IVF_FLAT", "HNSW"),
        help="auto: FLAT on Milvus Lite, HNSW on a server (matching.milvus)",
    )
    p.add_argument("--json", type=Path, default=None, help="write the rows here")
    a = p.parse_args(argv)
    kinds = tuple(k for k in a.kinds.split(",") if k)
    if a.peers:
        kinds = tuple(k for k in kinds if k in ("flat", "ivf")) + tuple(
            k for k in a.peers.split(",") if k
        )
    opts = Options(
        size=a.size,
        queries=a.queries,
        batch=a.batch,
        seed=a.seed,
        kinds=kinds,
        nprobe=tuple("auto" if x == "auto" else int(x) for x in a.nprobe.split(",") if x),
        ef_search=tuple(int(x) for x in a.ef_search.split(",") if x),
        hnsw_m=a.hnsw_m,
        hnsw_ef_construction=a.hnsw_ef_construction,
        pg_url=a.pg_url,
        pg_clients=a.pg_clients,
        pg_exact=not a.no_pg_exact,
        centre_spread=a.centre_spread,
        floor=not a.no_floor,
        quiet=a.quiet,
        threads=tuple(int(x) for x in a.threads.split(",") if x),
        peers_from=a.peers_from,
        milvus_uri=a.milvus_uri,
        milvus_index=a.milvus_index,
    )
    return opts, a.json


def main(argv: Sequence[str] | None = None) -> Report:
    opts, json_path = parse(argv)
    report = run(opts)
    facts = machine_facts()
    print(render(report, facts))
    if json_path is not None:
        for row in report.rows:
            row.update(
                {
                    "cpu": facts["cpu"],
                    "nproc": facts["nproc"],
                    "faiss": facts["faiss"],
                    "numpy": facts["numpy"],
                }
            )
        common.write_json(json_path, report.rows)
    return report


if __name__ == "__main__":
    main()
