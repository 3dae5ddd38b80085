"""Benchmark the SMS webhook behind gunicorn: requests/s and latency for signed ``status`` messages.

    python bench/webhook.py [--requests 3000] [--concurrency 4] [--workers 3] [--database-url URL] [--json]

Each request is what Twilio sends (a unique MessageSid, a valid X-Twilio-Signature) from a registered
user, so every one is validated, deduped, stored and published to the local bus (the event and its
invocation rows in the same transaction). The runtime is not running: only the webhook is measured.
The load stays on 127.0.0.1 and is bounded (at most 20,000 requests). Also measures the cold start
(``import bot.wsgi`` in a fresh interpreter, best of 5) and that it imports no detection libraries.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USER = "+15550000002"
TOKEN = "bench-auth-token"
HEAVY = ("tensorflow", "ai_edge_litert", "cv2", "av", "PIL", "numpy")
MAX_REQUESTS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(database_url: str) -> None:
    """Migrate and seed: one member and two cameras (the grammar's catalog is read per request)."""
    from sqlalchemy import delete

    from bot.models import Camera, Role, User
    from cloud.db import make_engine, make_sessionmaker
    from cloud.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as s, s.begin():
        s.execute(delete(User).where(User.phone == USER))
        s.add(User(phone=USER, name="Bench", role=Role.member))
        for slug in ("lobby", "kitchen"):
            if not s.query(Camera).filter_by(slug=slug).first():
                s.add(Camera(slug=slug, name=slug.title(), area=slug))
    engine.dispose()


def signed_requests(n: int, port: int) -> list[tuple[bytes, str]]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    url = f"http://127.0.0.1:{port}/sms"
    out = []
    for _ in range(n):
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": USER,
                "To": "+15550001000", "Body": "status lobby", "NumMedia": "0"}
        out.append((urlencode(form).encode(), validator.compute_signature(url, form)))
    return out


def run_load(port: int, requests: list[tuple[bytes, str]],
             concurrency: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    it = iter(requests)

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                break
            body, sig = item
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/sms", body=body, headers={
                    "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                errors += not ok
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode})")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/sms")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def cold_start(env: dict[str, str], runs: int = 5) -> dict:
    code = ("import json, sys, time; t = time.perf_counter(); import bot.wsgi; "
            "print(json.dumps({'s': time.perf_counter() - t, "
            f"'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))")
    best, heavy = None, []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        best = r["s"] if best is None else min(best, r["s"])
        heavy = r["heavy"]
    return {"import_s": round(best or 0.0, 3), "heavy_imports": heavy}


def server_cpu_s(master: int) -> float:
    """User+system CPU seconds of gunicorn's master and workers so far (Linux /proc): a figure that other
    load on a shared machine does not inflate, unlike wall-clock latency."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == master or ppid == master:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                    help="gunicorn worker processes (default: one per core; more contend for SQLite's lock)")
    ap.add_argument("--threads", type=int, default=1, help="threads per worker (gthread when > 1)")
    ap.add_argument("--database-url", help="default: a fresh SQLite file in a temporary directory")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    n = max(1, min(args.requests, MAX_REQUESTS))

    with tempfile.TemporaryDirectory(prefix="corb-bench-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/corb.db"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CORB_", "TWILIO_"))}
        env.update(CORB_DATA_DIR=tmp, DATABASE_URL=url, CORB_PORT=str(port), TWILIO_AUTH_TOKEN=TOKEN,
                   CORB_SECRET_KEY="bench", CORB_BUS="local", CORB_BUCKET="folder")
        prepare(url)
        cold = cold_start(env)
        cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--log-level", "warning", "bot.wsgi:app"]
        if args.threads > 1:
            cmd[5:5] = ["--worker-class", "gthread", "--threads", str(args.threads)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
        try:
            wait_ready(port, proc)
            run_load(port, signed_requests(min(200, n), port), args.concurrency)  # warm every worker
            batch = signed_requests(n, port)
            cpu0 = server_cpu_s(proc.pid)
            latencies, errors, elapsed = run_load(port, batch, args.concurrency)
            cpu = server_cpu_s(proc.pid) - cpu0
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    result = {
        "database": url.split(":", 1)[0] if not args.database_url else url.split("://", 1)[0],
        "requests": n, "concurrency": args.concurrency, "workers": args.workers, "threads": args.threads,
        "errors": errors, "req_per_s": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "server_cpu_ms_per_req": round(cpu / n * 1000, 2),
        "load_avg_1m": round(os.getloadavg()[0], 2), **cold,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'database':<10} {'requests':>8} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8} {'errors':>6} {'cold start s':>12}")
        print(f"{result['database']:<10} {n:>8} {args.concurrency:>4} {result['req_per_s']:>8} "
              f"{result['p50_ms']:>8} {result['p99_ms']:>8} {result['max_ms']:>8} {errors:>6} "
              f"{result['import_s']:>12}")
        print(f"server CPU per request: {result['server_cpu_ms_per_req']} ms "
              f"(load average during the run: {result['load_avg_1m']} on {os.cpu_count()} cores)")
        if cold["heavy_imports"]:
            print("cold start imported:", ", ".join(cold["heavy_imports"]))
    return 1 if errors or cold["heavy_imports"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
