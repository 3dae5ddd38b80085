"""kill -9: a runtime process is killed while it puts and runs events; a restarted one delivers every
acknowledged event, and no invocation that had finished runs again (only those cut off mid-run do)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from cloud_helpers import rule, write_declaration
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from cloud.models import BusEvent, Invocation, ProcessedKey

CHILD = Path(__file__).with_name("runtime_child.py")
WORKERS = 4  # runtime_child.py's pool: at most this many invocations can be cut off mid-run


def _start(url: str, root: Path, mode: str, env: dict[str, str], count: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), url, str(root), mode, str(count)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _runs(runlog: Path) -> list[dict]:
    if not runlog.exists():
        return []
    return [json.loads(line) for line in runlog.read_text().splitlines() if line.strip()]


def test_kill_9_loses_nothing_and_reruns_only_what_was_cut_off(database_url: str, sessions: sessionmaker,
                                                                tmp_path: Path) -> None:
    root = write_declaration(tmp_path / "declaration", [rule("work", "effect", {"source": ["corb.test"]})])
    runlog = tmp_path / "runs.jsonl"
    env = {**os.environ, "CORB_TEST_RUNLOG": str(runlog), "CORB_TEST_DB": database_url,
           "PYTHONPATH": os.pathsep.join([str(CHILD.parent), os.environ.get("PYTHONPATH", "")])}

    producer = _start(database_url, root, "produce", env, count=400)
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    try:
        # Kill once it has acknowledged events and run some, with more still queued or running.
        while time.monotonic() < deadline:
            line = producer.stdout.readline().strip()
            assert line and line != "DONE", f"producer ended early: {producer.stderr.read()[-2000:]}"
            acknowledged.append(line)
            if len(acknowledged) >= 40 and len(_runs(runlog)) >= 10:
                break
        os.kill(producer.pid, signal.SIGKILL)
        producer.wait(10)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == -signal.SIGKILL
    with sessions() as s:
        unfinished = s.scalar(select(func.count()).select_from(Invocation)
                              .where(Invocation.status.in_(("pending", "running", "retrying"))))
    assert unfinished > 0, "the kill came too late to test anything"

    drain = _start(database_url, root, "drain", env)
    out, err = drain.communicate(timeout=90)
    assert drain.returncode == 0 and out.strip() == "IDLE", err[-3000:]

    with sessions() as s:
        events = {e.id: e.status for e in s.scalars(select(BusEvent).where(BusEvent.source == "corb.test"))}
        work = list(s.scalars(select(Invocation).where(Invocation.rule == "work")))
        effects = s.scalar(select(func.count()).select_from(ProcessedKey)
                           .where(ProcessedKey.scope == "test-effect"))
    assert set(acknowledged) <= set(events)  # every acknowledged event survived the kill
    assert set(events.values()) == {"delivered"}  # ...and was delivered after the restart
    assert len(work) == len(events) and {i.status for i in work} == {"succeeded"}
    assert effects == len(events)  # each event's effect applied once

    runs = Counter(r["rid"] for r in _runs(runlog))
    assert set(runs) == {i.request_id for i in work}
    rerun = [i for i in work if runs[i.request_id] > 1]
    for inv in work:
        assert runs[inv.request_id] <= inv.attempts  # a run is an attempt
        if inv.attempts == 1:
            assert runs[inv.request_id] == 1
    # Only what was running at the kill ran again: at most one pool's worth, each taken back by lease.
    assert len(rerun) <= WORKERS
    assert all(i.attempts == 2 for i in rerun)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_acknowledged_put_survives_an_immediate_kill(database_url: str, sessions: sessionmaker,
                                                        tmp_path: Path) -> None:
    """put_events returns only after the commit: kill -9 right after the id is printed loses nothing."""
    root = write_declaration(tmp_path / "declaration", [rule("work", "effect", {"source": ["corb.nobody"]})])
    env = {**os.environ, "CORB_TEST_DB": database_url}
    producer = _start(database_url, root, "produce", env, count=50)
    try:
        first = producer.stdout.readline().strip()
        os.kill(producer.pid, signal.SIGKILL)
        producer.wait(10)
    finally:
        if producer.poll() is None:
            producer.kill()
    with sessions() as s:
        assert s.get(BusEvent, first) is not None
