"""A bounded loopback load test: `border serve` in a subprocess on 127.0.0.1, a fresh
embedded store, and a stated rate of mixed kiosk crossings and officer identifies for a
stated time. Prints throughput, latency percentiles and errors per kind.

    uv run python benchmarks/load_test.py --rate 4 --seconds 60 [--json OUT]

Open loop: requests are sent on schedule whatever the latency, from a bounded pool of
workers, and the run stops by itself. Only loopback is ever addressed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import free_port, machine, percentile_ms, table, write_json
from visa.mrz import format_td3

FACES = Path(__file__).resolve().parents[1] / "samples" / "faces"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Result:
    kind: str
    status: int
    seconds: float


def border(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "border", *args], env=env, capture_output=True, text=True,
        check=True, timeout=300,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("border serve exited before it was ready")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError("border serve did not become healthy in time")


def mrz(number: str, nationality: str) -> str:
    today = date.today()
    return format_td3(
        surname="LOAD", given_names="TEST", document_number=number, issuing_state=nationality,
        nationality=nationality, birth_date=None, sex="X",
        expiry_date=date(today.year + 5, today.month, min(today.day, 28)),
    )  # fmt: skip


def run(rate: float, seconds: float, workers: int = 16) -> dict[str, object]:
    photos = {name: (FACES / name).read_bytes() for name in ("obama2.jpg", "obama3.jpg")}
    with tempfile.TemporaryDirectory(prefix="border-load-") as folder:
        env = {**os.environ, "BORDER_DATA_DIR": folder, "BORDER_LOG_LEVEL": "WARNING"}
        env.pop("BORDER_DATABASE_URL", None)
        env.pop("BORDER_MASTER_KEY", None)
        keys = {role: border(env, "clients", "create", "--name", f"load {role}", "--role", role,
                             *(["--border-point", "LOAD-1"] if role == "kiosk" else []))
                for role in ("kiosk", "officer")}  # fmt: skip
        port = free_port(HOST)
        base = f"http://{HOST}:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "border", "serve", "--host", HOST, "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_healthy(base, server)
            return _load(base, keys, photos, rate, seconds, workers)
        finally:
            server.terminate()
            server.wait(timeout=60)


def _load(
    base: str, keys: dict[str, str], photos: dict[str, bytes], rate: float, seconds: float,
    workers: int,
) -> dict[str, object]:  # fmt: skip
    client = httpx.Client(base_url=base, timeout=30)
    traveller = mrz("L0AD00001", "UTO")

    def send(i: int) -> Result:
        started = time.perf_counter()
        if i % 10 < 7:
            kind = "crossing"
            response = client.post(
                "/v1/crossings",
                headers={"Authorization": f"Bearer {keys['kiosk']}"},
                files={"image": ("live.jpg", photos["obama2.jpg"], "image/jpeg")},
                data={"mrz": traveller, "direction": ("entry", "exit")[i % 2],
                      "border_point": "LOAD-1"},
            )  # fmt: skip
        else:
            kind = "identify"
            response = client.post(
                "/v1/identify",
                headers={"Authorization": f"Bearer {keys['officer']}"},
                files={"image": ("probe.jpg", photos["obama3.jpg"], "image/jpeg")},
            )
        return Result(kind, response.status_code, time.perf_counter() - started)

    total = int(rate * seconds)
    started = time.perf_counter()
    futures = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i in range(total):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(send, i))
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - started
    client.close()
    rows = []
    for kind in ("crossing", "identify", "all"):
        chosen = [r for r in results if kind in ("all", r.kind)]
        if not chosen:
            continue
        ok = [r.seconds for r in chosen if r.status < 400]
        errors = Counter(r.status for r in chosen if r.status >= 400)
        rows.append({
            "kind": kind, "sent": len(chosen), "ok": len(ok),
            "errors": ", ".join(f"{s}x{n}" for s, n in sorted(errors.items())) or "0",
            "throughput_rps": round(len(ok) / elapsed, 2),
            "p50_ms": percentile_ms(ok, 50) if ok else None,
            "p99_ms": percentile_ms(ok, 99) if ok else None,
        })  # fmt: skip
    return {"rate_rps": rate, "seconds": seconds, "elapsed_s": round(elapsed, 1), "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send")
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args()
    print(f"load: {args.rate} req/s for {args.seconds} s, 70% crossings, 30% identifies",
          file=sys.stderr)  # fmt: skip
    result = run(args.rate, args.seconds)
    columns = ["kind", "sent", "ok", "errors", "throughput_rps", "p50_ms", "p99_ms"]
    print(table(result["rows"], columns))  # type: ignore[arg-type]
    if args.json:
        write_json(args.json, {**result, "machine": machine()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
