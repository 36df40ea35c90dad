"""A gallery of face templates in Milvus: the same contract as matching.gallery.Gallery
(add, remove, 1:N search in the same unit), held outside the process so that every worker
and node shares one copy (DESIGN §13).

``uri`` is a file path for Milvus Lite, which runs embedded in this process and locks its
file (one process only), or ``http://host:19530`` for a Milvus server, standalone or
cluster. Vectors are L2-normalised on the way in and searched by inner product; distances
are converted to the Euclidean distance between unit vectors, as the FAISS gallery reports
them. Collections are created with strong consistency: a search sees every insert and
delete acknowledged before it.

On a server a gallery's name is an alias of its current collection, so ``rebuild`` fills a
new collection while searches go on against the old one, then moves the alias in one step.
Milvus Lite has neither aliases nor compaction; there a rebuild drops and refills.

Milvus holds the templates unencrypted (vectors, not images); see docs/security.md.
Every failure to reach Milvus, or an answer it refuses, raises GalleryUnavailable. Calls
give up after ``timeout_s`` whole seconds (pymilvus bounds its retries by a timeout only
when it is an int; otherwise it retries 75 times, minutes against a stopped server).
"""

import functools
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt
from pymilvus import DataType, MilvusClient, MilvusException

from matching.gallery import Distances, Ids, normalise

MilvusIndex = Literal[
    "auto", "FLAT", "IVF_FLAT", "HNSW", "GPU_BRUTE_FORCE", "GPU_IVF_FLAT", "GPU_CAGRA"
]
_ID, _VECTOR = "id", "template"
_WRITE_BATCH = 5_000  # rows per insert: 2.5 MB of float32 templates, far below gRPC's cap
_ID_BATCH = 16_384  # ids per query or delete expression
_SLOW_S = 120  # the least time given to creating, loading and flushing collections
_COUNT_TTL_S = 2.0  # len() is cached this long: it only picks the 1:N threshold's decade
# Index parameters when the gallery builds them, and per search. HNSW: M 16 and
# efConstruction 200, Milvus's documented middle ground, a search exploring max(128, k)
# candidates. IVF: 1,024 lists, 64 probed. CAGRA (GPU): a graph of degree 32, a search
# keeping max(128, k) candidates. Brute force on a GPU is exact, like FLAT.
_BUILD: dict[str, dict[str, int]] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 1024},
    "GPU_IVF_FLAT": {"nlist": 1024},
    "GPU_CAGRA": {"intermediate_graph_degree": 64, "graph_degree": 32},
}
_WIDEST = 128

# pymilvus logs every failed call at ERROR through handlers of its own, in its own words
# (a URI with its password among them); the failure reaches the caller as
# GalleryUnavailable, which the caller logs once.
for _name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
    logging.getLogger(_name).setLevel(logging.CRITICAL + 1)

P = ParamSpec("P")
R = TypeVar("R")


class GalleryUnavailable(RuntimeError):
    """Milvus could not be reached or refused the operation; nothing was changed that the
    caller must undo (the records store is the truth)."""


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (ValueError, TypeError, GalleryUnavailable):
            raise
        except MilvusException as exc:
            raise GalleryUnavailable(f"Milvus: {exc.message or type(exc).__name__}") from exc
        except Exception as exc:  # gRPC's own errors: the channel is down
            raise GalleryUnavailable(f"Milvus unreachable ({type(exc).__name__})") from exc

    return wrapper


def is_lite(uri: str) -> bool:
    """A file path (Milvus Lite), as opposed to a server's address."""
    return "://" not in uri


@_guarded
def connect(uri: str, *, timeout_s: int = 10, token: str = "") -> MilvusClient:
    """One client for the process (both galleries share it). A file path starts Milvus
    Lite on it; an unreachable server or a file another process holds raises
    GalleryUnavailable within ``timeout_s``."""
    with warnings.catch_warnings():
        # milvus_lite imports pkg_resources, which warns that it is deprecated.
        warnings.simplefilter("ignore", UserWarning)
        return MilvusClient(uri, token=token, timeout=timeout_s)


class MilvusGallery:
    """Templates keyed by int64 ids (the caller's capture numbers), in one collection."""

    def __init__(
        self,
        client: MilvusClient,
        name: str,
        dim: int = 128,
        *,
        lite: bool,
        index: MilvusIndex = "auto",
        timeout_s: int = 10,
    ) -> None:
        if index == "auto":
            index = "FLAT" if lite else "HNSW"
        if lite and index not in ("FLAT", "IVF_FLAT"):
            raise ValueError("Milvus Lite indexes FLAT or IVF_FLAT only")
        self.client, self.name, self.dim = client, name, dim
        self.lite, self.index, self.timeout_s = lite, index, timeout_s
        # Creating, loading, flushing and moving collections take longer than a search.
        self.slow_s = max(timeout_s, _SLOW_S)
        self._count: tuple[float, int] | None = None  # (when, how many)
        self._count_lock = threading.Lock()
        self.ensure()

    # -- collections ---------------------------------------------------------------------

    @property
    def index_kind(self) -> str:
        return f"milvus-{self.index.lower()}"

    def _create(self, collection: str) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_ID, DataType.INT64, is_primary=True)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=self.dim)
        params = self.client.prepare_index_params()
        build = dict(_BUILD.get(self.index, {}))
        params.add_index(_VECTOR, index_type=self.index, metric_type="IP", params=build)
        self.client.create_collection(
            collection,
            schema=schema,
            index_params=params,
            consistency_level="Strong",
            timeout=self.slow_s,
        )

    def _generations(self) -> list[str]:
        prefix = f"{self.name}_g"
        return sorted(
            (c for c in self.client.list_collections(timeout=self.slow_s) if c.startswith(prefix)),
            key=lambda c: int(c[len(prefix) :]) if c[len(prefix) :].isdigit() else -1,
        )

    def _live(self) -> str | None:
        """The collection behind the name: on a server the alias's target."""
        if self.lite:
            return self.name if self.client.has_collection(self.name, timeout=self.slow_s) else None
        try:
            described = self.client.describe_alias(self.name, timeout=self.slow_s)
        except MilvusException:
            return None
        return str(described["collection_name"])

    @_guarded
    def ensure(self) -> None:
        """Create the collection (and on a server its alias) unless it exists; load it."""
        live = self._live()
        if live is None:
            live = self.name if self.lite else f"{self.name}_g1"
            if not self.client.has_collection(live, timeout=self.slow_s):
                self._create(live)
            if not self.lite:
                self.client.create_alias(live, self.name, timeout=self.slow_s)
        self.client.load_collection(live, timeout=self.slow_s)

    @_guarded
    def rebuild(self, batches: Iterable[tuple[Ids, npt.ArrayLike]]) -> int:
        """Refill from ``batches`` of (ids, vectors). On a server a new collection is
        filled beside the live one, which keeps answering, and the alias moves to it; on
        Milvus Lite the collection is dropped and refilled. Returns the rows written."""
        written = 0
        if self.lite:
            if self.client.has_collection(self.name, timeout=self.slow_s):
                self.client.drop_collection(self.name, timeout=self.slow_s)
            self._create(self.name)
            target = self.name
        else:
            existing = self._generations()
            last = existing[-1] if existing else f"{self.name}_g0"
            target = f"{self.name}_g{int(last.rsplit('_g', 1)[1]) + 1}"
            self._create(target)
        for ids, vectors in batches:
            written += self._upsert(target, ids, vectors)
        self.client.flush(target, timeout=self.slow_s)
        if not self.lite:
            previous = self._live()
            if previous is None:
                self.client.create_alias(target, self.name, timeout=self.slow_s)
            else:
                self.client.alter_alias(target, self.name, timeout=self.slow_s)
            for old in self._generations():
                if old != target:
                    self.client.drop_collection(old, timeout=self.slow_s)
        self._count = None
        return written

    @_guarded
    def drop(self) -> None:
        """Remove the gallery and everything in it (tests and benchmarks)."""
        if not self.lite:
            if self._live() is not None:
                self.client.drop_alias(self.name, timeout=self.slow_s)
            for old in self._generations():
                self.client.drop_collection(old, timeout=self.slow_s)
        elif self.client.has_collection(self.name, timeout=self.slow_s):
            self.client.drop_collection(self.name, timeout=self.slow_s)
        self._count = None

    # -- the Gallery contract ------------------------------------------------------------

    def _upsert(self, collection: str, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> int:
        id_array = np.asarray(ids, dtype=np.int64).ravel()
        unit = normalise(vectors, self.dim)
        if len(id_array) != len(unit):
            raise ValueError(f"{len(id_array)} ids for {len(unit)} vectors")
        if np.unique(id_array).size != len(id_array):
            raise ValueError("ids repeat within the batch")
        if np.any(id_array < 0):
            raise ValueError("ids must not be negative (-1 marks a missing neighbour)")
        for start in range(0, len(id_array), _WRITE_BATCH):
            rows = [
                {_ID: int(i), _VECTOR: v}
                for i, v in zip(
                    id_array[start : start + _WRITE_BATCH].tolist(),
                    unit[start : start + _WRITE_BATCH],
                    strict=True,
                )
            ]
            # Upsert, not insert: Milvus does not refuse a repeated primary key, and two
            # workers may add the same committed capture.
            self.client.upsert(collection, rows, timeout=self.timeout_s)
        return len(id_array)

    @_guarded
    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add templates; an id already present is overwritten with the same template (the
        caller's ids name committed captures, so adding twice is harmless)."""
        self._upsert(self.name, ids, vectors)
        self._count = None

    @_guarded
    def present(self, ids: Iterable[int]) -> set[int]:
        """Which of ``ids`` the gallery holds: one query per 16,384 ids."""
        wanted = [int(i) for i in ids]
        found: set[int] = set()
        for start in range(0, len(wanted), _ID_BATCH):
            chunk = wanted[start : start + _ID_BATCH]
            rows = self.client.query(
                self.name, filter=f"{_ID} in {chunk}", output_fields=[_ID], timeout=self.timeout_s
            )
            found.update(int(r[_ID]) for r in rows)
        return found

    def __contains__(self, item: int) -> bool:
        return bool(self.present([item]))

    @_guarded
    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove templates by id; returns how many were present."""
        wanted = np.asarray(ids, dtype=np.int64).ravel().tolist()
        there = self.present(wanted)
        if there:
            listed = sorted(there)
            for start in range(0, len(listed), _ID_BATCH):
                self.client.delete(
                    self.name, ids=listed[start : start + _ID_BATCH], timeout=self.timeout_s
                )
            self._count = None
        return len(there)

    @_guarded
    def compact(self) -> None:
        """Ask the server to rewrite segments without deleted rows (asynchronous there).
        Milvus Lite has no compaction: it keeps deleted rows out of every answer."""
        if not self.lite:
            live = self._live()
            if live is not None:
                self.client.compact(live, timeout=self.slow_s)

    @_guarded
    def ids(self) -> Ids:
        """Every id held, read in pages."""
        iterator = self.client.query_iterator(
            self.name, batch_size=_ID_BATCH, filter=f"{_ID} >= 0", output_fields=[_ID]
        )
        found: list[int] = []
        try:
            while page := iterator.next():
                found.extend(int(r[_ID]) for r in page)
        finally:
            iterator.close()
        return np.asarray(found, dtype=np.int64)

    @_guarded
    def __len__(self) -> int:
        with self._count_lock:
            now = time.monotonic()
            if self._count is None or now - self._count[0] > _COUNT_TTL_S:
                rows = self.client.query(
                    self.name, filter="", output_fields=["count(*)"], timeout=self.timeout_s
                )
                self._count = (now, int(rows[0]["count(*)"]))
            return self._count[1]

    @_guarded
    def search(self, vectors: npt.ArrayLike, k: int) -> tuple[Ids, Distances]:
        """The ``k`` nearest templates to each query, nearest first, in the FAISS gallery's
        unit; missing neighbours have id -1 and distance inf."""
        if k < 1:
            raise ValueError("k must be at least 1")
        queries = normalise(vectors, self.dim)
        params: dict[str, Any] = {}
        if self.index == "HNSW":
            params = {"ef": max(_WIDEST, k)}
        elif self.index in ("IVF_FLAT", "GPU_IVF_FLAT"):
            params = {"nprobe": 64}
        elif self.index == "GPU_CAGRA":
            params = {"itopk_size": max(_WIDEST, k)}
        hits = self.client.search(
            self.name,
            data=list(queries),
            limit=min(k, 16_384),
            anns_field=_VECTOR,
            search_params={"metric_type": "IP", "params": params},
            timeout=self.timeout_s,
        )
        found = np.full((len(queries), k), -1, np.int64)
        similarity = np.full((len(queries), k), -np.inf, np.float64)
        for row, answer in enumerate(hits):
            for col, hit in enumerate(answer[:k]):
                found[row, col] = int(hit["id"])
                similarity[row, col] = float(hit["distance"])
        distances: Distances = np.sqrt(np.clip(2.0 - 2.0 * similarity, 0.0, 4.0)).astype(np.float32)
        distances[found < 0] = np.inf
        return found, distances

    def close(self) -> None:
        self.client.close()
