"""Real parts for the agent's live tests: a feed made with scripts/camera_feed.py and GStreamer's RTSP
server (scripts/rtsp_camera.py on Debian's Python, as a subprocess) serving it on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def make_feed(out: Path, scenes: str = "empty:4 people:6", codec: str = "h264",
              sub_size: str = "320x180") -> Path:
    """A 640x360 15 fps feed, a keyframe every second, with a sub-stream (``out.sub.mkv``)."""
    subprocess.run([sys.executable, str(ROOT / "scripts/camera_feed.py"), str(out), "--scenes", scenes,
                    "--size", "640x360", "--gop", "15", "--bitrate", "600k", "--sub-size", sub_size,
                    "--sub-bitrate", "150k", "--codec", codec], check=True, capture_output=True)
    return out


class RtspCamera:
    """A running RTSP server; ``urls`` are its mounts, ``playing`` the wall-clock starts it reported."""

    def __init__(self, feed: Path, *, port: int = 0, user: str | None = None, password: str | None = None,
                 sub: bool = True, clock_offset: float | None = None) -> None:
        cmd = [SYSTEM_PYTHON, str(ROOT / "scripts/rtsp_camera.py"), str(feed), "--port", str(port),
               "--path", "/cam"]
        if clock_offset is not None:
            cmd += ["--clock-offset", str(clock_offset)]
        if user:
            cmd += ["--user", user, "--password", password or ""]
        if sub:
            cmd += ["--sub-feed", str(feed.with_suffix(".sub.mkv"))]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.urls: list[str] = []
        self.playing: list[tuple[str, float]] = []
        self._ready = threading.Event()
        self._mounts = 2 if sub else 1
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(15):
            self.stop()
            raise RuntimeError("the RTSP server did not start")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["serving"]:
                self.urls.append(parts[1])
                if len(self.urls) == self._mounts:
                    self._ready.set()
            elif parts[:1] == ["playing"]:
                self.playing.append((parts[1], float(parts[2])))
            else:  # GStreamer's own warnings: captured, and shown with a failing test
                print(f"rtsp_camera.py: {line}", end="")

    @property
    def port(self) -> int:
        return int(self.urls[0].rsplit(":", 1)[1].split("/")[0])

    def url(self, sub: bool = False, user: str | None = None, password: str | None = None) -> str:
        url = self.urls[1 if sub else 0]
        return url.replace("rtsp://", f"rtsp://{user}:{password}@") if user else url

    def stop(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(10)


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not true within {timeout} s")


def segment_keys(bucket_root: Path, slug: str) -> list[str]:
    folder = bucket_root / "cameras" / slug
    return sorted(f"cameras/{slug}/{p.name}" for p in folder.glob("*.mkv")) if folder.is_dir() else []


def status(bucket_root: Path, slug: str) -> dict | None:
    path = bucket_root / "cameras" / slug / "agent.json"
    return json.loads(path.read_text()) if path.is_file() else None


def wait_for_state(bucket_root: Path, slug: str, state: str, timeout: float) -> dict:
    """The camera's status object once it shows ``state``."""
    return wait_until(lambda: (s := status(bucket_root, slug)) and s["state"] == state and s, timeout)


def describe(path: Path) -> dict:
    """Tracks, tags and per-track first/last frame times (s) of a segment, read back with PyAV."""
    with av.open(str(path)) as c:
        out: dict = {"tags": dict(c.metadata), "tracks": []}
        for s in c.streams:
            out["tracks"].append({"title": s.metadata.get("title"), "codec": s.codec_context.name,
                                  "width": s.codec_context.width, "times": [], "keys": []})
        for packet in c.demux():
            if packet.pts is None:
                continue
            t = out["tracks"][packet.stream.index]
            t["times"].append(float(packet.pts * packet.time_base))
            t["keys"].append(bool(packet.is_keyframe))
        return out
