"""Functions the runtime attack tests declare; they run in sandbox processes, so they report through files
(``CORB_TEST_RUNLOG``: one JSON line per event) rather than memory."""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

from cloud.sandbox import alive


def _log(**fields: Any) -> None:
    line = json.dumps({"pid": os.getpid(), "t": time.time(), **fields}) + "\n"
    fd = os.open(os.environ["CORB_TEST_RUNLOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def spin(event: dict, context: Any) -> dict:
    """Keeps a core busy forever after noting which earlier attempts' processes are still alive."""
    path = os.environ["CORB_TEST_RUNLOG"]
    earlier = []
    if os.path.exists(path):
        with open(path) as fh:
            earlier = [json.loads(line)["pid"] for line in fh if line.strip()]
    workdir = tempfile.mkdtemp(prefix="corb-segment-")  # what the detection handler leaves on a kill
    _log(kind="start", request=context.aws_request_id, alive_before=[p for p in earlier if alive(p)],
         tmp=workdir)
    while True:
        pass


def quick(event: dict, context: Any) -> dict:
    _log(kind="quick", request=context.aws_request_id)
    return {"kind": "quick"}


def slow(event: dict, context: Any) -> dict:
    time.sleep(float(event.get("detail", {}).get("sleep", 3)))
    return {"kind": "slow"}


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]
