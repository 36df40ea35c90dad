"""Restart: from process start to serving with N enrolled, from the encrypted gallery
snapshot and from a full rebuild out of the store (DESIGN §8: ≤ 10 s with the snapshot at
1M, ≤ 2 min for a full rebuild).

    uv run python benchmarks/bench_restart.py [--size 1000000] [--json restart.json]

Each start is a new Python process running what ``border serve`` runs (``create_app`` on
settings from BORDER_* under uvicorn, on loopback), on a benchmarks/populate.py store. The
clock starts just before the process is spawned and stops when ``GET /health`` answers 200
(the lifespan is complete: store, migrations, keys, face model, galleries); then an officer's
``POST /v1/identify`` with a 640x480 frame must answer 200 (a 1:N search through the
galleries just loaded). The child times its own phases by wrapping the product's functions
where the lifespan calls them (Runtime.start, FaceModel, Galleries.load / catch_up /
rebuild / reconcile), and reports them in a file.

- ``snapshot``: the galleries' encrypted snapshot is in the data directory (as a service
  leaves it at shutdown): it is read, decrypted and deserialised, captures newer than its
  watermark are replayed, and the id sets are reconciled with the store.
- ``rebuild``: the snapshot files are moved away first, so every template is read from the
  store, its data key unwrapped, the template decrypted and indexed (Galleries.rebuild,
  what ``border index rebuild`` does). The snapshot is put back afterwards.

``border index rebuild`` itself (a process of its own, rebuild plus snapshot save) is timed
too. The embedded PostgreSQL is kept running by this process between starts, as a
production server would be (``--cold-store`` lets each child start it), and the snapshot
file sits in the page cache, as after a service restart (not a machine reboot).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx

from benchmarks import common, populate
from border import models as border_models
from border import service as border_service
from border.schema import migration_dirs
from core import auth
from core.runtime import Runtime
from enrollment import store as enrollment_store
from enrollment.templates import FaceModel

TARGET_SNAPSHOT_S = 10.0
TARGET_REBUILD_S = 120.0
PHASES = (
    ("imports", "interpreter start and imports"),
    ("runtime", "store: connect, migrations check, keys"),
    ("model", "face model load and warm-up"),
    ("load", "snapshot: read, decrypt, deserialise"),
    ("rebuild", "rebuild from the store: unseal every template, index"),
    ("catch_up", "replay of captures newer than the snapshot"),
    ("reconcile", "reconcile id sets with the store"),
    ("serving", "rest of the lifespan, uvicorn up, first /health"),
)
_CHILD = "import time; t = time.time(); from benchmarks.bench_restart import child; child(t)"


def child(python_up: float) -> None:
    """The service process: ``border serve``'s work, with its start-up phases timed."""
    import uvicorn

    from border.app import create_app
    from core.settings import Settings
    from enrollment.galleries import Galleries

    phases: dict[str, float] = {"imports": time.time() - float(os.environ["BENCH_SPAWNED"])}
    phases["python_up"] = python_up - float(os.environ["BENCH_SPAWNED"])
    out = Path(os.environ["BENCH_PHASES"])

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.time() - started

        return wrapper

    runtime_start = Runtime.start
    Runtime.start = staticmethod(timed("runtime", runtime_start))  # type: ignore[method-assign]
    FaceModel.__init__ = timed("model", FaceModel.__init__)  # type: ignore[method-assign]
    FaceModel.warm_up = timed("model", FaceModel.warm_up)  # type: ignore[method-assign]
    rebuild = timed("rebuild", Galleries.rebuild)
    catch_up = Galleries.catch_up
    in_rebuild = {"on": False}

    def rebuilding(self: Galleries, *args: Any, **kwargs: Any) -> Any:
        in_rebuild["on"] = True
        try:
            return rebuild(self, *args, **kwargs)
        finally:
            in_rebuild["on"] = False

    def catching_up(self: Galleries, *args: Any, **kwargs: Any) -> Any:
        if in_rebuild["on"]:
            return catch_up(self, *args, **kwargs)
        return timed("catch_up", catch_up)(self, *args, **kwargs)

    Galleries.load = timed("load", Galleries.load)  # type: ignore[method-assign]
    Galleries.rebuild = rebuilding  # type: ignore[method-assign]
    Galleries.catch_up = catching_up  # type: ignore[method-assign]
    Galleries.reconcile = timed("reconcile", Galleries.reconcile)  # type: ignore[method-assign]
    Galleries.save = timed("save", Galleries.save)  # type: ignore[method-assign]

    app = create_app(Settings())
    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def announcing(app_: Any) -> AsyncIterator[Any]:
        async with lifespan(app_) as state:
            phases["lifespan_done"] = time.time() - float(os.environ["BENCH_SPAWNED"])
            _write(out, phases)
            yield state

    app.router.lifespan_context = announcing
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["BENCH_PORT"]), log_level="warning")
    _write(out, phases)


def _write(path: Path, phases: dict[str, float]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(phases), encoding="utf-8")
    tmp.replace(path)


@contextmanager
def held_store(pop: populate.Population, cold: bool) -> Iterator[tuple[str, int]]:
    """An officer's API key and the captures in the store; the store stays up for the
    whole benchmark unless ``cold``."""
    rt = Runtime.start(pop.settings(), migration_dirs())
    try:
        body = border_models.ClientIn(name="bench restart officer", role="officer")
        key = border_service.create_client(rt, auth.command_line("benchmark"), body).api_key
        with rt.pool.connection() as conn:
            captures = enrollment_store.capture_count(conn)
        if cold:
            rt.close()
        yield key, captures
    finally:
        if not cold:
            rt.close()


def start_once(
    pop: populate.Population, key: str, frame: bytes, label: str, out: TextIO
) -> dict[str, Any]:
    """Spawn the service, wait for /health and a search, stop it; the timings in seconds."""
    port = common.free_port()
    work = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    phases_file = work / "phases.json"
    spawned = time.time()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BORDER_")},
        "BORDER_DATA_DIR": str(pop.data_dir),
        "BORDER_LOG_LEVEL": "WARNING",
        "BENCH_SPAWNED": repr(spawned),
        "BENCH_PORT": str(port),
        "BENCH_PHASES": str(phases_file),
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    result: dict[str, Any] = {"mode": label}
    try:
        with (
            common.ticking(f"{label}: waiting for /health", stream=out),
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
        ):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the service exited with {proc.returncode} during start")
                try:
                    if http.get("/health", timeout=0.5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
            result["health_s"] = time.perf_counter() - started
            response = http.post(
                "/v1/identify",
                headers={"Authorization": f"Bearer {key}"},
                files={"image": ("frame.jpg", frame, "image/jpeg")},
                data={"k": "5"},
            )
            if response.status_code != 200:
                raise RuntimeError(f"identify: {response.status_code} {response.text}")
            result["search_s"] = time.perf_counter() - started
            result["candidates"] = len(response.json()["candidates"])
        stopping = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=900)
        result["shutdown_s"] = time.perf_counter() - stopping
        phases = json.loads(phases_file.read_text(encoding="utf-8"))
        result["phases"] = phases
        result["stderr_tail"] = err.decode(errors="replace")[-1500:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    return result


def cli_rebuild(pop: populate.Population, out: TextIO) -> dict[str, Any]:
    """``border index rebuild`` as an operator runs it; progress lines are counted."""
    border = Path(sys.executable).parent / "border"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BORDER_")},
        "BORDER_DATA_DIR": str(pop.data_dir),
        "BORDER_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    with common.ticking("border index rebuild", stream=out):
        done = subprocess.run(
            [str(border), "index", "rebuild"], env=env, capture_output=True, check=False
        )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"border index rebuild failed: {done.stderr.decode()[-2000:]}")
    return {"total_s": elapsed, "stdout": done.stdout.decode().strip().splitlines()[-1:]}


@contextmanager
def snapshot_moved(pop: populate.Population) -> Iterator[None]:
    """The snapshot files moved aside for a rebuild, and put back afterwards."""
    aside = Path(tempfile.mkdtemp(prefix="bench-restart-snap-", dir=pop.data_dir))
    for path in pop.snapshot_files:
        shutil.move(path, aside / path.name)
    try:
        yield
    finally:
        for path in pop.snapshot_files:
            if (aside / path.name).exists():
                shutil.move(aside / path.name, path)
        shutil.rmtree(aside, ignore_errors=True)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _phase_rows(runs: dict[str, list[dict[str, Any]]]) -> list[common.Row]:
    def figure(mode: str, fn: Callable[[dict[str, Any]], float]) -> float | None:
        values = [fn(r) for r in runs.get(mode, [])]
        return round(_median(values), 2) if values else None

    def phase(name: str) -> Callable[[dict[str, Any]], float]:
        def get(r: dict[str, Any]) -> float:
            p = r["phases"]
            if name == "serving":
                named = sum(p.get(n, 0.0) for n, _ in PHASES if n != "serving")
                return float(r["health_s"] - named)
            return float(p.get(name, 0.0))

        return get

    rows: list[common.Row] = []
    totals = (
        ("process start to /health 200, s", lambda r: float(r["health_s"])),
        ("process start to first 1:N search answered, s", lambda r: float(r["search_s"])),
    )
    for label, fn in totals:
        s, b = figure("snapshot", fn), figure("rebuild", fn)
        rows.append(
            {
                "measure": label,
                "snapshot": s,
                "rebuild": b,
                "ratio": None if not s or b is None else round(b / s, 1),
            }
        )
    for name, label in PHASES:
        s, b = figure("snapshot", phase(name)), figure("rebuild", phase(name))
        if not s and not b:
            continue
        rows.append({"measure": f"  {label}, s", "snapshot": s, "rebuild": b, "ratio": None})
    s = figure("snapshot", lambda r: float(r["shutdown_s"]))
    b = figure("rebuild", lambda r: float(r["shutdown_s"]))
    rows.append(
        {"measure": "shutdown (snapshot save), s", "snapshot": s, "rebuild": b, "ratio": None}
    )
    return rows


def run(
    size: int,
    *,
    repeats: int = 3,
    rebuild_repeats: int = 1,
    cli: bool = True,
    cold: bool = False,
    root: Path | None = None,
    seed: int = 0,
    fresh: bool = False,
    model: FaceModel | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    out = common.stream(quiet)
    if model is None:
        model = FaceModel()
        model.warm_up()
    pop = populate.ensure(
        size, model=model, root=root, seed=seed, fresh=fresh, log=lambda m: print(m, file=out)
    )
    frame = populate.kiosk_frame(model, "obama3.jpg")
    runs: dict[str, list[dict[str, Any]]] = {"snapshot": [], "rebuild": []}
    cli_result = None
    with held_store(pop, cold) as (key, captures):
        for _ in range(repeats):
            runs["snapshot"].append(start_once(pop, key, frame, "snapshot", out))
        for _ in range(rebuild_repeats):
            with snapshot_moved(pop):
                runs["rebuild"].append(start_once(pop, key, frame, "rebuild", out))
        if cli:
            with snapshot_moved(pop):
                cli_result = cli_rebuild(pop, out)
    rows = _phase_rows(runs)
    if cli_result is not None:
        rows.append(
            {
                "measure": "border index rebuild (CLI, with snapshot save), s",
                "snapshot": None,
                "rebuild": round(cli_result["total_s"], 2),
                "ratio": None,
            }
        )
    snap = _median([r["health_s"] for r in runs["snapshot"]]) if runs["snapshot"] else None
    full = _median([r["health_s"] for r in runs["rebuild"]]) if runs["rebuild"] else None
    return {
        "benchmark": "restart",
        "machine": common.machine(),
        "params": {"size": pop.size, "repeats": repeats, "cold_store": cold},
        "captures_in_store": captures,
        "population": {"data_dir": str(pop.data_dir), "build_s": pop.populate_s},
        "target": {
            "snapshot_s": TARGET_SNAPSHOT_S,
            "rebuild_s": TARGET_REBUILD_S,
            "snapshot_measured_s": None if snap is None else round(snap, 2),
            "rebuild_measured_s": None if full is None else round(full, 2),
            "snapshot_met": snap is not None and snap <= TARGET_SNAPSHOT_S,
            "rebuild_met": full is not None and full <= TARGET_REBUILD_S,
        },
        "runs": {
            m: [{k: v for k, v in r.items() if k != "stderr_tail"} for r in rs]
            for m, rs in runs.items()
        },
        "cli_rebuild": cli_result,
        "rows": rows,
    }


COLUMNS = ("measure", "snapshot", "rebuild", "ratio")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Restart benchmark: snapshot against rebuild")
    parser.add_argument("--repeats", type=int, default=3, help="snapshot starts (median)")
    parser.add_argument("--rebuild-repeats", type=int, default=1, help="rebuild starts")
    parser.add_argument("--no-cli", action="store_true", help="skip `border index rebuild`")
    parser.add_argument("--cold-store", action="store_true", help="each child starts PostgreSQL")
    populate.add_arguments(parser)
    args = parser.parse_args(argv)
    result = run(
        args.size,
        repeats=args.repeats,
        rebuild_repeats=args.rebuild_repeats,
        cli=not args.no_cli,
        cold=args.cold_store,
        root=args.root,
        fresh=args.fresh,
    )
    print(f"\nRestart to serving, N = {args.size:,} (medians; ratio = rebuild / snapshot)")
    print(common.table(result["rows"], COLUMNS))
    t = result["target"]
    print(
        f"\ntargets: snapshot <= {t['snapshot_s']:.0f} s: {t['snapshot_measured_s']} s,"
        f" {'met' if t['snapshot_met'] else 'NOT met'}; rebuild <= {t['rebuild_s']:.0f} s:"
        f" {t['rebuild_measured_s']} s, {'met' if t['rebuild_met'] else 'NOT met'}"
    )
    print(f"machine: {json.dumps(result['machine'])}")
    if args.json:
        common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
