"""``corb serve`` as users run it: gunicorn and the runtime in separate processes, a quick SIGTERM that
leaves nothing running, and kill -9 during traffic with every message answered exactly once."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from runtime_helpers import Serve, alive, messages, seed, serve_env, wait_for

from bot.commands_local import default_detection_workers


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # processes, not SQL: one database
def test_serve_answers_then_stops_within_seconds_leaving_nothing(tmp_path: Path, database_url: str) -> None:
    seed(database_url)
    serve = Serve(serve_env(tmp_path / "data", database_url), tmp_path / "serve.log")
    try:
        assert serve.url.startswith("http://127.0.0.1:") and not serve.url.endswith(":0")
        assert serve.post_sms("status") == 200
        assert wait_for(lambda: len(messages(database_url)[1]) == 1, 60), serve.log.read_text()
        [reply] = messages(database_url)[1]
        assert reply.startswith("Lobby")
        group = serve.group()
        assert len(group) >= 4  # supervisor, gunicorn master and worker(s), runtime (+ its sandbox)
        # two detection invocations at least, on any host: an alert's 2-s segment does not wait for the
        # long segment before it
        workers = default_detection_workers(os.cpu_count() or 1)
        assert workers >= 2
        assert re.search(rf"started \(process isolation\): dev x\d+, dev_detection x{workers}\b",
                         serve.log.read_text()), serve.log.read_text()
        took = serve.terminate()
    finally:
        serve.close()
    assert took < 10, f"SIGTERM took {took:.1f} s"
    assert wait_for(lambda: not [p for p in group if alive(p)], 5)
    assert "Stopped." in serve.log.read_text()


def test_kill_9_during_traffic_answers_every_message_exactly_once(tmp_path: Path, database_url: str) -> None:
    seed(database_url)
    env = serve_env(tmp_path / "data", database_url)
    sids = [f"SM{i:032x}" for i in range(1, 25)]
    acknowledged: set[str] = set()
    first = Serve(env, tmp_path / "serve.log")
    try:
        for n, sid in enumerate(sids):
            if n == 12:  # mid-traffic: the supervisor dies without any chance to clean up
                group = first.group()
                first.proc.send_signal(signal.SIGKILL)
                first.proc.wait(10)
            try:
                if first.post_sms("status", sid=sid) == 200:
                    acknowledged.add(sid)
            except OSError:
                pass  # refused: Twilio retries it later, with the same MessageSid
            time.sleep(0.02)
        # The children follow their supervisor: nothing keeps serving or running functions.
        assert wait_for(lambda: not [p for p in group if alive(p)], 15), [p for p in group if alive(p)]
    finally:
        first.close()
    assert len(acknowledged) >= 12
    second = Serve(env, tmp_path / "serve.log")
    try:
        for sid in sids:  # Twilio's retries, including those already acknowledged (at least once)
            assert second.post_sms("status", sid=sid) == 200
        assert wait_for(lambda: len(messages(database_url)[1]) >= len(sids), 120), second.log.read_text()
        time.sleep(1.0)  # a doubled reply would land within this
        inbound, replies = messages(database_url)
    finally:
        second.terminate()
        second.close()
    assert sorted(inbound) == sids  # every message stored once
    assert len(replies) == len(sids)  # and answered exactly once


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from runtime_helpers import ROOT

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = serve_env(tmp_path / "data", f"sqlite:///{tmp_path}/corb.db")
        out = subprocess.run([sys.executable, "-m", "bot", "serve", "--port", str(port)], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in out.stderr
    assert "running at" not in out.stdout
