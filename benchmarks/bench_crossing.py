"""A kiosk crossing, POST /v1/crossings, served over a gallery of N enrolled captures
(DESIGN §8: ≤ 150 ms p95 server side at 1M).

    uv run python benchmarks/bench_crossing.py [--size 1000000] [--json crossing.json]

The service is the real one, ``create_app(settings)`` with its lifespan, on the embedded
PostgreSQL of a population built by benchmarks/populate.py (N captures sealed as enrollment
seals them, the galleries' snapshot saved). Requests go through Starlette's TestClient, in
process (``--transport uvicorn`` serves the same app with uvicorn on loopback instead and
adds the client's round trip over TCP). One kiosk, one request at a time.

Two kinds of crossing, each a 640x480 JPEG made from a real photo (a 4:3 window around the
face, populate.kiosk_frame):

- ``returning``: a known traveller (enrolled with obama.jpg) crosses with a frame from
  obama2.jpg or obama3.jpg (0.24-0.27 from the enrolled template: a mated 1:1 match),
  alternately entering and leaving; half are visa-exempt, half hold a visa. The flow reads
  the document's holder by blind index, compares the live face with their captures (1:1),
  searches the watchlist gallery, runs the visa and 90/180 rules and writes the crossing
  and its audit event in one transaction.
- ``first-time``: a visa-exempt traveller never seen before (a new GBR passport, a frame
  of biden.jpg) is enrolled at the entry, so the flow adds the 1:N dedup search over all N
  captures and the person, document and capture inserts. Between two such requests, outside
  the timing, the person is erased again so that the same face is new the next time.

Server side is timed by an ASGI middleware around the whole app (multipart parsing, API-key
check, the flow, the response). The breakdown times the product's own functions where the
flow calls them, by wrapping them in this process while the benchmark runs (no product code
is edited): each stage's time is exclusive of the stages nested in it, so the stages add up
to the server-side total. ``database`` is what the crossing's transaction spends outside
them: begin, the traveller lock, the document lookup, the crossing insert and the commit.

The peer is the first implementation a team writes with face_recognition's defaults:
``load_image_file`` (PIL), ``face_locations`` at full resolution (HOG, one upsample),
``face_encodings`` (5-point landmarks, one jitter), no quality checks, and
``face_distance`` (numpy) against the traveller's encodings, over every watchlist encoding
and, for a first-time traveller, over all N encodings as an (N, 128) float64 array. Its
other stages (HTTP, MRZ, rules, database, audit) are Border's own, measured in the same
iteration: the two differ only in the face and search pipeline.
"""

import argparse
import functools
import io
import json
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar
from uuid import UUID, uuid4

import httpx
import numpy as np
import numpy.typing as npt
from starlette.types import ASGIApp, Receive, Scope, Send

from benchmarks import common, populate
from border import crossings
from border import models as border_models
from border import service as border_service
from border import store as border_store
from border.app import create_app
from border.schema import migration_dirs
from core import auth
from core.runtime import Runtime
from core.settings import Settings
from enrollment import intake, quality
from enrollment import service as enrollment_service
from enrollment.service import Biometrics
from enrollment.templates import FaceModel
from visa import rules
from visa import service as visa_service
from visa.mrz import format_td3

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import face_recognition
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

F = TypeVar("F", bound=Callable[..., Any])
Role = Literal["kiosk", "officer", "consular", "auditor", "admin"]
Encodings = npt.NDArray[np.float64]
POINT = "UTO-AIR-1"
RETURNING_PHOTOS = ("obama2.jpg", "obama3.jpg")
FIRST_TIME_PHOTO = "biden.jpg"
TARGET_P95_MS = 150.0
# Stages in flow order; "http" is the server's own work around the flow.
STAGES = (
    "http",
    "decode",
    "mrz",
    "detect",
    "encode",
    "quality",
    "verify_1to1",
    "watchlist",
    "dedup_1toN",
    "enroll_insert",
    "rules",
    "audit",
    "database",
    "gallery_add",
    "other",
)
FACE_STAGES = ("decode", "detect", "encode", "quality", "verify_1to1", "watchlist", "dedup_1toN")
LABELS = {
    "http": "HTTP, multipart, API key, response",
    "decode": "decode (JPEG to RGB)",
    "mrz": "MRZ parse",
    "detect": "face detection",
    "encode": "landmarks + 128-d encoding",
    "quality": "quality measures",
    "verify_1to1": "1:1 verify (read, unseal, compare)",
    "watchlist": "watchlist search",
    "dedup_1toN": "1:N dedup search over N",
    "enroll_insert": "enrollment inserts (person, document, capture)",
    "rules": "visa and stay rules (with their reads)",
    "audit": "audit event",
    "database": "database: lock, lookup, insert, commit",
    "gallery_add": "gallery add after commit",
    "other": "rest of the flow",
}


class Tracer:
    """Exclusive and inclusive time per named stage, for one request at a time."""

    def __init__(self) -> None:
        self.exclusive: dict[str, float] = {}
        self.inclusive: dict[str, float] = {}
        self._children: list[float] = []

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        self._children.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            nested = self._children.pop()
            self.exclusive[name] = self.exclusive.get(name, 0.0) + elapsed - nested
            self.inclusive[name] = self.inclusive.get(name, 0.0) + elapsed
            if self._children:
                self._children[-1] += elapsed

    def take(self) -> tuple[dict[str, float], dict[str, float]]:
        taken = self.exclusive, self.inclusive
        self.exclusive, self.inclusive = {}, {}
        return taken

    def wrap(self, name: str, fn: F) -> F:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.span(name):
                return fn(*args, **kwargs)

        return timed  # type: ignore[return-value]

    def wrap_context(
        self, name: str, fn: Callable[..., AbstractContextManager[Any]]
    ) -> Callable[..., AbstractContextManager[Any]]:
        @contextmanager
        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            with self.span(name), fn(*args, **kwargs) as value:
                yield value

        return timed


_ABSENT = object()


@contextmanager
def patched(targets: list[tuple[object, str, Callable[[Any], Any]]]) -> Iterator[None]:
    """Replace ``owner.attr`` with ``make(original)`` for the block; restore afterwards."""
    saved = []
    for owner, attr, make in targets:
        # What the owner holds itself (a classmethod object, say), or nothing when the
        # attribute comes from its class and the patch only shadows it.
        raw = vars(owner).get(attr, _ABSENT)
        saved.append((owner, attr, raw))
        setattr(owner, attr, make(getattr(owner, attr)))
    try:
        yield
    finally:
        for owner, attr, raw in reversed(saved):
            if raw is _ABSENT:
                delattr(owner, attr)
            else:
                setattr(owner, attr, raw)


def flow_patches(tracer: Tracer, model: FaceModel) -> list[tuple[object, str, Any]]:
    """The product functions a crossing or an enrollment calls, wrapped where they are
    looked up at call time (module attributes, the shared model's methods)."""
    w = tracer.wrap
    return [
        (intake, "decode", lambda f: w("decode", f)),
        (visa_service, "read_mrz", lambda f: w("mrz", f)),
        (model, "detect", lambda f: w("detect", f)),
        (model, "describe", lambda f: w("encode", f)),
        (quality, "assess", lambda f: w("quality", f)),
        (enrollment_service, "verify_template", lambda f: w("verify_1to1", f)),
        (enrollment_service, "watchlist_hits", lambda f: w("watchlist", f)),
        (enrollment_service, "_refuse_duplicates", lambda f: w("dedup_1toN", f)),
        (enrollment_service, "enroll_in", lambda f: w("enroll_insert", f)),
        (rules, "evaluate_entry", lambda f: w("rules", f)),
        (rules, "evaluate_exit", lambda f: w("rules", f)),
        (visa_service, "visa_facts", lambda f: w("rules", f)),
        (crossings, "_history", lambda f: w("rules", f)),
        (enrollment_service, "is_guardian_on", lambda f: w("rules", f)),
        (crossings, "audit_service", lambda m: _AuditProxy(m, tracer)),
        (enrollment_service, "audit_service", lambda m: _AuditProxy(m, tracer)),
        (crossings, "transaction", lambda f: tracer.wrap_context("database", f)),
        (enrollment_service, "transaction", lambda f: tracer.wrap_context("database", f)),
        (crossings, "cross", lambda f: w("other", f)),
        (enrollment_service, "enroll_document", lambda f: w("other", f)),
    ]


class _AuditProxy:
    """The audit service module with ``record`` timed (the flows import it by module)."""

    def __init__(self, module: Any, tracer: Tracer) -> None:
        self._module = module
        self.record = tracer.wrap("audit", module.record)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


class ServerTimer:
    """Outermost ASGI middleware: the server-side time of each request."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.tracer.span("http"):
            await self.app(scope, receive, send)


@dataclass
class Service:
    """The running app: how to post to it, and what its lifespan started."""

    post: Callable[..., httpx.Response]
    rt: Runtime
    bio: Biometrics


@contextmanager
def _captured_state() -> Iterator[dict[str, Any]]:
    """Record the Runtime and Biometrics the lifespan starts (uvicorn hides its state)."""
    seen: dict[str, Any] = {}

    def grab(name: str, original: Callable[..., Any]) -> Any:
        def start(*args: Any, **kwargs: Any) -> Any:
            seen[name] = original(*args, **kwargs)
            return seen[name]

        return staticmethod(start)

    with patched(
        [
            (Runtime, "start", lambda f: grab("rt", f)),
            (Biometrics, "start", lambda f: grab("bio", f)),
        ]
    ):
        yield seen


@contextmanager
def serve(app: FastAPI, transport: str) -> Iterator[Service]:
    """Start the app's lifespan and yield a way to post to it."""
    with _captured_state() as seen:
        if transport == "testclient":
            with TestClient(app, raise_server_exceptions=True) as client:
                yield Service(client.post, seen["rt"], seen["bio"])
            return
        import uvicorn

        port = common.free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn stopped during start-up")
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                yield Service(client.post, seen["rt"], seen["bio"])
        finally:
            server.should_exit = True
            thread.join()


@contextmanager
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A Runtime of this process's own on the store (the embedded server is shared)."""
    rt = Runtime.start(settings, migration_dirs())
    try:
        yield rt
    finally:
        rt.close()


def kiosk_key(rt: Runtime, role: Role = "kiosk") -> str:
    """A new API client's key; a kiosk's is bound to the benchmark's border point."""
    body = border_models.ClientIn(
        name=f"bench {role}", role=role, border_point=POINT if role == "kiosk" else None
    )
    return border_service.create_client(rt, auth.command_line("benchmark"), body).api_key


def first_time_mrz(number: str) -> str:
    return format_td3(
        surname="VISITOR",
        given_names="FIRST TIME",
        document_number=number,
        issuing_state="GBR",
        nationality="GBR",
        birth_date=date(1970, 5, 17),
        sex="F",
        expiry_date=date(2033, 1, 31),
    )


@dataclass
class Sample:
    server_s: float
    client_s: float
    stages: dict[str, float]
    decision: str
    codes: list[str]
    person_id: UUID | None


@dataclass
class Run:
    returning: list[Sample] = field(default_factory=list)
    first_time: list[Sample] = field(default_factory=list)
    start_s: float = 0.0
    gallery_size: int = 0
    erase_s: list[float] = field(default_factory=list)


def next_directions(rt: Runtime, travellers: list[populate.Traveller]) -> dict[UUID, str]:
    """Each traveller's next crossing: an exit when their last admitted one was an entry
    (earlier runs leave some inside), an entry otherwise."""
    going = {}
    with rt.pool.connection() as conn:
        for who in travellers:
            moves = border_store.movements(conn, who.person_id)
            going[who.person_id] = "exit" if moves and moves[-1].direction == "entry" else "entry"
    return going


def _person_of(svc: Service, crossing_id: UUID) -> UUID | None:
    with svc.rt.pool.connection() as conn:
        record = crossings.officer_record(conn, crossing_id)
    return None if record is None else record.person_id


def post_crossing(
    svc: Service, tracer: Tracer, key: str, image: bytes, mrz: str, direction: str
) -> Sample:
    tracer.take()
    started = time.perf_counter()
    response = svc.post(
        "/v1/crossings",
        headers={"Authorization": f"Bearer {key}"},
        files={"image": ("frame.jpg", image, "image/jpeg")},
        data={"mrz": mrz, "direction": direction, "border_point": POINT},
    )
    client_s = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"crossing refused: {response.status_code} {response.text}")
    exclusive, inclusive = tracer.take()
    body = response.json()
    return Sample(
        server_s=inclusive["http"],
        client_s=client_s,
        stages=exclusive,
        decision=body["decision"],
        codes=[r["code"] for r in body["reasons"]],
        # A kiosk learns no person id (DESIGN §12): read it as an officer would.
        person_id=_person_of(svc, UUID(body["crossing_id"])),
    )


def measure_border(
    pop: populate.Population,
    model: FaceModel,
    *,
    returning: int,
    first_time: int,
    warmup: int = 5,
    transport: str = "testclient",
    out: TextIO | None = None,
) -> Run:
    """Returning crossings, then first-time ones, one at a time, with the breakdown."""
    tracer = Tracer()
    app = create_app(pop.settings(), model)
    app.add_middleware(ServerTimer, tracer=tracer)
    frames = [populate.kiosk_frame(model, p) for p in RETURNING_PHOTOS]
    stranger = populate.kiosk_frame(model, FIRST_TIME_PHOTO)
    run = Run()
    tag = uuid4().hex[:4].upper()
    cleanup = auth.command_line("benchmark: erase the first-time traveller again")
    with ExitStack() as stack:
        started = time.perf_counter()
        with common.ticking(f"service start on {pop.size:,} captures", stream=out):
            svc = stack.enter_context(serve(app, transport))
        run.start_s = time.perf_counter() - started
        run.gallery_size = len(svc.bio.galleries.enrolled)
        key = kiosk_key(svc.rt)
        stack.enter_context(patched(flow_patches(tracer, model)))
        travellers = pop.travellers
        going = next_directions(svc.rt, travellers)
        progress = common.Progress("returning crossings", warmup + returning, stream=out)
        for i in range(warmup + returning):
            who = travellers[i % len(travellers)]
            direction = going[who.person_id]
            sample = post_crossing(svc, tracer, key, frames[i % 2], who.mrz(), direction)
            if sample.decision == "admit":
                going[who.person_id] = "exit" if direction == "entry" else "entry"
            if i >= warmup:
                run.returning.append(sample)
            progress.update(i + 1)
        progress.finish()
        extra = 1 if warmup else 0
        progress = common.Progress("first-time crossings", extra + first_time, stream=out)
        for j in range(extra + first_time):
            mrz = first_time_mrz(f"F{tag}{j:04d}")
            sample = post_crossing(svc, tracer, key, stranger, mrz, "entry")
            if "FACE_MISMATCH" in sample.codes or sample.person_id is None:
                raise RuntimeError(f"the first-time traveller was not enrolled: {sample.codes}")
            if j >= extra:
                run.first_time.append(sample)
            erase_started = time.perf_counter()
            enrollment_service.erase(svc.rt, svc.bio, cleanup, sample.person_id)
            run.erase_s.append(time.perf_counter() - erase_started)
            progress.update(j + 1)
        progress.finish()
    return run


def naive_crossing(
    image: bytes,
    person: Encodings | None,
    watchlist: Encodings | None,
    gallery: Encodings | None,
) -> dict[str, float]:
    """face_recognition's defaults, stage by stage, in seconds: decode, detect and encode
    the one face, then compare it with each set of encodings given (an enrollment gives
    only the gallery)."""
    times: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[name] = now - clock
        clock = now

    picture = face_recognition.load_image_file(io.BytesIO(image))
    lap("decode")
    boxes = face_recognition.face_locations(picture)
    lap("detect")
    encodings = face_recognition.face_encodings(picture, boxes)
    lap("encode")
    if len(encodings) != 1:
        raise RuntimeError(f"the naive pipeline found {len(encodings)} faces")
    times["quality"] = 0.0
    if person is not None:
        face_recognition.face_distance(person, encodings[0])
        lap("verify_1to1")
    if watchlist is not None:
        face_recognition.face_distance(watchlist, encodings[0])
        lap("watchlist")
    if gallery is not None:
        face_recognition.face_distance(gallery, encodings[0])
        lap("dedup_1toN")
    return times


def naive_arrays(
    pop: populate.Population, watchlisted: int, with_gallery: bool
) -> tuple[Encodings, Encodings, Encodings | None]:
    """The peer's in-memory encodings: the traveller's, the watchlist's, and (for
    first-time travellers) every enrolled one, float64 as face_encodings returns them."""
    person = np.asarray([pop.traveller_template], np.float64)
    blocks = []
    for _, vectors in pop.templates():
        blocks.append(vectors.astype(np.float64))
        if not with_gallery and sum(len(b) for b in blocks) >= watchlisted:
            break
    everything = np.vstack(blocks)
    return person, everything[:watchlisted].copy(), everything if with_gallery else None


def measure_peer(
    pop: populate.Population,
    model: FaceModel,
    run: Run,
    watchlisted: int,
    out: TextIO | None = None,
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The naive pipeline on the same frames, as many times as Border served each kind."""
    frames = [populate.kiosk_frame(model, p) for p in RETURNING_PHOTOS]
    stranger = populate.kiosk_frame(model, FIRST_TIME_PHOTO)
    with common.ticking("peer: loading encodings", stream=out):
        person, watch, gallery = naive_arrays(pop, watchlisted, bool(run.first_time))
    naive_crossing(frames[0], person, watch, None)  # warm-up
    returning = []
    progress = common.Progress("peer: returning crossings", len(run.returning), stream=out)
    for i in range(len(run.returning)):
        returning.append(naive_crossing(frames[i % 2], person, watch, None))
        progress.update(i + 1)
    progress.finish()
    first = []
    progress = common.Progress("peer: first-time crossings", len(run.first_time), stream=out)
    for j in range(len(run.first_time)):
        first.append(naive_crossing(stranger, person, watch, gallery))
        progress.update(j + 1)
    progress.finish()
    return returning, first


def _peer_totals(border: list[Sample], peer: list[dict[str, float]]) -> list[dict[str, float]]:
    """The peer's stages: its own face pipeline, Border's figures for the shared rest."""
    combined = []
    for sample, naive in zip(border, peer, strict=True):
        stages = {k: v for k, v in sample.stages.items() if k not in FACE_STAGES}
        stages.update(naive)
        combined.append(stages)
    return combined


def _ratio(peer: float | None, border: float | None) -> float | None:
    """How many times the peer's time Border's is; none where either did no work."""
    if not peer or not border or border <= 0:
        return None
    return round(peer / border, 2)


def scenario_rows(
    scenario: str, border: list[Sample], peer: list[dict[str, float]] | None
) -> list[common.Row]:
    """Mean per stage (they add up to the mean total), then p50/p95/p99 of the totals."""
    if not border:
        return []
    combined = _peer_totals(border, peer) if peer else None
    rows: list[common.Row] = []
    for stage in STAGES:
        values = [s.stages.get(stage, 0.0) for s in border]
        peer_values = [c.get(stage, 0.0) for c in combined] if combined else None
        if not any(values) and not (peer_values and any(peer_values)):
            continue
        b = 1000 * float(np.mean(values))
        p = 1000 * float(np.mean(peer_values)) if peer_values else None
        shared = stage not in FACE_STAGES
        rows.append(
            {
                "scenario": scenario,
                "stage": LABELS[stage] + (" (shared)" if shared and peer else ""),
                "border_ms": round(b, 2),
                "peer_ms": None if p is None else round(p, 2),
                "ratio": None if shared else _ratio(p, b),
            }
        )
    totals = [s.server_s for s in border]
    peer_totals = [sum(c.values()) for c in combined] if combined else None
    for name, q in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
        b = common.percentile_ms(totals, q)
        p = common.percentile_ms(peer_totals, q) if peer_totals else None
        rows.append(
            {
                "scenario": scenario,
                "stage": f"server-side total {name}",
                "border_ms": round(b, 1),
                "peer_ms": None if p is None else round(p, 1),
                "ratio": _ratio(p, b),
            }
        )
    client = [s.client_s for s in border]
    rows.append(
        {
            "scenario": scenario,
            "stage": "client round trip p50 (Border)",
            "border_ms": round(common.percentile_ms(client, 50.0), 1),
            "peer_ms": None,
            "ratio": None,
        }
    )
    return rows


def run(
    size: int,
    *,
    returning: int = 300,
    first_time: int = 40,
    warmup: int = 5,
    transport: str = "testclient",
    peer: bool = True,
    root: Path | None = None,
    seed: int = 0,
    fresh: bool = False,
    model: FaceModel | None = None,
    detect_size: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build or reuse the population, serve crossings, run the peer; the result as JSON.
    ``detect_size`` overrides the settings' face_detect_size for Border's face model."""
    out = common.stream(quiet)
    if model is None:
        model = face_model(detect_size)
    pop = populate.ensure(
        size, model=model, root=root, seed=seed, fresh=fresh, log=lambda m: print(m, file=out)
    )
    border = measure_border(
        pop, model, returning=returning, first_time=first_time, warmup=warmup,
        transport=transport, out=out,
    )  # fmt: skip
    watchlisted = _watchlist_size(pop)
    naive = measure_peer(pop, model, border, watchlisted, out) if peer else None
    rows = scenario_rows("returning", border.returning, naive[0] if naive else None)
    rows += scenario_rows("first-time", border.first_time, naive[1] if naive else None)
    p95 = common.percentile_ms([s.server_s for s in border.returning], 95.0)
    return {
        "benchmark": "crossing",
        "machine": common.machine(),
        "params": {
            "size": pop.size,
            "returning": returning,
            "first_time": first_time,
            "transport": transport,
            "frame": "640x480 JPEG q90",
            "face_detect_size": model.detect_size,
            "watchlist_captures": watchlisted,
        },
        "population": {"data_dir": str(pop.data_dir), "build_s": pop.populate_s},
        "service_start_s": round(border.start_s, 2),
        "gallery_size": border.gallery_size,
        "decisions": {
            "returning": _decisions(border.returning),
            "first_time": _decisions(border.first_time),
        },
        "erase_between_first_time_ms_p50": (
            round(common.percentile_ms(border.erase_s, 50.0), 1) if border.erase_s else None
        ),
        "target": {
            "p95_ms": TARGET_P95_MS,
            "returning_p95_ms": round(p95, 1),
            "met": p95 <= TARGET_P95_MS,
        },
        "rows": rows,
    }


def face_model(detect_size: int | None = None) -> FaceModel:
    """The model the service would load from its settings (BORDER_*), warmed up."""
    settings = Settings()
    model = FaceModel(
        detector=settings.face_detector, detect_size=detect_size or settings.face_detect_size
    )
    model.warm_up()
    return model


def _watchlist_size(pop: populate.Population) -> int:
    """Captures of the watchlisted persons: the first persons, two captures each while
    they are below the population's double-capture count."""
    doubled = min(pop.watchlisted, pop.double_captures)
    return pop.watchlisted + doubled


def _decisions(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in samples:
        counts[sample.decision] = counts.get(sample.decision, 0) + 1
        for code in sample.codes:
            counts[code] = counts.get(code, 0) + 1
    return counts


COLUMNS = ("scenario", "stage", "border_ms", "peer_ms", "ratio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="returning crossings timed")
    parser.add_argument("--first-time", type=int, default=40, help="first-time crossings timed")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--transport", choices=("testclient", "uvicorn"), default="testclient")
    parser.add_argument("--no-peer", action="store_true", help="skip the naive pipeline")
    parser.add_argument(
        "--detect-size", type=int, default=None, help="override BORDER_FACE_DETECT_SIZE"
    )
    populate.add_arguments(parser)
    args = parser.parse_args(argv)
    result = run(
        args.size,
        returning=args.requests,
        first_time=args.first_time,
        warmup=args.warmup,
        transport=args.transport,
        peer=not args.no_peer,
        root=args.root,
        fresh=args.fresh,
        detect_size=args.detect_size,
    )
    print(f"\nKiosk crossing, POST /v1/crossings, N = {args.size:,} ({args.transport}); ms")
    print(common.table(result["rows"], COLUMNS))
    target = result["target"]
    print(
        f"\ntarget: returning p95 <= {target['p95_ms']:.0f} ms server side:"
        f" {target['returning_p95_ms']:.1f} ms, {'met' if target['met'] else 'NOT met'}"
    )
    print(f"decisions: {json.dumps(result['decisions'])}")
    print(f"machine: {json.dumps(result['machine'])}")
    if args.json:
        common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
