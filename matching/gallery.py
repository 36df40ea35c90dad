"""A FAISS gallery of face templates: add, remove, 1:N search, 1:1 distance, snapshots.

Vectors are L2-normalised on the way in, so every distance this module reports is the
Euclidean distance between unit vectors: 0 for the same vector, about 0.17-0.29 for two
photos of one person with dlib's model, 0.45 and more for different people (DESIGN §9;
the raw dlib distance is about 1.4 times larger).

Small galleries are searched exactly (a flat inner-product index). Past ``ivf_min_size``
vectors an inverted-file index (IVF-Flat, nlist about 4·sqrt(N), ``nprobe`` lists per
query) takes over; it is retrained when the gallery has grown fourfold since training.
Searches run concurrently; adds and removes wait for them and run alone.
"""

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
import numpy.typing as npt

Kind = Literal["auto", "flat", "ivf"]
Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]
Distances = npt.NDArray[np.float32]

_FORMAT = b"BGAL1"


def normalise(vectors: npt.ArrayLike, dim: int) -> Vectors:
    """Rows scaled to unit length, as a contiguous float32 (n, dim) array. One vector may
    be given flat; rows of any other width are refused, never reshaped."""
    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(f"vectors must be rows of {dim} values, not of shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("vectors must be finite")
    # In float64 so that large finite values do not overflow to an infinite norm.
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("a zero vector has no direction")
    unit: Vectors = np.ascontiguousarray(array / norms, dtype=np.float32)
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


class Gallery:
    """Templates keyed by int64 ids (the caller's capture numbers)."""

    def __init__(
        self,
        dim: int = 128,
        *,
        kind: Kind = "auto",
        ivf_min_size: int = 50_000,
        nprobe: int = 256,
    ) -> None:
        if kind not in ("auto", "flat", "ivf"):
            raise ValueError(f"unknown index kind {kind!r}")
        self.dim = dim
        self.kind: Kind = kind
        self.ivf_min_size = ivf_min_size
        self.nprobe = nprobe
        self._lock = _ReadWriteLock()
        self._ids: set[int] = set()
        self._index: faiss.Index = self._flat()
        self._trained_size = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: int) -> bool:
        return item in self._ids

    @property
    def index_kind(self) -> Literal["flat", "ivf"]:
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def ids(self) -> Ids:
        with self._lock.read():
            return np.fromiter(self._ids, dtype=np.int64, count=len(self._ids))

    def _flat(self) -> faiss.Index:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def _ivf(self, vectors: Vectors) -> faiss.Index:
        nlist = max(1, min(len(vectors) // 39, round(4 * math.sqrt(len(vectors)))))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(self.nprobe, nlist)
        # One query at a time on several threads: split the probed lists, not the queries.
        index.parallel_mode = 1
        self._trained_size = len(vectors)
        return index

    def _contents(self) -> tuple[Ids, Vectors]:
        if isinstance(self._index, faiss.IndexIVF):
            invlists = self._index.invlists
            assert invlists is not None
            ids: list[Ids] = []
            parts: list[Vectors] = []
            for lst in range(self._index.nlist):
                size = invlists.list_size(lst)
                if size:
                    ids.append(faiss.rev_swig_ptr(invlists.get_ids(lst), size).copy())
                    codes = faiss.rev_swig_ptr(invlists.get_codes(lst), size * self.dim * 4)
                    parts.append(np.frombuffer(codes.copy(), np.float32).reshape(size, self.dim))
            if not ids:
                return np.empty(0, np.int64), np.empty((0, self.dim), np.float32)
            return np.concatenate(ids), np.ascontiguousarray(np.vstack(parts))
        assert isinstance(self._index, faiss.IndexIDMap2)
        flat = faiss.downcast_index(self._index.index)
        vectors = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.empty((0, self.dim))
        id_map: Ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return id_map, np.ascontiguousarray(vectors, dtype=np.float32)

    def _wants_ivf(self, size: int) -> bool:
        return self.kind == "ivf" or (self.kind == "auto" and size >= self.ivf_min_size)

    def _rebuild(self, ids: Ids, vectors: Vectors) -> None:
        if self._wants_ivf(len(ids)) and len(ids) >= 39:
            index = self._ivf(vectors)
            index.add_with_ids(vectors, ids)
        else:
            index = self._flat()
            if len(ids):
                index.add_with_ids(vectors, ids)
        self._index = index

    def add(self, ids: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Add templates under new ids; an id already present is refused (ValueError)."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        unit = normalise(vectors, self.dim)
        if len(id_array) != len(unit):
            raise ValueError(f"{len(id_array)} ids for {len(unit)} vectors")
        if len(set(id_array.tolist())) != len(id_array):
            raise ValueError("ids repeat within the batch")
        if np.any(id_array < 0):
            raise ValueError("ids must not be negative (-1 marks a missing neighbour)")
        with self._lock.write():
            present = [int(i) for i in id_array if int(i) in self._ids]
            if present:
                raise ValueError(f"ids already in the gallery: {present[:5]}")
            size = len(self._ids) + len(id_array)
            is_ivf = isinstance(self._index, faiss.IndexIVF)
            if (not is_ivf and self._wants_ivf(size) and size >= 39) or (
                is_ivf and size > 4 * self._trained_size
            ):
                old_ids, old_vectors = self._contents()
                self._rebuild(np.concatenate([old_ids, id_array]), np.vstack([old_vectors, unit]))
            else:
                self._index.add_with_ids(unit, id_array)
            self._ids.update(id_array.tolist())

    def remove(self, ids: npt.ArrayLike) -> int:
        """Remove templates by id; returns how many were present."""
        id_array = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).ravel())
        with self._lock.write():
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(id_array)))
            self._ids.difference_update(id_array.tolist())
        return removed

    def search(self, vectors: npt.ArrayLike, k: int) -> tuple[Ids, Distances]:
        """The ``k`` nearest templates to each query, nearest first: ids of shape (n, k) and
        distances in the module's unit. Missing neighbours have id -1 and distance inf."""
        if k < 1:
            raise ValueError("k must be at least 1")
        queries = normalise(vectors, self.dim)
        with self._lock.read():
            if not self._ids:
                return (
                    np.full((len(queries), k), -1, np.int64),
                    np.full((len(queries), k), np.inf, np.float32),
                )
            similarities, ids = self._index.search(queries, k)
        distances = _ip_to_distance(similarities)
        distances[ids < 0] = np.inf
        return ids.astype(np.int64), distances

    def to_bytes(self) -> bytes:
        with self._lock.read():
            index_bytes = faiss.serialize_index(self._index).tobytes()
            header = (
                f"{self.dim} {self.kind} {self.ivf_min_size} {self.nprobe} {self._trained_size}"
            )
        return _FORMAT + header.encode().ljust(64) + index_bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> "Gallery":
        if not data.startswith(_FORMAT):
            raise ValueError("not a gallery snapshot")
        fields = data[len(_FORMAT) : len(_FORMAT) + 64].decode().split()
        dim, kind, ivf_min_size, nprobe, trained = fields
        if kind not in ("auto", "flat", "ivf"):
            raise ValueError(f"unknown index kind {kind!r} in snapshot")
        gallery = cls(int(dim), kind=kind, ivf_min_size=int(ivf_min_size), nprobe=int(nprobe))  # type: ignore[arg-type]
        payload = np.frombuffer(data[len(_FORMAT) + 64 :], dtype=np.uint8)
        gallery._index = faiss.deserialize_index(payload)
        if isinstance(gallery._index, faiss.IndexIVF):
            # Not serialised by faiss: single queries split their lists across threads.
            gallery._index.parallel_mode = 1
        gallery._trained_size = int(trained)
        ids, _ = gallery._contents() if gallery._index.ntotal else (np.empty(0, np.int64), None)
        gallery._ids = set(ids.tolist())
        return gallery

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous snapshot in place."""
        tmp = path.with_suffix(path.suffix + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(self.to_bytes())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "Gallery":
        return cls.from_bytes(path.read_bytes())
