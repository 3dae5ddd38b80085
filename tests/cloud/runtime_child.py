"""A runtime in its own process, for the kill -9 tests: ``produce`` puts events (printing each id once
``put_events`` returned) while running them; ``drain`` runs until idle and exits.

    python runtime_child.py DATABASE_URL DECLARATION_ROOT produce|drain [COUNT]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # functions_for_tests

from cloud.db import make_engine, make_sessionmaker  # noqa: E402
from cloud.declaration import load_declaration  # noqa: E402
from cloud.events import entry  # noqa: E402
from cloud.runtime import LocalRuntime  # noqa: E402


def main(url: str, root: str, mode: str, count: str = "0") -> None:
    runtime = LocalRuntime(make_sessionmaker(make_engine(url)), load_declaration("test", Path(root)),
                           workers=4, poll_interval=0.02, backoff_base=0.05, lease_s=1.0, schedules=False)
    runtime.start()
    if mode == "produce":
        for i in range(int(count)):
            [event_id] = runtime.bus.put_events([entry("corb.test", "Work", {"i": i, "sleep": 0.05})])
            print(event_id, flush=True)  # acknowledged: durable from here on
            time.sleep(0.005)
        print("DONE", flush=True)
        time.sleep(120)  # keep running until killed
    else:
        idle = runtime.run_until_idle(60)
        runtime.stop()
        print("IDLE" if idle else "TIMEOUT", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
