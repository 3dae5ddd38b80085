"""Analysis longer than the function's timeout (issue 13, defect 4): the invocation really stops (its
sandbox process is killed), attempts never overlap, each attempt keeps its own bookkeeping, and nothing of a
killed attempt is left behind (its process, its temp copy of the segment)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from runtime_functions import read_log
from runtime_helpers import alive, declare, rule, runtime, sessions_for
from sqlalchemy import select

from cloud.events import entry
from cloud.models import DeadLetter, Invocation
from cloud.sandbox import TMP_PREFIX, remove_stale_tmp


@pytest.fixture
def runlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.jsonl"
    monkeypatch.setenv("CORB_TEST_RUNLOG", str(path))  # the sandboxes inherit it
    return path


def test_a_timed_out_invocation_is_killed_and_retried_without_overlap(
        tmp_path: Path, database_url: str, runlog: Path) -> None:
    declaration = declare(tmp_path / "decl", [rule("spin", "spin", "corb.test")], timeout_seconds=1)
    with runtime(database_url, declaration, isolation="process", tmp_root=tmp_path / "tmp",
                 timeout_grace_s=1.0) as rt:
        rt.bus.put_events([entry("corb.test", "Work", {})])
        assert rt.run_until_idle(60)
    starts = [r for r in read_log(str(runlog)) if r["kind"] == "start"]
    assert len(starts) == 3  # the first attempt and Lambda's two retries
    assert len({r["pid"] for r in starts}) == 3  # each in a fresh sandbox: a timeout destroys it
    assert all(r["alive_before"] == [] for r in starts)  # no attempt started while another still ran
    assert not [r["pid"] for r in starts if alive(r["pid"])]  # nothing keeps a core busy afterwards
    assert not [r["tmp"] for r in starts if Path(r["tmp"]).exists()]  # its temp copy went with it
    with sessions_for(database_url)() as s:
        [inv] = s.scalars(select(Invocation)).all()
        [letter] = s.scalars(select(DeadLetter)).all()
    assert (inv.status, inv.attempts) == ("dead_letter", 3)
    assert letter.error.startswith("Sandbox.Timedout: Task timed out after 1.")


def test_stop_cuts_off_running_work_fast_and_hands_it_back(tmp_path: Path, database_url: str,
                                                           runlog: Path) -> None:
    declaration = declare(tmp_path / "decl", [rule("spin", "spin", "corb.test")], timeout_seconds=300)
    with runtime(database_url, declaration, isolation="process", tmp_root=tmp_path / "tmp") as rt:
        rt.start()
        rt.bus.put_events([entry("corb.test", "Work", {})])
        deadline = time.monotonic() + 30
        while not read_log(str(runlog)) and time.monotonic() < deadline:
            time.sleep(0.05)
        [start] = read_log(str(runlog))
        began = time.monotonic()
        rt.stop(timeout=1)
        took = time.monotonic() - began
    assert took < 5
    assert not alive(start["pid"])
    with sessions_for(database_url)() as s:
        [inv] = s.scalars(select(Invocation)).all()
    assert (inv.status, inv.attempts) == ("pending", 0)  # runs again at the next start, no retry used


def test_stale_sandbox_temp_folders_are_removed_on_start(tmp_path: Path) -> None:
    """kill -9 of a runtime leaves its sandboxes' temp folders (segment copies): the next start removes them,
    never a live sandbox's."""
    import os
    import subprocess

    root = tmp_path / "tmp"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = root / f"{TMP_PREFIX}{dead.pid}" / "corb-segment-abc"
    stale.mkdir(parents=True)
    (stale / "segment.mkv").write_bytes(b"x" * 1000)
    live = root / f"{TMP_PREFIX}{os.getpid()}"
    live.mkdir()
    assert remove_stale_tmp(root) == 1
    assert not stale.parent.exists() and live.exists()
