"""A FAISS gallery of face templates: add, remove, 1:N search, 1:1 distance, snapshots.

Vectors are L2-normalised on the way in, so every distance this module reports is the
Euclidean distance between unit vectors: 0 for the same vector, about 0.17-0.29 for two
photos of one person with dlib's model, 0.45 and more for different people (DESIGN §9;
the raw dlib distance is about 1.4 times larger).

Small galleries are searched exactly (a flat inner-product index of float32 vectors). Past
``ivf_min_size`` vectors an inverted-file index takes over: nlist about 4·sqrt(N) lists,
``nprobe`` probed per query (by default ``nprobe_for(nlist)``, see there), the vectors stored
as float16 (half the memory and half the bytes a query reads; a distance moves by at most
about 1e-3 at the 0.17-0.29 of genuine pairs, and a vector lies up to 0.015 from itself, far
inside every threshold's margin). It is trained on the whole gallery (faiss caps it at 256
points a list) and retrained when the gallery has grown fourfold since.

A retrain runs beside the live index (DESIGN §13): a background thread copies the
templates a few lists at a time, trains and fills a new index with no lock held, while
the live index keeps answering and taking adds and removes, which are journaled; then the
journal is replayed into the new index (its last entries under a brief write lock) and
the new index takes the live one's place. ``wait_for_retrain()`` waits for it. A batch
added to an empty gallery (a rebuild) is indexed at once, at its final size. Searches run
concurrently; adds and removes wait for them and run alone.

``threads`` is how many cores one search of a few queries may use. One (the default) suits
a service whose concurrency comes from its requests and worker processes: a second OpenMP
thread per search waits on whichever core dlib or PostgreSQL holds at that moment. With
more, an IVF search splits its probed lists and an exact search of a large flat index
splits the vectors into one contiguous range a thread, which is what reaches the memory
bandwidth of several cores. Batches of queries use every core.
"""

import itertools
import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

Kind = Literal["auto", "flat", "ivf"]
# Lists probed per query: a number, or "auto" for nprobe_for(nlist).
NProbe = int | Literal["auto"]
Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]
Distances = npt.NDArray[np.float32]

_FORMAT = b"BGAL1"
_NORMALISE_BLOCK = 16_384
# From this many queries a search is a batch: faiss spreads the queries over every core.
_BATCH_QUERIES = 20
# Below this many vectors an exact search is too short to be worth splitting.
_SPLIT_MIN_SIZE = 100_000
# The OpenMP threads faiss would use (OMP_NUM_THREADS or the machine's cores). The
# setting is per calling thread in the OpenMP runtime, so a search sets it for itself.
_ALL_THREADS = faiss.omp_get_max_threads()
# A retrain in the background trains on half the cores: the others keep searching.
_RETRAIN_THREADS = max(1, _ALL_THREADS // 2)
# A background copy of the inverted lists takes the read lock for this many lists at a
# time, so that an add or remove arriving meanwhile (and the searches queued behind it)
# waits for one chunk, never for the whole copy.
_COPY_LISTS = 64
# nprobe_for: _KNEE_PROBES lists probed at _PROBE_KNEE lists (1M templates), scaled as
# nlist to the power below or above it; never fewer than _MIN_PROBES lists.
_PROBE_KNEE = 4000
_KNEE_PROBES = 360
_PROBES_BELOW = 0.85
_PROBES_ABOVE = 0.5
_MIN_PROBES = 32
# faiss wants at least this many training points for an IVF index (one per list, 39 times).
_IVF_MIN_TRAIN = 39
_split_pool: tuple[ThreadPoolExecutor, int] | None = None  # and its number of threads
_split_pool_lock = threading.Lock()


@contextmanager
def _omp_threads(count: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _splitter(workers: int) -> ThreadPoolExecutor:
    """Threads for split exact searches, each running faiss on one OpenMP thread."""
    global _split_pool
    with _split_pool_lock:
        if _split_pool is None or _split_pool[1] < workers:
            pool = ThreadPoolExecutor(
                workers,
                thread_name_prefix="gallery-split",
                initializer=faiss.omp_set_num_threads,
                initargs=(1,),
            )
            _split_pool = (pool, workers)
        return _split_pool[0]


def _check_search_settings(nprobe: NProbe, threads: int) -> None:
    if nprobe != "auto" and (isinstance(nprobe, bool) or not isinstance(nprobe, int)):
        raise ValueError(f"nprobe must be a number or 'auto', not {nprobe!r}")
    if (nprobe != "auto" and nprobe < 1) or threads < 1:
        raise ValueError("nprobe and threads must be at least 1")


def nlist_for(size: int) -> int:
    """Inverted lists for an IVF index trained on ``size`` vectors: about 4·sqrt(N), and
    never fewer than 39 training points a list."""
    return max(1, min(size // _IVF_MIN_TRAIN, round(4 * math.sqrt(size))))


def nprobe_for(nlist: int) -> int:
    """Lists to probe in an IVF index of ``nlist`` lists (nlist about 4·sqrt(N)) for mated
    rank-1 recall of at least 0.995 of exact search within 2 ms p99 on one thread, measured
    by bench_identify.py (benchmarks/RESULTS.md, "nprobe follows the gallery").

    360 at 4,000 lists (1M templates: recall 0.995 needed 320, 384 took 1.73 ms p99).
    Below, in proportion to nlist^0.85: recall 0.995 needed 7-9 % of the lists at every
    size from 50k, so a query reads about a tenth of the gallery, and a smaller index gets
    a little more than its share where it costs little (136 of 1,265 lists at 100k). Above,
    in proportion to sqrt(nlist): at 10M (12,649 lists) 0.995 needs about 5.6 % (512 gave
    0.991, 1,024 gave 0.999), and 641 keeps a search under 10 ms. Never fewer than 32
    (small indexes are cheap to search) nor more than nlist.
    """
    power = _PROBES_BELOW if nlist <= _PROBE_KNEE else _PROBES_ABOVE
    probes = math.ceil(_KNEE_PROBES * math.pow(nlist / _PROBE_KNEE, power))
    return min(nlist, max(_MIN_PROBES, probes))


def normalise(vectors: npt.ArrayLike, dim: int) -> Vectors:
    """Rows scaled to unit length, as a contiguous float32 (n, dim) array. One vector may
    be given flat; rows of any other width are refused, never reshaped."""
    array = np.asarray(vectors)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"vectors must be rows of {dim} values, not of shape {array.shape}")
    unit: Vectors = np.empty(array.shape, np.float32)
    # In float64, so that large finite values do not overflow to an infinite norm; by
    # blocks, so that a million rows never need a float64 copy of the whole.
    for start in range(0, len(array), _NORMALISE_BLOCK):
        block = np.asarray(array[start : start + _NORMALISE_BLOCK], dtype=np.float64)
        if not np.all(np.isfinite(block)):
            raise ValueError("vectors must be finite")
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        if np.any(norms == 0):
            raise ValueError("a zero vector has no direction")
        unit[start : start + _NORMALISE_BLOCK] = block / norms
    return unit


def distance(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """1:1 distance between two templates, in the gallery's unit (see the module doc)."""
    flat_a, flat_b = np.ravel(a), np.ravel(b)
    unit = normalise(np.vstack([flat_a, flat_b]), flat_a.size)
    return float(np.linalg.norm(unit[0] - unit[1]))


def _ip_to_distance(similarities: npt.NDArray[np.float32]) -> Distances:
    # faiss pads missing neighbours with -FLT_MAX; float64 keeps the padding from
    # overflowing (it is replaced by inf afterwards).
    squared = np.clip(2.0 - 2.0 * similarities.astype(np.float64), 0.0, 4.0)
    distances: Distances = np.sqrt(squared).astype(np.float32)
    return distances


class _ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


@dataclass
class _Retrain:
    """A retrain in progress: what reached the live index since it began, in order (ids
    with their vectors for an add, ids alone for a remove), and when it is over."""

    journal: list[tuple[Ids, Vectors | None]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


def _replay(index: faiss.Index, ops: list[tuple[Ids, Vectors | None]]) -> None:
    """Bring ``index`` to the live index's state for every id the ops touch: each such id
    is removed, then added back with its last vector unless its last op removed it. Right
    whether or not the copy the index was built from had already seen an op."""
    if not ops:
        return
    last: dict[int, Vectors | None] = {}  # each id's last vector, None if removed
    for ids, vectors in ops:
        if vectors is None:
            last.update(dict.fromkeys(ids.tolist()))
        else:
            last.update(zip(ids.tolist(), vectors, strict=True))
    touched = np.fromiter(last, dtype=np.int64, count=len(last))
    index.remove_ids(faiss.IDSelectorBatch(touched))
    kept = [(item, row) for item, row in last.items() if row is not None]
    if kept:
        index.add_with_ids(
            np.ascontiguousarray(np.vstack([row for _, row in kept]), dtype=np.float32),
            np.array([item for item, _ in kept], np.int64),
        )


class Gallery:
    """Templates keyed by int64 ids (the caller's capture numbers).

    ``background_retrain=False`` retrains inline under the write lock, blocking searches
    for the whole training (80-100 s at 1M): the behaviour before retrains ran beside the
    live index, kept for comparison (benchmarks/bench_retrain.py)."""

    def __init__(
        self,
        dim: int = 128,
        *,
        kind: Kind = "auto",
        ivf_min_size: int = 50_000,
        nprobe: NProbe = "auto",
        threads: int = 1,
        background_retrain: bool = True,
    ) -> None:
        if kind not in ("auto", "flat", "ivf"):
            raise ValueError(f"unknown index kind {kind!r}")
        _check_search_settings(nprobe, threads)
        self.dim = dim
        self.kind: Kind = kind
        self.ivf_min_size = ivf_min_size
        self.nprobe: NProbe = nprobe
        self.threads = threads
        self.background_retrain = background_retrain
        self._lock = _ReadWriteLock()
        self._ids: set[int] = set()
        self._index: faiss.Index = self._flat()
        self._trained_size = 0
        self._retrain: _Retrain | None = None
        self._retrain_error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: int) -> bool:
        return item in self._ids

    @property
    def trained_size(self) -> int:
        """How many vectors the IVF index was trained on (0 while flat)."""
        return self._trained_size

    @property
    def index_kind(self) -> Literal["flat", "ivf"]:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    @property
    def nlist(self) -> int:
        """Inverted lists of the IVF index (0 while flat)."""
        index = self._index
        return int(index.nlist) if isinstance(index, faiss.IndexIVF) else 0

    @property
    def probed(self) -> int:
        """Lists a search probes now (0 while flat): ``nprobe``, or the rule's for nlist."""
        index = self._index
        return int(index.nprobe) if isinstance(index, faiss.IndexIVF) else 0

    @property
    def retraining(self) -> bool:
        """A retrain is running beside the live index."""
        return self._retrain is not None

    def wait_for_retrain(self, timeout: float | None = None) -> bool:
        """Wait until no retrain is running; False if ``timeout`` seconds passed first. A
        retrain that failed is raised here once (RuntimeError); the live index it would
        have replaced is whole, and the next add past the size retries."""
        retrain = self._retrain
        if retrain is not None and not retrain.done.wait(timeout):
            return False
        error, self._retrain_error = self._retrain_error, None
        if error is not None:
            raise RuntimeError("the IVF retrain failed") from error
        return True

    def ids(self) -> Ids:
        with self._lock.read():
            return np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))

    def _flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _probe_count(self, nlist: int) -> int:
        return nprobe_for(nlist) if self.nprobe == "auto" else min(self.nprobe, nlist)

    def tune(self, *, nprobe: NProbe, threads: int) -> None:
        """Apply search settings to a gallery built or loaded with others."""
        _check_search_settings(nprobe, threads)
        with self._lock.write():
            self.nprobe, self.threads = nprobe, threads
            if isinstance(self._index, faiss.IndexIVF):
                self._index.nprobe = self._probe_count(self._index.nlist)

    def _ivf(self, vectors: Vectors, threads: int) -> faiss.IndexIVF:
        """A new IVF index trained on ``vectors`` (not yet holding them)."""
        nlist = nlist_for(len(vectors))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dim,
            nlist,
            faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT,
            False,  # store the vectors themselves, not residuals: _ivf_lists decodes them
        )
        with _omp_threads(threads):
            index.train(vectors)
        index.nprobe = self._probe_count(nlist)
        # One query on several threads: split the probed lists, not the queries.
        index.parallel_mode = 1
        return index

    def _ivf_lists(
        self, index: faiss.IndexIVF, *, vectors: bool, lists: range | None = None
    ) -> Iterator[tuple[Ids, Vectors | None]]:
        """Each non-empty inverted list's ids (copied) and, if asked, its vectors."""
        invlists = index.invlists
        assert invlists is not None
        # IVF-Flat (float32) or the float16 scalar quantizer without residuals.
        dtype = np.float32 if index.code_size == self.dim * 4 else np.float16
        if vectors and index.code_size != self.dim * np.dtype(dtype).itemsize:
            raise ValueError(f"cannot decode an IVF index with {index.code_size}-byte codes")
        for lst in lists if lists is not None else range(index.nlist):
            size = invlists.list_size(lst)
            if not size:
                continue
            ids = faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy()
            if not vectors:
                yield ids, None
                continue
            codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * index.code_size)
            yield ids, np.frombuffer(codes, dtype).reshape(size, self.dim).astype(np.float32)

    def _contents(self, chunked: bool = False) -> tuple[Ids, Vectors]:
        """Every id and vector of the live index. ``chunked`` (IVF only, called with no
        lock held): the read lock is taken for a few lists at a time."""
        index = self._index
        if isinstance(index, faiss.IndexIVF):
            parts: list[tuple[Ids, Vectors | None]] = []
            step = _COPY_LISTS if chunked else index.nlist
            for start in range(0, index.nlist, step):
                lists = range(start, min(start + step, index.nlist))
                if chunked:
                    with self._lock.read():
                        parts.extend(self._ivf_lists(index, vectors=True, lists=lists))
                else:
                    parts.extend(self._ivf_lists(index, vectors=True, lists=lists))
            if not parts:
                return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
            ids = np.concatenate([i for i, _ in parts])
            # One list at a time into the result, each list freed once copied: one large
            # vstack would hold the GIL (and every search's Python side) for the whole
            # copy, 0.1-0.2 s at 1M.
            every: Vectors = np.empty((len(ids), self.dim), np.float32)
            row = 0
            for n, (_, part) in enumerate(parts):
                assert part is not None
                every[row : row + len(part)] = part
                row += len(part)
                parts[n] = (ids[:0], None)
            return ids, every
        if chunked:
            with self._lock.read():
                return self._contents()
        assert isinstance(index, faiss.IndexIDMap2)
        flat = faiss.downcast_index(index.index)
        vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.empty((0, self.dim))
        id_map: Ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        return id_map, np.ascontiguousarray(vectors, dtype=np.float32)

    def _wants_ivf(self, size: int) -> bool:
        return self.kind == "ivf" or (self.kind == "auto" and size >= self.ivf_min_size)

    def _retrain_due(self, size: int) -> bool:
        """The index for ``size`` vectors is not the one in place: flat past the IVF size,
        or IVF grown fourfold past what it was trained on."""
        if isinstance(self._index, faiss.IndexIVF):
            return size > 4 * self._trained_size
        return self._wants_ivf(size) and size >= _IVF_MIN_TRAIN

    def _build(self, ids: Ids, vectors: Vectors, threads: int) -> tuple[faiss.Index, int]:
        """A new index holding ``vectors`` and the size it was trained on (0: flat)."""
        if self._wants_ivf(len(ids)) and len(ids) >= _IVF_MIN_TRAIN:
            index = self._ivf(vectors, threads)
            with _omp_threads(threads):
                index.add_with_ids(vectors, ids)
            return index, len(ids)
        flat = self._flat()
        if len(ids):
            flat.add_with_ids(vectors, ids)
        return flat, 0

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add templates under new ids; an id already present is refused (ValueError).
        When the gallery outgrows its index a retrain starts beside it (see the module
        doc); into an empty gallery the index is built at once for the batch's size."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        unit = normalise(vectors, self.dim)
        if len(id_array) != len(unit):
            raise ValueError(f"{len(id_array)} ids for {len(unit)} vectors")
        if np.unique(id_array).size != len(id_array):
            raise ValueError("ids repeat within the batch")
        if np.any(id_array < 0):
            raise ValueError("ids must not be negative (-1 marks a missing neighbour)")
        with self._lock.write():
            present = [int(i) for i in id_array if int(i) in self._ids] if self._ids else []
            if present:
                raise ValueError(f"ids already in the gallery: {present[:5]}")
            size = len(self._ids) + len(id_array)
            due = self._retrain is None and self._retrain_due(size)
            if due and (not self._ids or not self.background_retrain):
                every_id, every_vector = id_array, unit  # no copy when nothing was there
                if self._ids:
                    old_ids, old_vectors = self._contents()
                    every_id = np.concatenate([old_ids, id_array])
                    every_vector = np.vstack([old_vectors, unit])
                self._index, self._trained_size = self._build(every_id, every_vector, _ALL_THREADS)
            else:
                self._index.add_with_ids(unit, id_array)
                if self._retrain is not None:
                    self._retrain.journal.append((id_array, unit))
                elif due:
                    self._start_retrain()
            self._ids.update(id_array.tolist())

    def _start_retrain(self) -> None:
        """Under the write lock: journal from now on, and train beside the live index."""
        retrain = self._retrain = _Retrain()
        threading.Thread(
            target=self._retrain_beside, args=(retrain,), name="gallery-retrain", daemon=True
        ).start()

    def _retrain_beside(self, retrain: _Retrain) -> None:
        try:
            ids, vectors = self._contents(chunked=True)
            if self._retrain_due(len(ids)) or isinstance(self._index, faiss.IndexIVF):
                index, trained = self._build(ids, vectors, _RETRAIN_THREADS)
                del ids, vectors
                # Most of the journal is replayed with no lock held (the index is still
                # this thread's own); the read lock only keeps appends out while taking it.
                with self._lock.read():
                    ops, retrain.journal = retrain.journal, []
                with _omp_threads(_RETRAIN_THREADS):
                    _replay(index, ops)
                with self._lock.write():
                    _replay(index, retrain.journal)
                    if isinstance(index, faiss.IndexIVF):
                        index.nprobe = self._probe_count(index.nlist)
                    self._index, self._trained_size = index, trained
                    self._retrain = None
            else:  # removes shrank the gallery below the IVF size meanwhile: keep it
                with self._lock.write():
                    self._retrain = None
        except BaseException as exc:  # kept for wait_for_retrain; the live index is whole
            with self._lock.write():
                self._retrain, self._retrain_error = None, exc
        finally:
            retrain.done.set()

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove templates by id; returns how many were present."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        with self._lock.write():
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(id_array)))
            self._ids.difference_update(id_array.tolist())
            if self._retrain is not None:
                self._retrain.journal.append((id_array, None))
        return removed

    def search(self, vectors: npt.ArrayLike, k: int) -> tuple[Ids, Distances]:
        """The ``k`` nearest templates to each query, nearest first: ids of shape (n, k) and
        distances in the module's unit. Missing neighbours have id -1 and distance inf."""
        if k < 1:
            raise ValueError("k must be at least 1")
        queries = normalise(vectors, self.dim)
        batch = len(queries) >= _BATCH_QUERIES
        with self._lock.read():
            if not self._ids:
                return (
                    np.full((len(queries), k), -1, np.int64),
                    np.full((len(queries), k), np.inf, np.float32),
                )
            if not batch and self.threads > 1 and self._splittable():
                similarities, ids = self._split_search(queries, k)
            else:
                with _omp_threads(_ALL_THREADS if batch else self.threads):
                    similarities, ids = self._index.search(queries, k)
        distances = _ip_to_distance(similarities)
        distances[ids < 0] = np.inf
        return ids.astype(np.int64), distances

    def _splittable(self) -> bool:
        return isinstance(self._index, faiss.IndexIDMap2) and self._index.ntotal >= _SPLIT_MIN_SIZE

    def _split_search(self, queries: Vectors, k: int) -> tuple[Vectors, Ids]:
        """Exact search of the flat index, one contiguous range of rows a thread (each
        faiss call releases the GIL), the partial top-k lists merged. Under the read lock:
        the views below point into the index's own buffers."""
        mapped = self._index
        assert isinstance(mapped, faiss.IndexIDMap2)
        flat = faiss.downcast_index(mapped.index)
        assert isinstance(flat, faiss.IndexFlat)
        total = flat.ntotal
        rows = faiss.rev_swig_ptr(flat.get_xb(), total * self.dim).reshape(total, self.dim)
        id_map = faiss.rev_swig_ptr(mapped.id_map.data(), total)
        bounds = np.linspace(0, total, self.threads + 1).astype(np.int64)
        futures = [
            _splitter(self.threads).submit(
                faiss.knn, queries, rows[lo:hi], min(k, int(hi - lo)), faiss.METRIC_INNER_PRODUCT
            )
            for lo, hi in itertools.pairwise(bounds)
        ]
        parts = [future.result() for future in futures]
        similarities = np.hstack([sims for sims, _ in parts])
        positions = np.hstack([pos + lo for (_, pos), lo in zip(parts, bounds[:-1], strict=True)])
        best = np.argsort(-similarities, axis=1, kind="stable")[:, :k]
        found: Ids = id_map[np.take_along_axis(positions, best, axis=1)]
        top: Vectors = np.take_along_axis(similarities, best, axis=1)
        if top.shape[1] < k:  # fewer rows than k: pad as faiss does
            pad = k - top.shape[1]
            top = np.pad(top, ((0, 0), (0, pad)), constant_values=-np.finfo(np.float32).max)
            found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
        return top, found

    def to_bytes(self) -> bytes:
        """The live index (during a retrain too: it holds every add and remove so far)."""
        with self._lock.read():
            index_bytes = faiss.serialize_index(self._index).tobytes()
            header = (
                f"{self.dim} {self.kind} {self.ivf_min_size} {self.nprobe} {self._trained_size}"
            )
        return _FORMAT + header.encode().ljust(64) + index_bytes

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> "Gallery":
        """The gallery ``to_bytes`` wrote; a memoryview is read without copying."""
        view = memoryview(data)
        head = bytes(view[: len(_FORMAT) + 64])
        if not head.startswith(_FORMAT):
            raise ValueError("not a gallery snapshot")
        fields = head[len(_FORMAT) :].decode().split()
        dim, kind, ivf_min_size, nprobe, trained = fields
        if kind not in ("auto", "flat", "ivf"):
            raise ValueError(f"unknown index kind {kind!r} in snapshot")
        probes: NProbe = "auto" if nprobe == "auto" else int(nprobe)
        gallery = cls(int(dim), kind=kind, ivf_min_size=int(ivf_min_size), nprobe=probes)  # type: ignore[arg-type]
        payload = np.frombuffer(view[len(_FORMAT) + 64 :], dtype=np.uint8)
        gallery._index = faiss.deserialize_index(payload)
        if isinstance(gallery._index, faiss.IndexIVF):
            # Not serialised by faiss: single queries split their lists across threads.
            gallery._index.parallel_mode = 1
            gallery._index.nprobe = gallery._probe_count(gallery._index.nlist)
        gallery._trained_size = int(trained)
        gallery._ids = set(gallery._stored_ids().tolist())
        return gallery

    def _stored_ids(self) -> Ids:
        """The ids in the index, without copying its vectors."""
        if isinstance(self._index, faiss.IndexIVF):
            parts = [ids for ids, _ in self._ivf_lists(self._index, vectors=False)]
            return np.concatenate(parts) if parts else np.empty(0, np.int64)
        assert isinstance(self._index, faiss.IndexIDMap2)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous snapshot in place."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Gallery":
        return cls.from_bytes(path.read_bytes())
