"""Benchmark ``corb serve`` as users run it: signed webhooks per second, and replies while video is analysed.

    python bench/serve.py [--seconds 10] [--concurrency 4] [--segments 4] [--segment-minutes 10]
                          [--database-url URL] [--json]

1. **Webhooks**: ``corb serve --port 0`` (gunicorn, the runtime and its sandboxes, all running), then
   ``--concurrency`` clients send signed ``status lobby`` messages (unique MessageSids, a registered member)
   for ``--seconds``; every one is validated, deduped, stored and published, and the runtime answers them
   meanwhile (replies flowing), at the lower CPU priority ``corb serve`` gives it: the bench counts the
   replies sent during the burst, and how long after it the last one is out (``drain_s``: every message
   answered, none lost). Target: >= 300 requests/s, p99 <= 50 ms, 0 errors.
2. **Replies under video load**: ``--segments`` segments of ``--segment-minutes`` minutes (the test clip
   looped by stream copy) land in the bucket at once; while they are analysed, one ``status`` at a time
   is sent and timed from the POST until its reply is in the outbox. Target: p95 <= 2 s.

Everything stays on 127.0.0.1 and is bounded. The machine's load average is printed with the figures: on a
shared machine, compare runs only with similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook import ROOT, TOKEN, USER, percentile, prepare, run_load  # noqa: E402

CLIP = ROOT / "tests" / "data" / "vtest-clip.mkv"


def start_serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """``corb serve --port 0`` in its own session; returns it and its URL, parsed as scripts/demo.sh does."""
    fh = log.open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", "0"], cwd=ROOT, env=env,
                            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"running at (http://\S+)", log.read_text(errors="replace"))
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            raise SystemExit(f"corb serve exited ({proc.returncode}):\n{log.read_text()}")
        time.sleep(0.1)
    raise SystemExit("corb serve did not start")


def signed(url: str, deadline: float | None = None, count: int | None = None) -> Iterator[tuple[bytes, str]]:
    """Twilio's requests, signed for ``url``: until ``deadline`` (monotonic) or ``count`` requests."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    n = 0
    while (deadline is None or time.monotonic() < deadline) and (count is None or n < count):
        form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": USER,
                "To": "+15550001000", "Body": "status lobby", "NumMedia": "0"}
        n += 1
        yield urlencode(form).encode(), validator.compute_signature(url + "/sms", form)


def replies(database_url: str) -> int:
    from sqlalchemy import func, select

    from bot.models import Message
    from cloud.db import make_engine, make_sessionmaker

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as s:
        n = s.scalar(select(func.count(Message.id)).where(Message.direction == "out",
                                                         Message.to_number == USER))
    engine.dispose()
    return int(n or 0)


def cpu_by_role(session: int) -> dict[str, float]:
    """User+system CPU seconds so far of serve's processes (Linux /proc), by role: ``web`` (gunicorn) and
    ``runtime`` (the runtime and its sandboxes); a figure other load on a shared machine does not inflate."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {"web": 0.0, "runtime": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[3]) != session:  # fields[3] is the session id
            continue
        role = "web" if b"gunicorn" in cmdline else "runtime"
        totals[role] += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return totals


def long_segment(minutes: float, out: Path) -> Path:
    """The test clip looped to ``minutes`` by stream copy (no re-encoding): a real camera-like segment."""
    loops = int(minutes * 60 / 7) + 1
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(CLIP), "-c", "copy",
                    "-t", str(minutes * 60), str(out)], check=True)
    return out


def reply_latencies(port: int, url: str, database_url: str, samples: int, timeout: float = 60) -> list[float]:
    """Send one ``status`` at a time; seconds from the POST until its reply is in the outbox."""
    out = []
    for body, sig in signed(url, count=samples):
        before = replies(database_url)
        t0 = time.perf_counter()
        _, errors, _ = run_load(port, [(body, sig)], 1)
        if errors:
            raise SystemExit("a status webhook failed under video load")
        while replies(database_url) <= before:
            if time.perf_counter() - t0 > timeout:
                raise SystemExit(f"no reply within {timeout} s under video load")
            time.sleep(0.02)
        out.append(time.perf_counter() - t0)
        time.sleep(0.5)
    return out


def analysing(database_url: str) -> int:
    from sqlalchemy import func, select

    from cloud.db import make_engine, make_sessionmaker
    from cloud.models import Invocation

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as s:
        n = s.scalar(select(func.count(Invocation.id)).where(
            Invocation.function == "detection.handler.handle", Invocation.status.in_(("pending", "running"))))
    engine.dispose()
    return int(n or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--segments", type=int, default=4)
    ap.add_argument("--segment-minutes", type=float, default=10.0)
    ap.add_argument("--samples", type=int, default=20, help="status replies timed under video load")
    ap.add_argument("--database-url", help="default: SQLite in a temporary folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not 0 < args.seconds <= 60 or not 0 < args.concurrency <= 16 or not 0 <= args.segments <= 8:
        raise SystemExit("bounded: --seconds 1-60, --concurrency 1-16, --segments 0-8")

    tmp = Path(tempfile.mkdtemp(prefix="corb-bench-serve-"))
    url_db = args.database_url or f"sqlite:///{tmp}/corb.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORB_", "TWILIO_"))}
    env.update(CORB_DATA_DIR=str(tmp / "data"), DATABASE_URL=url_db, TWILIO_AUTH_TOKEN=TOKEN,
               CORB_SECRET_KEY="bench", CORB_BUS="local", CORB_BUCKET="folder")
    prepare(url_db)
    proc, url = start_serve(env, tmp / "serve.log")
    port = int(url.rsplit(":", 1)[1])
    result: dict = {"database": url_db.split(":", 1)[0], "cores": os.cpu_count()}
    try:
        warm = 200
        run_load(port, list(signed(url, count=warm)), args.concurrency)  # warm every worker and sandbox
        replied0 = replies(url_db)
        cpu0 = cpu_by_role(proc.pid)
        load0 = os.getloadavg()[0]
        latencies, errors, elapsed = run_load(port, signed(url, time.monotonic() + args.seconds),  # type: ignore[arg-type]
                                              args.concurrency)
        result.update(requests=len(latencies), errors=errors, req_per_s=round(len(latencies) / elapsed, 1),
                      p50_ms=round(statistics.median(latencies) * 1000, 2),
                      p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
                      replies_during=replies(url_db) - replied0,
                      **{f"{role}_cpu_ms_per_req": round((used - cpu0[role]) / len(latencies) * 1000, 2)
                         for role, used in cpu_by_role(proc.pid).items()},
                      load_avg_1m_before=round(load0, 2), load_avg_1m_after=round(os.getloadavg()[0], 2))
        burst_end, expected = time.monotonic(), warm + len(latencies)
        while replies(url_db) < expected and time.monotonic() - burst_end < 300:
            time.sleep(0.1)
        answered = replies(url_db)
        result.update(replied=answered - warm, drain_s=round(time.monotonic() - burst_end, 1))
        if answered != expected:
            raise SystemExit(f"{expected - answered} of {expected} status messages got no reply within 300 s")
        if args.segments:
            from cloud.bucket import FolderBucket

            segment = long_segment(args.segment_minutes, tmp / "segment.mkv")
            bucket = FolderBucket(tmp / "data" / "bucket")
            for i in range(args.segments):
                bucket.upload(segment, f"cameras/lobby/2026-11-30T10:{i:02d}:00Z.mkv")
            deadline = time.monotonic() + 30
            while analysing(url_db) < args.segments and time.monotonic() < deadline:
                time.sleep(0.2)
            times = reply_latencies(port, url, url_db, args.samples)
            result.update(segments=args.segments, segment_minutes=args.segment_minutes,
                          still_analysing_after=analysing(url_db),
                          reply_p50_s=round(statistics.median(times), 3),
                          reply_p95_s=round(percentile(times, 0.95), 3), reply_max_s=round(max(times), 3),
                          load_avg_1m_video=round(os.getloadavg()[0], 2))
        stop0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        result["sigterm_s"] = round(time.monotonic() - stop0, 2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    ok = (not result["errors"] and result["req_per_s"] >= 300 and result["p99_ms"] <= 50
          and result.get("reply_p95_s", 0) <= 2)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>22}: {value}")
        print("targets (>= 300 req/s, p99 <= 50 ms, 0 errors, reply p95 <= 2 s under video):",
              "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
