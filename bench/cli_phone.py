"""How fast ``corb`` answers as a command-line phone: ``corb --help``, and ``corb sms`` for a text the
webhook answers itself (``help``) and for texts a function answers (``status lobby``, ``cameras``).

    python bench/cli_phone.py [--runs 5] [--json]

Starts ``corb serve --port 0`` on a fresh SQLite data directory (a registered member, a camera), finds it
the way ``corb sms`` does (``serve.json``), and times each command as a fresh process, wall clock from
start to exit (Python start, imports, the signed POST, the functions' work, the replies printed). The
web simulator, for comparison, answers in 0.3 - 1.1 s on the same kind of machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORB = [sys.executable, "-c", "from bot.cli import main; main()"]
MEMBER = "+15550000002"
COMMANDS = {"corb --help": ["--help"], "corb sms help": ["sms", MEMBER, "help"],
            "corb sms 'status lobby'": ["sms", MEMBER, "status lobby"],
            "corb sms cameras": ["sms", MEMBER, "cameras"]}


def run(env: dict[str, str], args: list[str]) -> float:
    started = time.perf_counter()
    out = subprocess.run([*CORB, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if out.returncode != 0 or (args[0] == "sms" and "< " not in out.stdout):
        raise SystemExit(f"corb {' '.join(args)} failed: {out.stdout}{out.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corb-cli-bench-") as tmp:
        env = {**os.environ, "CORB_DATA_DIR": tmp, "TWILIO_AUTH_TOKEN": "bench-token",
               "CORB_SECRET_KEY": "bench-secret"}
        for name in [k for k in env if k in ("DATABASE_URL", "CORB_PORT", "CORB_PUBLIC_URL", "CORB_BUS")]:
            env.pop(name)
        for setup in (["db", "upgrade"], ["users", "add", MEMBER, "--name", "Max"],
                      ["cameras", "add", "lobby", "--name", "Lobby", "--area", "lobby"]):
            subprocess.run([*CORB, *setup], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
        server = subprocess.Popen([*CORB, "serve", "--port", "0", "--workers", "2"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (Path(tmp) / "serve.json").exists():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("corb serve did not start")
                time.sleep(0.2)
            results = {}
            for name, command in COMMANDS.items():
                run(env, command)  # warm the page cache
                times = [run(env, command) for _ in range(args.runs)]
                results[name] = {"median_s": round(statistics.median(times), 2),
                                 "max_s": round(max(times), 2)}
        finally:
            server.terminate()
            server.wait(timeout=60)
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"runs": args.runs, "load_1min": round(load, 1), "results": results}))
    else:
        print(f"{args.runs} runs each, 1-minute load average {load:.1f} on {os.cpu_count()} CPUs")
        for name, r in results.items():
            print(f"  {name:<26} median {r['median_s']:.2f} s, max {r['max_s']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
