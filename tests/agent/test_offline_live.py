"""A camera that drops out, end to end: a real RTSP camera recorded by `corb serve`'s agent, killed,
then back.

The camera's segments are analysed by the runtime as usual; the camera health check (a schedule on AWS and
in the runtime, called here directly so the test need not wait a minute) texts every admin once when the
camera has been silent past the grace period, and once more when its video comes back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from live import RtspCamera, make_feed, wait_until
from sqlalchemy import select

from bot.handlers.camera_health import GRACE_SETTING, check
from bot.models import Camera, Detection, Setting
from tests.bot.conftest import ADMIN, MEMBER, outbox, people  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
GRACE_S = 4


def _serve(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", "0", "--workers", "2"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line, deadline = "", time.monotonic() + 60
    while time.monotonic() < deadline and "running at" not in line:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line or proc.poll() is None, "corb serve exited early"
    assert re.search(r"running at http://127\.0\.0\.1:\d+", line), line
    return proc


def _analysed(services: Any) -> int:
    with services.sessions() as s:
        camera = s.scalars(select(Camera).where(Camera.slug == "lobby")).one()
        return len(s.scalars(select(Detection).where(Detection.camera_id == camera.id)).all())


def _video(services: Any) -> int:
    """Segments that reached the cloud: analysed ones, and still ones the agent put under quiet/."""
    return _analysed(services) + len(list(services.bucket.list("quiet/lobby/")))


def _texts(services: Any, words: str) -> list[str]:
    return [m.body for m in outbox(services, ADMIN) if words in m.body]


@pytest.mark.usefixtures("people")
def test_offline_after_the_grace_then_back_online(services: Any, corb_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    feed = make_feed(tmp_path / "feed.mkv", "empty:30")
    camera = RtspCamera(feed, sub=False)
    port = camera.port
    with services.session() as s:
        s.scalars(select(Camera).where(Camera.slug == "lobby")).one().stream_url = camera.url()
        s.add(Setting(key=GRACE_SETTING, value=str(GRACE_S)))
    env = {**os.environ, **corb_env, "DATABASE_URL": services.config.database_url, "CORB_PORT": "0",
           "CORB_SEGMENT_SECONDS": "2", "CORB_AGENT_STALL_SECONDS": "3"}
    serve = _serve(env)
    try:
        assert wait_until(lambda: _video(services) >= 2, 90), "no segment of the live camera arrived"
        assert check()["went_offline"] == []  # video flows: nobody is texted

        camera.stop(kill=True)  # the camera reboots: its stream stalls and the port refuses
        killed = time.monotonic()
        seen = _video(services)
        # The check runs every minute in production; here until it calls the camera offline.
        assert wait_until(lambda: check()["went_offline"] == ["lobby"], GRACE_S + 40, step=1.0)
        # Not before the grace period, counted from the last video the cloud has: the segment cut short by
        # the kill is analysed first, so that may be the one before it (a segment, 2 s, earlier).
        assert time.monotonic() - killed >= GRACE_S - 2
        assert check()["went_offline"] == []  # once only, however often the check runs
        [offline] = _texts(services, "offline since")
        assert offline.startswith("Corb: Lobby camera offline since ")
        assert not [m for m in outbox(services, MEMBER) if "offline" in m.body]  # admins only

        camera = RtspCamera(feed, port=port, sub=False)  # back, at the same address
        assert wait_until(lambda: _video(services) > seen + 1, 90), "the agent did not reconnect"
        assert wait_until(lambda: check()["back_online"] == ["lobby"] or _texts(services, "back online"), 30)
        check()
        [online] = _texts(services, "back online")
        assert online.startswith("Corb: Lobby camera back online (offline ")
        assert len(_texts(services, "offline since")) == 1
    finally:
        camera.stop()
        serve.terminate()
        serve.wait(30)
