"""The process's galleries, kept in step with the records store, which is the truth.

Two galleries: every capture (``enrolled``) and the captures of persons on the active
watchlist (``watchlist``); gallery ids are capture numbers. At start the encrypted
snapshot is loaded and only captures numbered above its watermark are decrypted and
added; then the id sets are reconciled with the store, so a capture committed just before
a crash is added and an erased one removed. Without a usable snapshot everything is
rebuilt from the store.

With ``BORDER_GALLERY_BACKEND=milvus`` both galleries live in Milvus (matching/milvus.py),
one copy shared by every worker and node: nothing is snapshotted, and a start reconciles
the ids Milvus holds with the store's instead of loading. The watermark stays per process:
a dedup first adds whatever another process committed and (say, by crashing) did not add,
which is harmless because an add of a present capture is skipped. A capture committed while
Milvus is away is added by the next catch-up, and a removal that could not reach it is
retried there; searches meanwhile answer 503 ``unavailable``.
"""

import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from uuid import UUID

import numpy as np
import numpy.typing as npt

from core import crypto
from core.db import Conn
from core.errors import ConfigurationError
from core.keys import Keyring
from core.settings import Settings
from core.store import DataKeyRow
from enrollment import store
from enrollment.templates import Template
from matching.gallery import Gallery
from matching.milvus import GalleryUnavailable, MilvusGallery, connect, is_lite

AnyGallery = Gallery | MilvusGallery

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_BATCH = 2000
_NAMES = ("enrolled", "watchlist")


def _snapshot_aad(name: str) -> bytes:
    return f"gallery|{name}".encode()


def template_aad(capture_id: UUID) -> bytes:
    return crypto.aad("captures", "template", capture_id)


def seal_template(key: bytes, capture_id: UUID, template: Template) -> bytes:
    return crypto.seal(key, np.asarray(template, np.float32).tobytes(), template_aad(capture_id))


def open_templates(
    keys: Keyring, rows: Sequence[store.SealedTemplate]
) -> tuple[list[int], list[Template]]:
    """Decrypt sealed templates with the data keys read alongside them, one unwrap per
    person."""
    data_keys: dict[UUID, bytes] = {}
    seqs: list[int] = []
    templates: list[Template] = []
    for row in rows:
        if row.key_version is None or row.wrapped_key is None:  # shredded: erased, skip
            continue
        key = data_keys.get(row.person_id)
        if key is None:
            wrapped = DataKeyRow(row.person_id, row.key_version, row.wrapped_key)
            key = data_keys[row.person_id] = keys.unwrap(wrapped)
        plain = crypto.unseal(key, row.template, template_aad(row.id))
        seqs.append(row.seq)
        templates.append(np.frombuffer(plain, dtype=np.float32))
    return seqs, templates


def milvus_uri(settings: Settings) -> str:
    """BORDER_MILVUS_URI, or Milvus Lite in the data directory."""
    if settings.milvus_uri:
        return settings.milvus_uri
    return str(settings.data_dir / "galleries" / "milvus.db")


def milvus_place(uri: str) -> str:
    """Where Milvus is, for messages: the file, or the server's host and port (never
    credentials written into the URI)."""
    if is_lite(uri):
        return uri
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _held(gallery: AnyGallery, seqs: list[int]) -> set[int]:
    """Which of ``seqs`` the gallery holds (Milvus: one query, not one per capture)."""
    if isinstance(gallery, MilvusGallery):
        return gallery.present(seqs) if seqs else set()
    return {s for s in seqs if s in gallery}


@dataclass(frozen=True)
class _Page:
    """Captures read in one go: how many rows, the last number, and the decrypted ones
    (an erased capture has no key left and is skipped)."""

    read: int
    last_seq: int
    seqs: list[int]
    templates: list[Template]
    watched: set[int]  # of ``seqs``, those of persons on the active watchlist


class Galleries:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enrolled: AnyGallery
        self.watchlist: AnyGallery
        self.shared = settings.gallery_backend == "milvus"
        if self.shared:
            self.enrolled, self.watchlist = self._open_milvus()
        else:
            self.enrolled = self._new_enrolled()
            self.watchlist = Gallery(kind="flat")
        self.watermark = 0
        self._watchlist_changes = -1  # store.watchlist_changes when last synced
        self._replay_from: int | None = None  # a committed capture Milvus did not take
        self._pending_removal: set[int] = set()  # erased captures Milvus still holds
        self._lock = threading.Lock()

    def _open_milvus(self) -> tuple[MilvusGallery, MilvusGallery]:
        settings = self.settings
        uri = milvus_uri(settings)
        lite = is_lite(uri)
        if lite:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        prefix, timeout = settings.milvus_collection_prefix, settings.milvus_timeout_s
        try:
            client = connect(uri, timeout_s=timeout, token=token)
            enrolled = MilvusGallery(
                client, f"{prefix}_enrolled", lite=lite, index=settings.milvus_index,
                timeout_s=timeout,
            )  # fmt: skip
            watchlist = MilvusGallery(
                client, f"{prefix}_watchlist", lite=lite, index="FLAT", timeout_s=timeout
            )
        except (GalleryUnavailable, ValueError) as exc:
            hint = (
                "Milvus Lite serves one process: is another using the file?"
                if lite
                else "is the server up?"
            )
            raise ConfigurationError(
                f"the galleries in Milvus at {milvus_place(uri)} cannot be opened ({exc}); "
                f"{hint} (BORDER_MILVUS_URI)"
            ) from None
        return enrolled, watchlist

    def sizes(self) -> dict[str, int]:
        """Templates in each gallery, for the gauges; none while Milvus is out of reach."""
        try:
            return {"enrolled": len(self.enrolled), "watchlist": len(self.watchlist)}
        except GalleryUnavailable:
            return {}

    def close(self) -> None:
        if isinstance(self.enrolled, MilvusGallery):
            self.enrolled.close()

    def _new_enrolled(self) -> Gallery:
        return Gallery(
            kind=self.settings.gallery_index,
            ivf_min_size=self.settings.gallery_ivf_min_size,
            nprobe=self.settings.gallery_nprobe,
            threads=self.settings.gallery_search_threads,
        )

    @property
    def folder(self) -> Path:
        return self.settings.data_dir / "galleries"

    def identify_threshold(self) -> float:
        """The 1:N (and dedup) threshold for the gallery's size: false matches grow with N
        (FPIR ~ N x FMR), so the threshold tightens for each tenfold growth past 10,000."""
        decades = max(0.0, math.log10(max(len(self.enrolled), 1) / 10_000))
        return (
            self.settings.identify_threshold - self.settings.identify_threshold_per_decade * decades
        )

    def add(self, seqs: list[int], templates: list[Template], watchlisted: set[int]) -> None:
        """Add committed captures, those in ``watchlisted`` to the watchlist too. Captures
        already present are skipped, so replaying is safe. The captures are committed: if
        Milvus cannot take them now, the next catch-up adds them from the store."""
        try:
            self._add(seqs, templates, watchlisted)
        except GalleryUnavailable as exc:
            log.warning("galleries: %s; %d committed captures wait for the next catch-up",
                        exc, len(seqs))  # fmt: skip
            with self._lock:
                self._replay_from = min(self._replay_from or min(seqs), *seqs)

    def _add(self, seqs: list[int], templates: list[Template], watchlisted: set[int]) -> None:
        with self._lock:
            for gallery, wanted in ((self.enrolled, None), (self.watchlist, watchlisted)):
                chosen = [
                    (s, t)
                    for s, t in zip(seqs, templates, strict=True)
                    if wanted is None or s in wanted
                ]
                held = _held(gallery, [s for s, _ in chosen])
                fresh = [(s, t) for s, t in chosen if s not in held]
                if fresh:
                    gallery.add([s for s, _ in fresh], np.vstack([t for _, t in fresh]))
            if seqs:
                self.watermark = max(self.watermark, *seqs)

    def remove(self, seqs: list[int], *, watchlist_only: bool = False) -> None:
        """Take erased (or unlisted) captures out; in Milvus the deleted rows are then
        compacted away. If Milvus cannot be reached, the next catch-up retries (the store
        no longer names these captures, so no search returns them meanwhile)."""
        with self._lock:
            try:
                self._remove(seqs, watchlist_only=watchlist_only)
            except GalleryUnavailable as exc:
                log.warning("galleries: %s; %d removals retried at the next catch-up",
                            exc, len(seqs))  # fmt: skip
                if not watchlist_only:
                    self._pending_removal.update(seqs)

    def _remove(self, seqs: list[int], *, watchlist_only: bool = False) -> None:
        galleries = (self.watchlist,) if watchlist_only else (self.enrolled, self.watchlist)
        for gallery in galleries:
            if gallery.remove(seqs) and isinstance(gallery, MilvusGallery):
                gallery.compact()

    def _pages(
        self, conn: Conn, keys: Keyring, after: int, progress: Progress | None
    ) -> Iterator[_Page]:
        """The captures numbered above ``after``, in order, a page at a time. Watchlist
        entries made meanwhile are taken in by sync_watchlist."""
        total = store.capture_count(conn) if progress is not None else 0
        watched = store.watchlisted_person_ids(conn)
        done = 0
        while rows := store.templates_after(conn, after, _BATCH):
            seqs, templates = open_templates(keys, rows)
            after = rows[-1].seq
            yield _Page(
                len(rows), after, seqs, templates, {r.seq for r in rows if r.person_id in watched}
            )
            done += len(rows)
            if progress is not None:
                progress(done, total)

    def catch_up(self, conn: Conn, keys: Keyring, progress: Progress | None = None) -> int:
        """Add captures committed (by this or another process) above the watermark, and
        any that Milvus could not take when they were committed; when nothing is new this
        costs one indexed query. Milvus out of reach: GalleryUnavailable, which the
        service answers 503 ``unavailable``."""
        done = 0
        with self._lock:
            pending, replay = sorted(self._pending_removal), self._replay_from
            if pending:
                self._remove(pending)
                self._pending_removal.difference_update(pending)
        after = self.watermark if replay is None else min(self.watermark, replay - 1)
        for page in self._pages(conn, keys, after, progress):
            self._add(page.seqs, page.templates, page.watched)
            with self._lock:
                self.watermark = max(self.watermark, page.last_seq)
            done += page.read
        if replay is not None:
            with self._lock:
                if self._replay_from == replay:
                    self._replay_from = None
        return done

    def reconcile(self, conn: Conn, keys: Keyring) -> tuple[int, int]:
        """Make both id sets equal the store's; returns (added, removed)."""
        enrolled = self._match(conn, keys, self.enrolled, store.capture_seqs)
        watchlist = self._match(conn, keys, self.watchlist, store.watchlisted_capture_seqs)
        return enrolled[0] + watchlist[0], enrolled[1] + watchlist[1]

    def sync_watchlist(self, conn: Conn, keys: Keyring) -> None:
        """Take in watchlist entries made or ended by other processes; while nothing has
        changed this costs one count over a small table."""
        changes = store.watchlist_changes(conn)
        if changes != self._watchlist_changes:
            self._match(conn, keys, self.watchlist, store.watchlisted_capture_seqs)
            self._watchlist_changes = changes

    def _match(
        self,
        conn: Conn,
        keys: Keyring,
        gallery: AnyGallery,
        wanted_seqs: Callable[[Conn], list[int]],
    ) -> tuple[int, int]:
        """Make the gallery's ids equal the store's; returns (added, removed). The ids are
        read before the store, so a capture another request adds meanwhile is kept."""
        present = set(gallery.ids().tolist())
        wanted = set(wanted_seqs(conn))
        extra, missing = sorted(present - wanted), sorted(wanted - present)
        added = removed = 0
        if extra:
            with self._lock:
                removed = gallery.remove(extra)
                if removed and isinstance(gallery, MilvusGallery):
                    gallery.compact()
        for start in range(0, len(missing), _BATCH):
            rows = store.templates_by_seq(conn, missing[start : start + _BATCH])
            seqs, templates = open_templates(keys, rows)
            with self._lock:
                held = _held(gallery, seqs)
                fresh = [i for i, seq in enumerate(seqs) if seq not in held]
                if fresh:
                    gallery.add([seqs[i] for i in fresh], np.vstack([templates[i] for i in fresh]))
                    if gallery is self.enrolled:
                        self.watermark = max(self.watermark, *(seqs[i] for i in fresh))
                added += len(fresh)
        return added, removed

    def rebuild(self, conn: Conn, keys: Keyring, progress: Progress | None = None) -> int:
        """Load every capture from the store into new galleries, then put them in place of
        the old ones (which keep answering meanwhile). The enrolled gallery's index is
        built once, at its final size, rather than retrained as it grows."""
        if self.shared:
            return self._rebuild_shared(conn, keys, progress)
        watchlist = Gallery(kind="flat")
        seqs: list[int] = []
        parts: list[npt.NDArray[np.float32]] = []
        watermark = 0
        for page in self._pages(conn, keys, 0, progress):
            if page.seqs:
                seqs.extend(page.seqs)
                parts.append(np.vstack(page.templates))
            listed = [i for i, seq in enumerate(page.seqs) if seq in page.watched]
            if listed:
                watchlist.add(
                    [page.seqs[i] for i in listed], np.vstack([page.templates[i] for i in listed])
                )
            watermark = page.last_seq
        enrolled = self._new_enrolled()
        if seqs:
            log.info("indexing %d templates", len(seqs))
            enrolled.add(seqs, np.vstack(parts))
        with self._lock:
            self.enrolled, self.watchlist, self.watermark = enrolled, watchlist, watermark
            self._watchlist_changes = -1  # entries made during the rebuild: sync again
        return len(enrolled)

    def _rebuild_shared(self, conn: Conn, keys: Keyring, progress: Progress | None) -> int:
        """Refill Milvus from the store: on a server into new collections beside the live
        ones, which keep answering every worker until their names move to the new ones.
        What other processes commit or erase meanwhile is then caught up and reconciled."""
        assert isinstance(self.enrolled, MilvusGallery)
        assert isinstance(self.watchlist, MilvusGallery)
        listed: list[tuple[int, Template]] = []
        last = 0

        def batches() -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
            nonlocal last
            for page in self._pages(conn, keys, 0, progress):
                if page.seqs:
                    yield np.asarray(page.seqs, np.int64), np.vstack(page.templates)
                listed.extend((s, t) for s, t in zip(page.seqs, page.templates, strict=True)
                              if s in page.watched)  # fmt: skip
                last = page.last_seq

        with self._lock:
            self.enrolled.rebuild(batches())
            self.watchlist.rebuild(
                [(np.asarray([s for s, _ in listed], np.int64), np.vstack([t for _, t in listed]))]
                if listed
                else []
            )
            self.watermark = last
            self._watchlist_changes = -1
        self.catch_up(conn, keys)
        self.reconcile(conn, keys)
        return len(self.enrolled)

    def save(self, keys: Keyring) -> None:
        """Write both galleries, sealed with the snapshot key, with the watermark. Milvus
        keeps its own: nothing to write."""
        if self.shared:
            return
        assert isinstance(self.enrolled, Gallery)
        assert isinstance(self.watchlist, Gallery)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            header = json.dumps({"watermark": self.watermark}).encode()
            payloads = {
                "enrolled": self.enrolled.to_bytes(),
                "watchlist": self.watchlist.to_bytes(),
            }
        for name, payload in payloads.items():
            blob = crypto.seal(keys.snapshot_key, header + b"\n" + payload, _snapshot_aad(name))
            # A temporary name of this process's own, flushed before the rename: two workers
            # stopping together never publish a file mixed from both.
            tmp = self.folder / f"{name}.snap.{os.getpid()}.tmp"
            with tmp.open("wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.folder / f"{name}.snap")

    def load(self, keys: Keyring) -> bool:
        """Load the snapshots; False (and nothing changed) when absent or unreadable (or
        the galleries are in Milvus, which has no snapshot)."""
        if self.shared:
            return False
        loaded: dict[str, tuple[int, Gallery]] = {}
        for name in _NAMES:
            path = self.folder / f"{name}.snap"
            if not path.exists():
                return False
            try:
                plain = crypto.unseal(keys.snapshot_key, path.read_bytes(), _snapshot_aad(name))
                split = plain.index(b"\n")
                gallery = Gallery.from_bytes(memoryview(plain)[split + 1 :])
                loaded[name] = (int(json.loads(plain[:split])["watermark"]), gallery)
            except (crypto.DecryptionError, ValueError, KeyError, RuntimeError) as exc:
                log.warning(
                    "gallery snapshot %s unusable (%s); rebuilding", path, type(exc).__name__
                )
                return False
        with self._lock:
            self.watermark = loaded["enrolled"][0]
            self.enrolled = loaded["enrolled"][1]
            self.watchlist = loaded["watchlist"][1]
        # The snapshot keeps the search settings it was saved with; today's apply.
        assert isinstance(self.enrolled, Gallery)
        self.enrolled.tune(
            nprobe=self.settings.gallery_nprobe, threads=self.settings.gallery_search_threads
        )
        return True

    def open(self, conn: Conn, keys: Keyring, progress: Progress | None = None) -> None:
        """Snapshot plus what came after it, or a full rebuild; then reconciled. Milvus
        already holds the galleries: its ids are reconciled with the store's, and this
        process's watermark starts at the newest capture."""
        if self.shared:
            newest = store.newest_capture_seq(conn)
            added, removed = self.reconcile(conn, keys)
            self.watermark = max(self.watermark, newest)
            log.info("galleries in Milvus reconciled with the store: %d added, %d removed",
                     added, removed)  # fmt: skip
            return
        if self.load(keys):
            caught = self.catch_up(conn, keys)
            log.info("galleries loaded from snapshot; %d newer captures replayed", caught)
        else:
            self.rebuild(conn, keys, progress)
        added, removed = self.reconcile(conn, keys)
        if added or removed:
            log.info("galleries reconciled with the store: %d added, %d removed", added, removed)
