"""scripts/demo-camera.sh: makes its feed once, serves it over real RTSP (GStreamer), reuses a running
camera, and scripts/demo-stop.sh stops it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sh(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "scripts" / script), *args], env=env, capture_output=True, text=True,
                          timeout=300, check=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_demo_camera_serves_its_feed_over_rtsp_until_demo_stop(tmp_path: Path) -> None:
    env = {**os.environ, "CORB_DATA_DIR": str(tmp_path), "CORB_DEMO_SCENES": "empty:2 people:2",
           "CORB_DEMO_REPEAT": "1"}
    started = sh("demo-camera.sh", env)
    url = started.stdout.strip()
    assert url.startswith("rtsp://127.0.0.1:") and url.endswith("/lobby"), started
    camera_dir = tmp_path / "demo-camera"
    pid = int((camera_dir / "camera.pid").read_text())
    try:
        truth = json.loads((camera_dir / "lobby-feed.json").read_text())
        assert [s["kind"] for s in truth["scenes"]] == ["empty", "people"] and truth["gop"] == 30
        probe = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
                                "-show_entries", "stream=codec_name,width,height", "-of", "json", url],
                               capture_output=True, text=True, timeout=60, check=True)
        assert json.loads(probe.stdout)["streams"] == [{"codec_name": "h264", "width": 1280, "height": 720}]

        again = sh("demo-camera.sh", env)  # a second demo run reuses the camera and its URL
        assert again.stdout.strip() == url and "already running" in again.stderr
        assert int((camera_dir / "camera.pid").read_text()) == pid
    finally:
        stopped = sh("demo-stop.sh", env)
    assert "demo camera stopped." in stopped.stderr and "corb serve is not running." in stopped.stdout
    assert not alive(pid) and not (camera_dir / "camera.pid").exists()
