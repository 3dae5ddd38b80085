"""Lambda-shaped functions the runtime tests declare (imported by dotted name, as the runtime does).

Runs are recorded in memory (``RUNS``) and, when ``CORB_TEST_RUNLOG`` names a file, appended to it, so a
test can count runs across a ``kill -9``. ``effect`` also writes its effect through ``first_time`` in one
transaction, as a real idempotent handler does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from typing import Any

from cloud.db import make_engine

RUNS: list[tuple[str, str, Any]] = []  # (function, request id, event)
_lock = threading.Lock()
_attempts: dict[str, int] = defaultdict(int)


def reset() -> None:
    with _lock:
        RUNS.clear()
        _attempts.clear()
        BROKEN["on"] = True


def runs(function: str) -> list[tuple[str, Any]]:
    with _lock:
        return [(rid, ev) for fn, rid, ev in RUNS if fn == function]


def _record(function: str, event: Any, context: Any) -> None:
    with _lock:
        RUNS.append((function, context.aws_request_id, event))
    path = os.environ.get("CORB_TEST_RUNLOG")
    if path:
        line = json.dumps({"fn": function, "rid": context.aws_request_id, "id": event.get("id")}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def echo(event: dict, context: Any) -> dict:
    _record("echo", event, context)
    return {"kind": "echo", "source": event.get("source"), "detail": event.get("detail")}


def other(event: dict, context: Any) -> dict:
    _record("other", event, context)
    return {"kind": "other"}


def on_echo(event: dict, context: Any) -> dict:
    """Chained after ``echo`` by a rule on its success destination record."""
    _record("on_echo", event, context)
    return {"kind": "after-echo"}


def fail(event: dict, context: Any) -> dict:
    _record("fail", event, context)
    raise ValueError(f"boom {event.get('detail', {}).get('n', '')}".strip())


def flaky(event: dict, context: Any) -> dict:
    """Fails its first two attempts, succeeds on the third (Lambda's last retry)."""
    _record("flaky", event, context)
    with _lock:
        _attempts[context.aws_request_id] += 1
        n = _attempts[context.aws_request_id]
    if n < 3:
        raise RuntimeError(f"transient failure {n}")
    return {"kind": "flaky", "attempt": n}


BROKEN = {"on": True}


def fragile(event: dict, context: Any) -> dict:
    """Fails while ``BROKEN["on"]`` (a dependency is down), then works: what replay is for."""
    _record("fragile", event, context)
    if BROKEN["on"]:
        raise ConnectionError("the dependency is down")
    return {"kind": "fragile", "ok": True}


def not_json(event: dict, context: Any) -> object:
    _record("not_json", event, context)
    return {"when": object()}


def slow(event: dict, context: Any) -> dict:
    _record("slow", event, context)
    time.sleep(float(event.get("detail", {}).get("sleep", 0.3)))
    return {"kind": "slow", "remaining_ms": context.get_remaining_time_in_millis()}


def record_dead_letter(event: dict, context: Any) -> dict:
    """Stands in for ``cloud.dead_letters.record`` where a test wants to see the failure record."""
    _record("record_dead_letter", event, context)
    return {"kind": "seen-failure", "request_id": event["detail"]["requestContext"]["requestId"]}


def context_probe(event: dict, context: Any) -> dict:
    _record("context_probe", event, context)
    return {"aws_request_id": context.aws_request_id, "function_name": context.function_name,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis()}


# -- the original design's chain: parse -> generate -> send -------------------------------------------

def parse_sms(event: dict, context: Any) -> dict:
    _record("parse_sms", event, context)
    words = event["detail"]["body"].lower().split()
    return {"command_type": "_".join(words[:2]), "area": words[2] if len(words) > 2 else "lobby"}


def generate_report(event: dict, context: Any) -> dict:
    _record("generate_report", event, context)
    request = event["detail"]["responsePayload"]
    return {"command_type": "cleaning_report", "area": request["area"],
            "report": f"{request['area']}: 3 people"}


def send_report(event: dict, context: Any) -> dict:
    _record("send_report", event, context)
    return {"sent": event["detail"]["responsePayload"]["report"]}


# -- an idempotent handler with a database effect (the durability test) --------------------------------

_engines: dict[str, Any] = {}


def effect(event: dict, context: Any) -> dict:
    """Count the run, then apply the effect once per event id (dedupe key and effect in one commit)."""
    _record("effect", event, context)
    time.sleep(float(event["detail"].get("sleep", 0.0)))
    url = os.environ["CORB_TEST_DB"]
    engine = _engines.get(url) or _engines.setdefault(url, make_engine(url))
    from sqlalchemy.orm import Session

    from cloud.idempotency import first_time

    with Session(engine) as session, session.begin():
        applied = first_time(session, "test-effect", event["id"])  # the effect, claimed once per event
    return {"applied": applied}
