"""Sustained enrollment, POST /v1/persons with quality checks and dedup on (DESIGN §8:
≥ 15 captures/s sustained on 2 cores).

    uv run python benchmarks/bench_enroll.py [--size 1000000] [--seconds 60] [--json enroll.json]

Every request is a real enrollment: a distinct MRZ, a real photo from samples/faces (the ten
single-face photos that pass the quality checks, 0.08 to 3.3 megapixels, JPEG and PNG,
taken in turn), decoded, detected, measured, encoded, searched for duplicates among the N
enrolled captures of a benchmarks/populate.py store, and committed (person, document,
capture, data key, audit event), then added to the gallery.

One substitution keeps dedup honest: the photos show only three people, so after the first
enrollment of a face every other one would be refused as a duplicate. The face model's
``describe`` therefore runs in full (landmarks and the 128-d encoding are computed and
paid for), and then its template is replaced by a fresh synthetic identity drawn like the
population's (populate.synthetic_queries): the dedup search runs against all N captures,
finds nobody within the threshold, and the insert path commits, as for a new traveller.

Three ways of serving:

- ``in-process``: ``create_app`` under Starlette's TestClient, one request at a time, with
  the stage breakdown (the product's functions wrapped where the flow calls them, as in
  bench_crossing.py).
- ``1 process``: ``uvicorn border.app:create_app --factory``, as ``border serve`` runs it,
  with 2 clients over loopback: dlib holds the GIL while it detects and encodes, so one
  process uses one core for the face stage whatever the threads.
- ``2 processes``: the same with ``--workers 2`` and 4 clients, each worker with its own
  galleries kept in step through the store (catch-up under the enrollment lock).

Sustained rate = enrollments answered 201 in the measuring window / its length, after a
warm-up. The gallery's snapshot is backed up before the uvicorn runs and put back after,
so every run starts from the population's own snapshot (the captures enrolled since are
replayed from the store).

The peer enrolls the same photos with face_recognition's defaults (``load_image_file``,
HOG ``face_locations`` at full resolution with one upsample, ``face_encodings``), no
quality checks, and a dedup by ``face_distance`` over all N encodings (float64); its
HTTP, database and audit stages are Border's own measured figures. Its rate on 2 cores is
an estimate, 2 / (mean time per capture), perfect scaling in its favour.
"""

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any, TextIO
from uuid import uuid4

import httpx
import numpy as np

from benchmarks import bench_crossing, common, populate
from border.app import create_app
from enrollment.templates import Box, Face, FaceModel
from visa.mrz import format_td3

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi import FastAPI

PHOTOS = (
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama-480p.jpg",
    "obama-720p.jpg",
    "obama-1080p.jpg",
    "biden.jpg",
    "lin-manuel-miranda.png",
    "32bit.png",
    "obama_small.jpg",
)
TARGET_PER_S = 15.0
NATIONALITIES = ("GBR", "USA", "KEN", "IND", "BRA")
STAGES = (
    "http",
    "decode",
    "mrz",
    "detect",
    "encode",
    "quality",
    "dedup_1toN",
    "enroll_insert",
    "audit",
    "database",
    "gallery_add",
    "other",
)
FACE_STAGES = ("decode", "detect", "encode", "quality", "dedup_1toN")


def enrollment_mrz(tag: str, i: int) -> str:
    """A distinct valid passport MRZ: 9-character number from a run tag and a counter."""
    nationality = NATIONALITIES[i % len(NATIONALITIES)]
    return format_td3(
        surname="ENROLLEE",
        given_names="BENCH",
        document_number=f"{tag}{i:05d}"[-9:],
        issuing_state=nationality,
        nationality=nationality,
        birth_date=date(1980, 1, 1),
        sex="F",
        expiry_date=date(2033, 1, 31),
    )


def new_identities(
    centre: list[float], seed: int
) -> Callable[[Callable[[Any, Box], Face]], Callable[[Any, Box], Face]]:
    """A wrapper for ``FaceModel.describe`` that returns each face with a fresh synthetic
    identity's template (the real landmarks and encoding are still computed)."""
    rng = np.random.default_rng([seed, os.getpid(), time.monotonic_ns()])
    origin = np.asarray(centre, np.float64)

    def wrap(describe: Callable[[Any, Box], Face]) -> Callable[[Any, Box], Face]:
        def swapped(image: Any, box: Box) -> Face:
            face = describe(image, box)
            fresh = origin + populate.SPREAD * rng.standard_normal(origin.size)
            template = fresh / np.linalg.norm(fresh) * populate.TEMPLATE_NORM
            return dataclasses.replace(face, template=template.astype(np.float32))

        return swapped

    return wrap


def worker_app() -> FastAPI:
    """The uvicorn factory of the served runs: Border's app (settings from BORDER_*), with
    new identities swapped in, and a file written when its lifespan has started."""
    from core.settings import Settings

    settings = Settings()
    manifest = json.loads((settings.data_dir / "population.json").read_text(encoding="utf-8"))
    model = FaceModel(detector=settings.face_detector, detect_size=settings.face_detect_size)
    model.warm_up()
    swap = new_identities(manifest["centre"], int(os.environ.get("BENCH_SEED", "0")))
    model.describe = swap(model.describe)  # type: ignore[method-assign, assignment]
    app = create_app(settings, model)
    ready = Path(os.environ["BENCH_READY_DIR"])
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def announcing(app_: Any) -> AsyncIterator[Any]:
        async with lifespan(app_) as state:
            (ready / f"ready-{os.getpid()}").touch()
            yield state

    app.router.lifespan_context = announcing
    return app


def _photo_bytes() -> list[tuple[str, bytes]]:
    return [(p, (populate.FACES / p).read_bytes()) for p in PHOTOS]


def measure_in_process(
    pop: populate.Population,
    model: FaceModel,
    *,
    requests: int,
    warmup: int,
    out: TextIO,
) -> dict[str, Any]:
    """One request at a time through TestClient, with the breakdown."""
    tracer = bench_crossing.Tracer()
    app = create_app(pop.settings(), model)
    app.add_middleware(bench_crossing.ServerTimer, tracer=tracer)
    photos = _photo_bytes()
    tag = uuid4().hex[:4].upper()
    samples: list[dict[str, float]] = []
    totals: list[float] = []
    with ExitStack() as stack:
        swap = new_identities(pop.centre, pop.seed)
        stack.enter_context(bench_crossing.patched([(model, "describe", swap)]))
        with common.ticking(f"service start on {pop.size:,} captures", stream=out):
            svc = stack.enter_context(bench_crossing.serve(app, "testclient"))
        key = bench_crossing.kiosk_key(svc.rt, "consular")
        stack.enter_context(bench_crossing.patched(bench_crossing.flow_patches(tracer, model)))
        progress = common.Progress("in-process enrollments", warmup + requests, stream=out)
        started = 0.0
        for i in range(warmup + requests):
            if i == warmup:
                started = time.perf_counter()
            name, data = photos[i % len(photos)]
            tracer.take()
            response = svc.post(
                "/v1/persons",
                headers={"Authorization": f"Bearer {key}"},
                files={"image": (name, data, "application/octet-stream")},
                data={"mrz": enrollment_mrz(tag, i)},
            )
            if response.status_code != 201:
                raise RuntimeError(f"enrollment refused: {response.status_code} {response.text}")
            exclusive, inclusive = tracer.take()
            if i >= warmup:
                samples.append(exclusive)
                totals.append(inclusive["http"])
            progress.update(i + 1)
        elapsed = time.perf_counter() - started
        progress.finish()
        gallery = len(svc.bio.galleries.enrolled)
    return {"samples": samples, "totals": totals, "elapsed": elapsed, "gallery": gallery}


def _wait_ready(ready: Path, workers: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(list(ready.glob("ready-*"))) < workers:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode} during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn workers did not start in time")
        time.sleep(0.1)


def measure_served(
    pop: populate.Population,
    *,
    workers: int,
    clients: int,
    seconds: float,
    warmup_s: float,
    detect_size: int,
    out: TextIO,
) -> dict[str, Any]:
    """Sustained enrollments over loopback against ``workers`` uvicorn processes."""
    port = common.free_port()
    ready = Path(tempfile.mkdtemp(prefix="bench-enroll-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BORDER_")},
        "BORDER_DATA_DIR": str(pop.data_dir),
        "BORDER_LOG_LEVEL": "WARNING",
        "BENCH_READY_DIR": str(ready),
        "BENCH_SEED": str(pop.seed),
        "BORDER_FACE_DETECT_SIZE": str(detect_size),
    }
    command = [
        sys.executable, "-m", "uvicorn", "benchmarks.bench_enroll:worker_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]  # fmt: skip
    label = f"{workers} process{'es' if workers > 1 else ''}"
    # The key is made before the workers start: a process that joins an embedded server
    # another process started keeps a stale handle once that process stops it.
    with bench_crossing.runtime(pop.settings()) as rt:
        key = bench_crossing.kiosk_key(rt, "consular")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with common.ticking(f"{label}: uvicorn start on {pop.size:,} captures", stream=out):
            _wait_ready(ready, workers, proc, timeout=900)
        photos = _photo_bytes()
        tag = uuid4().hex[:4].upper()
        lock = threading.Lock()
        results: list[tuple[float, float, int]] = []  # (finished at, latency, status)
        counter = iter(range(10**9))
        stop_at = time.perf_counter() + warmup_s + seconds

        def client() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                while time.perf_counter() < stop_at:
                    with lock:
                        i = next(counter)
                    name, data = photos[i % len(photos)]
                    sent = time.perf_counter()
                    response = http.post(
                        "/v1/persons",
                        headers={"Authorization": f"Bearer {key}"},
                        files={"image": (name, data, "application/octet-stream")},
                        data={"mrz": enrollment_mrz(tag, i)},
                    )
                    done = time.perf_counter()
                    with lock:
                        results.append((done, done - sent, response.status_code))

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        progress = common.Progress(
            f"{label}: {clients} clients", int(warmup_s + seconds), stream=out
        )
        cpu_start: dict[str, float] | None = None
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            if cpu_start is None and time.perf_counter() >= started + warmup_s:
                cpu_start = cpu_seconds(proc.pid, pop.data_dir)
            progress.update(min(int(time.perf_counter() - started), int(warmup_s + seconds)))
        cpu_end = cpu_seconds(proc.pid, pop.data_dir)
        progress.finish()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        shutil.rmtree(ready, ignore_errors=True)
    window_start = started + warmup_s
    window = [(at, lat, st) for at, lat, st in results if at >= window_start]
    ok = [lat for _, lat, st in window if st == 201]
    statuses: dict[str, int] = {}
    for _, _, st in results:
        statuses[str(st)] = statuses.get(str(st), 0) + 1
    end = max((at for at, _, _ in window), default=window_start)
    span = max(end - window_start, 1e-9)
    cpu_ms = {
        name: round(1000 * (cpu_end[name] - cpu_start[name]) / max(len(ok), 1), 1)
        for name in cpu_end
        if cpu_start is not None
    }
    return {
        "workers": workers,
        "clients": clients,
        "per_s": len(ok) / span,
        "cpu_ms_per_enrollment": cpu_ms,
        "window_s": round(span, 1),
        "enrolled": len(ok),
        "latency_p50_ms": common.percentile_ms(ok, 50.0) if ok else None,
        "latency_p95_ms": common.percentile_ms(ok, 95.0) if ok else None,
        "statuses": statuses,
        "stderr_tail": err.decode(errors="replace")[-2000:] if err else "",
    }


def _processes() -> dict[int, tuple[int, float]]:
    """Every process: its parent and its CPU seconds so far (user + system), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found


def _tree(root: int, table: dict[int, tuple[int, float]]) -> float:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table.get(pid, (0, 0.0))[1]
        todo.extend(children.get(pid, []))
    return total


def cpu_seconds(server: int, data_dir: Path) -> dict[str, float]:
    """CPU seconds used so far by the uvicorn process tree, the embedded PostgreSQL (its
    postmaster and backends) and this load-generating process."""
    table = _processes()
    postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    return {
        "service": _tree(server, table),
        "postgres": _tree(postmaster, table),
        "client": time.process_time(),
    }


def measure_peer(pop: populate.Population, captures: int, out: TextIO) -> list[dict[str, float]]:
    photos = _photo_bytes()
    with common.ticking("peer: loading encodings", stream=out):
        _, _, gallery = bench_crossing.naive_arrays(pop, 1, True)
    assert gallery is not None
    bench_crossing.naive_crossing(photos[0][1], None, None, gallery)  # warm-up
    samples = []
    progress = common.Progress("peer: enrollments", captures, stream=out)
    for i in range(captures):
        samples.append(
            bench_crossing.naive_crossing(photos[i % len(photos)][1], None, None, gallery)
        )
        progress.update(i + 1)
    progress.finish()
    return samples


def _mean_ms(values: list[float]) -> float:
    return 1000.0 * float(np.mean(values)) if values else 0.0


def stage_rows(
    border: list[dict[str, float]], peer: list[dict[str, float]] | None
) -> list[common.Row]:
    rows: list[common.Row] = []
    for stage in STAGES:
        b = _mean_ms([s.get(stage, 0.0) for s in border])
        shared = stage not in FACE_STAGES
        if peer is None:
            p = None
        elif shared:
            p = b
        else:
            p = _mean_ms([s.get(stage, 0.0) for s in peer])
        if b == 0 and not p:
            continue
        rows.append(
            {
                "measure": bench_crossing.LABELS[stage]
                + (" (shared)" if shared and peer else "")
                + ", mean ms",
                "border": round(b, 2),
                "peer": None if p is None else round(p, 2),
                "ratio": None if shared or not p or b <= 0 else round(p / b, 2),
            }
        )
    return rows


def run(
    size: int,
    *,
    requests: int = 100,
    warmup: int = 5,
    seconds: float = 60.0,
    warmup_s: float = 5.0,
    served: tuple[tuple[int, int], ...] = ((1, 2), (2, 4)),
    peer_captures: int = 30,
    root: Path | None = None,
    seed: int = 0,
    fresh: bool = False,
    model: FaceModel | None = None,
    detect_size: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Build or reuse the population, enroll in-process and served, run the peer.
    ``detect_size`` overrides the settings' face_detect_size, here and in the workers."""
    out = common.stream(quiet)
    if model is None:
        model = bench_crossing.face_model(detect_size)
    pop = populate.ensure(
        size, model=model, root=root, seed=seed, fresh=fresh, log=lambda m: print(m, file=out)
    )
    local = measure_in_process(pop, model, requests=requests, warmup=warmup, out=out)
    served_runs: list[dict[str, Any]] = []
    if served:
        backup = Path(tempfile.mkdtemp(prefix="bench-enroll-snap-"))
        try:
            for path in pop.snapshot_files:
                shutil.copy2(path, backup / path.name)
            for workers, clients in served:
                served_runs.append(
                    measure_served(
                        pop,
                        workers=workers,
                        clients=clients,
                        seconds=seconds,
                        warmup_s=warmup_s,
                        detect_size=model.detect_size,
                        out=out,
                    )
                )
        finally:
            for path in pop.snapshot_files:
                if (backup / path.name).exists():
                    shutil.copy2(backup / path.name, path)
            shutil.rmtree(backup, ignore_errors=True)
    peer = measure_peer(pop, peer_captures, out) if peer_captures else None

    rows = stage_rows(local["samples"], peer)
    shared_s = [sum(v for k, v in s.items() if k not in FACE_STAGES) for s in local["samples"]]
    peer_totals = [sum(p.values()) + float(np.mean(shared_s)) for p in peer] if peer else None
    totals = local["totals"]
    for name, q in (("p50", 50.0), ("p95", 95.0)):
        b = common.percentile_ms(totals, q)
        p = common.percentile_ms(peer_totals, q) if peer_totals else None
        rows.append(
            {
                "measure": f"server time per enrollment {name}, ms",
                "border": round(b, 1),
                "peer": None if p is None else round(p, 1),
                "ratio": None if p is None else round(p / b, 2),
            }
        )
    mean_b = float(np.mean(totals))
    mean_p = float(np.mean(peer_totals)) if peer_totals else None
    rows.append(
        {
            "measure": "1 process, one request at a time (in-process), captures/s",
            "border": round(len(totals) / local["elapsed"], 2),
            "peer": None if mean_p is None else round(1.0 / mean_p, 2),
            "ratio": None
            if mean_p is None
            else round((len(totals) / local["elapsed"]) * mean_p, 2),
        }
    )
    for s in served_runs:
        est = 2.0 / mean_p if (mean_p and s["workers"] >= 2) else None
        rows.append(
            {
                "measure": f"{s['workers']} uvicorn process{'es' if s['workers'] > 1 else ''},"
                f" {s['clients']} clients, sustained captures/s"
                + (" (peer: est. 2 cores)" if est else ""),
                "border": round(s["per_s"], 2),
                "peer": None if est is None else round(est, 2),
                "ratio": None if est is None else round(s["per_s"] / est, 2),
            }
        )
    best = max([s["per_s"] for s in served_runs] + [len(totals) / local["elapsed"]])
    return {
        "benchmark": "enroll",
        "machine": common.machine(),
        "params": {
            "size": pop.size,
            "requests_in_process": requests,
            "seconds_served": seconds,
            "photos": list(PHOTOS),
            "peer_captures": peer_captures,
            "face_detect_size": model.detect_size,
        },
        "population": {"data_dir": str(pop.data_dir), "build_s": pop.populate_s},
        "gallery_after_in_process": local["gallery"],
        "served": [{k: v for k, v in s.items() if k != "stderr_tail"} for s in served_runs],
        "served_stderr": [s["stderr_tail"] for s in served_runs],
        "border_mean_ms": round(1000 * mean_b, 1),
        "target": {
            "per_s": TARGET_PER_S,
            "best_per_s": round(best, 2),
            "met": best >= TARGET_PER_S,
        },
        "rows": rows,
    }


COLUMNS = ("measure", "border", "peer", "ratio")


def parse_served(text: str) -> tuple[tuple[int, int], ...]:
    """``1x2,2x4`` -> ((1, 2), (2, 4)): worker processes and clients of each served run."""
    runs = []
    for item in text.split(","):
        workers, _, clients = item.strip().partition("x")
        if not (workers.isdigit() and clients.isdigit()) or min(int(workers), int(clients)) < 1:
            raise argparse.ArgumentTypeError(f"--served wants WORKERSxCLIENTS, not {item!r}")
        runs.append((int(workers), int(clients)))
    return tuple(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sustained enrollment benchmark")
    parser.add_argument("--requests", type=int, default=100, help="in-process enrollments")
    parser.add_argument("--seconds", type=float, default=60.0, help="each served window")
    parser.add_argument("--no-served", action="store_true", help="skip the uvicorn runs")
    parser.add_argument(
        "--served",
        default="1x2,2x4",
        help="uvicorn runs as WORKERSxCLIENTS, comma separated (default 1x2,2x4)",
    )
    parser.add_argument("--peer-captures", type=int, default=30)
    parser.add_argument(
        "--detect-size", type=int, default=None, help="override BORDER_FACE_DETECT_SIZE"
    )
    populate.add_arguments(parser)
    args = parser.parse_args(argv)
    result = run(
        args.size,
        requests=args.requests,
        seconds=args.seconds,
        served=() if args.no_served else parse_served(args.served),
        peer_captures=args.peer_captures,
        root=args.root,
        fresh=args.fresh,
        detect_size=args.detect_size,
    )
    print(f"\nEnrollment, POST /v1/persons with quality and dedup, N = {args.size:,}")
    print(common.table(result["rows"], COLUMNS))
    target = result["target"]
    print(
        f"\ntarget: >= {target['per_s']:.0f} captures/s sustained on 2 cores:"
        f" best {target['best_per_s']:.2f}/s, {'met' if target['met'] else 'NOT met'}"
    )
    for s in result["served"]:
        print(f"served: {json.dumps(s)}")
    print(f"machine: {json.dumps(result['machine'])}")
    if args.json:
        common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
