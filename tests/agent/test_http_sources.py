"""HTTP cameras: an MJPEG multipart stream and an HLS playlist, served over real HTTP on 127.0.0.1 from files
FFmpeg made of the test feed. Both become stream-copied segments with capture times on the wall clock."""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.runner import Agent
from agent.segmenter import SegmentSettings
from agent.settings import AgentSettings, CameraSource
from cloud.bucket import FolderBucket
from detection.pipeline import start_time_from_name
from tests.agent.live import describe, make_feed, segment_keys, wait_until

BOUNDARY = b"--ffmpeg"


class CameraHandler(SimpleHTTPRequestHandler):
    """Files as they are; ``*.mjpeg`` as a camera sends MJPEG: multipart, one JPEG every 1/15 s."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        if not self.path.endswith(".mjpeg"):
            return super().do_GET()
        parts = Path(self.translate_path(self.path)).read_bytes().split(BOUNDARY)[1:]
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=ffmpeg")
        self.end_headers()
        for part in parts:
            try:
                self.wfile.write(BOUNDARY + part)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return None
            time.sleep(1 / 15)
        return None

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("http")
    feed = make_feed(root / "feed.mkv", "empty:3 people:5")
    (root / "hls").mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(feed), "-c", "copy", "-f", "hls", "-hls_time", "2",
                    "-hls_playlist_type", "vod", str(root / "hls/live.m3u8")], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(feed), "-vf", "scale=320:180", "-c:v", "mjpeg",
                    "-q:v", "5", "-f", "mpjpeg", str(root / "cam.mjpeg")], check=True)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(CameraHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_mjpeg_and_hls_cameras_are_segmented_in_real_time(server: str, tmp_path: Path) -> None:
    bucket = FolderBucket(tmp_path / "bucket")
    settings = AgentSettings(segment=SegmentSettings(segment_s=2, quick_s=0), spool=tmp_path / "spool",
                             backoff_s=(0.2, 1.0), stall_s=3.0, open_timeout_s=3.0)
    sources = [CameraSource("door", f"{server}/cam.mjpeg"), CameraSource("yard", f"{server}/hls/live.m3u8")]
    agent = Agent(sources, settings, bucket).start()
    t0 = time.time()
    try:
        wait_until(lambda: min(len(segment_keys(bucket.root, s.slug)) for s in sources) >= 3, 20)
    finally:
        agent.stop()
    for slug, codec, width in (("door", "mjpeg", 320), ("yard", "h264", 640)):
        keys = segment_keys(bucket.root, slug)
        for key in keys:
            main = describe(bucket.root / key)["tracks"][0]
            assert (main["codec"], main["width"], main["keys"][0]) == (codec, width, True)
            start = start_time_from_name(key).timestamp()
            assert t0 - 1 <= start <= time.time()  # captured while the test ran, on the wall clock
        # Real time, not as fast as HTTP delivers: a 2-s segment holds about 2 s of 15 fps video (the first
        # one may hold up to ARRIVAL_SLACK_S more: the arrival clock settles during it).
        spans = [describe(bucket.root / k)["tracks"][0]["times"] for k in keys[1:-1]]
        assert all(12 <= len(t) <= 35 and t[-1] - t[0] <= 2.5 for t in spans), [len(t) for t in spans]
