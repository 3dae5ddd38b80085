"""``corb cameras add/list/run``: stream URLs stored and shown redacted; the agent from the database or a
config file, as a real process: SIGTERM finishes cleanly, ``kill -9`` loses at most the segment being
recorded and never duplicates one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.models import Camera
from detection.pipeline import start_time_from_name
from tests.agent.live import RtspCamera, describe, make_feed, segment_keys, status, wait_until

CORB = [sys.executable, "-c", "from bot.cli import main; main()"]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_feed(tmp_path_factory.mktemp("feed") / "feed.mkv", "empty:5 people:10")


@pytest.fixture
def camera(feed: Path) -> Iterator[RtspCamera]:
    cam = RtspCamera(feed, user="admin", password="s3cret")
    yield cam
    cam.stop(kill=True)


def test_streams_are_stored_and_only_shown_redacted(services: Any) -> None:
    run = CliRunner().invoke
    out = run(main, ["cameras", "add", "lobby", "--stream", "rtsp://admin:hunter2@10.0.0.5/main",
                     "--substream", "rtsp://admin:hunter2@10.0.0.5/sub"])
    assert out.exit_code == 0, out.output
    assert "rtsp://admin:***@10.0.0.5/main" in out.output and "hunter2" not in out.output
    listed = run(main, ["cameras", "list"]).output
    assert "rtsp://admin:***@10.0.0.5/main" in listed and "rtsp://admin:***@10.0.0.5/sub" in listed
    assert "hunter2" not in listed
    assert run(main, ["cameras", "add", "lobby", "--area", "hall"]).exit_code == 0  # streams unchanged
    with services.sessions() as s:
        cam = s.scalars(select(Camera)).one()
    assert (cam.stream_url, cam.substream_url) == ("rtsp://admin:hunter2@10.0.0.5/main",
                                                   "rtsp://admin:hunter2@10.0.0.5/sub")
    assert run(main, ["cameras", "add", "lobby", "--substream", ""]).exit_code == 0
    with services.sessions() as s:
        assert s.scalars(select(Camera)).one().substream_url is None


def test_a_stream_the_agent_cannot_read_is_refused(services: Any) -> None:
    out = CliRunner().invoke(main, ["cameras", "add", "lobby", "--stream", "ftp://admin:pw@cam/x"])
    assert out.exit_code == 2 and "'ftp' streams are not supported" in out.output and "rtsp" in out.output
    assert "pw@" not in out.output
    with services.sessions() as s:
        assert s.scalars(select(Camera)).all() == []


def test_run_without_any_stream_says_so_and_exits(services: Any) -> None:
    CliRunner().invoke(main, ["cameras", "add", "lobby"])
    out = CliRunner().invoke(main, ["cameras", "run"])
    assert out.exit_code == 0 and "No camera has a stream" in out.output
    out = CliRunner().invoke(main, ["cameras", "run", "lobby"])
    assert out.exit_code == 1 and "No stream set for lobby" in out.output
    out = CliRunner().invoke(main, ["cameras", "run", "nope"])
    assert out.exit_code == 1 and "No such camera: nope" in out.output


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CORB_", "TWILIO_")) and k != "DATABASE_URL"}
    env.update(CORB_DATA_DIR=str(tmp_path / "data"), CORB_SECRET_KEY="k", TWILIO_AUTH_TOKEN="t",
               CORB_SEGMENT_SECONDS="3", CORB_QUICK_SECONDS="0", CORB_AGENT_STALL_SECONDS="3", **extra)
    return env


def test_run_from_the_database_stops_cleanly_on_sigterm(services: Any, camera: RtspCamera,
                                                        tmp_path: Path) -> None:
    url = camera.url(user="admin", password="s3cret")
    assert CliRunner().invoke(main, ["cameras", "add", "lobby", "--stream", url]).exit_code == 0
    CliRunner().invoke(main, ["cameras", "add", "kitchen"])  # no stream: not run
    env = _env(tmp_path, DATABASE_URL=services.config.database_url)
    bucket = tmp_path / "data" / "bucket"
    proc = subprocess.Popen([*CORB, "cameras", "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: segment_keys(bucket, "lobby"), 20)
        spool = tmp_path / "data" / "spool" / "cameras" / "lobby"
        wait_until(lambda: list(spool.glob("*.part")), 10)  # mid-segment
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        took = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert took < 6, took
    assert "Recording lobby into bucket folder" in err and "kitchen" not in err.split("Recording")[1][:40]
    assert "s3cret" not in err
    assert not list((tmp_path / "data" / "spool").rglob("*.mkv*"))  # the last segment was closed and sent
    keys = segment_keys(bucket, "lobby")
    assert len(keys) >= 2
    assert all(describe(bucket / k)["tracks"][0]["keys"][0] for k in keys)
    final = status(bucket, "lobby")  # no longer "online": nothing records it now
    assert (final["state"], final["error"], final["last_segment_key"]) == (
        "error", "the camera agent was stopped", keys[-1])


def test_kill_9_loses_at_most_the_segment_being_recorded_and_duplicates_nothing(
        camera: RtspCamera, tmp_path: Path) -> None:
    config = tmp_path / "agent.json"
    spool = tmp_path / "spool"
    config.write_text(json.dumps({"segment_s": 3, "quick_s": 0, "spool": str(spool), "cameras": [
        {"slug": "lobby", "stream": camera.url(user="admin", password="s3cret")}]}))
    env = _env(tmp_path)
    bucket = tmp_path / "data" / "bucket"
    first = subprocess.Popen([*CORB, "cameras", "run", "--config", str(config)], env=env,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(segment_keys(bucket, "lobby")) >= 2, 25)
        parts = wait_until(lambda: list((spool / "cameras" / "lobby").glob("*.part")), 10)
        time.sleep(0.5)  # well inside the segment
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    half = parts[0].name.removesuffix(".part")
    before = set(segment_keys(bucket, "lobby"))
    second = subprocess.Popen([*CORB, "cameras", "run", "--config", str(config)], env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(set(segment_keys(bucket, "lobby")) - before) >= 2, 25)
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=15)
    finally:
        second.kill()
    assert "its recording was cut off" in err  # the half segment was deleted, never uploaded
    keys = segment_keys(bucket, "lobby")
    assert f"cameras/lobby/{half}" not in keys
    assert not list(bucket.rglob("*.part")) and not list(spool.rglob("*.part"))
    # Every object is a whole segment, and no two hold the same frames (no duplicate under another key).
    spans = []
    for key in keys:
        info = describe(bucket / key)
        main_track = info["tracks"][0]
        assert main_track["keys"][0] and main_track["times"][0] >= 0
        start = start_time_from_name(key).timestamp()
        spans.append((start + main_track["times"][0], start + main_track["times"][-1]))
    spans.sort()
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
