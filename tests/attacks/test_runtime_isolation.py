"""SMS replies never wait behind video (issue 13, defect 5): each Lambda function (a Zappa stage) has its
own concurrency in the local runtime, as on AWS; a full detection pool leaves the handlers' pool free."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from runtime_functions import read_log
from runtime_helpers import FN, declare, rule, runtime

from cloud.events import entry

SLOW_S = 30  # far longer than the reply may take: with one shared pool the reply would wait this long


@pytest.fixture
def runlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.jsonl"
    monkeypatch.setenv("CORB_TEST_RUNLOG", str(path))
    return path


def test_a_reply_does_not_wait_for_a_full_detection_pool(tmp_path: Path, database_url: str,
                                                         runlog: Path) -> None:
    detection = {"extends": "base", "timeout_seconds": 300,
                 "events": [rule("video", "slow", "corb.video")]}
    declaration = declare(tmp_path / "decl", [rule("sms", "quick", "corb.sms")],
                          stages={"test_detection": detection})
    assert declaration.settings(FN + "slow").stage == "test_detection"
    with runtime(database_url, declaration, workers=4, isolation="process", tmp_root=tmp_path / "tmp",
                 concurrency={"test_detection": 2}, nice={"test_detection": 10}) as rt:
        assert {p.stage: p.size for p in rt.pools.values()} == {"test": 4, "test_detection": 2}
        rt.start()
        rt.bus.put_events([entry("corb.video", "Segment", {"sleep": SLOW_S}) for _ in range(4)])
        time.sleep(0.5)  # the video work is claimed first
        sent = time.monotonic()
        rt.bus.put_events([entry("corb.sms", "SMS Command", {})])
        while not read_log(str(runlog)) and time.monotonic() - sent < SLOW_S:
            time.sleep(0.05)
        took = time.monotonic() - sent
        running = {c.function for c in rt._running.values()}
    assert read_log(str(runlog)), "the reply never ran"
    assert took < 10, f"the reply waited {took:.1f} s"
    assert FN + "slow" in running  # detection was still busy: the reply did not wait for it
