"""The Cameras list: online / offline (by the same rule as the admins' texts), the agent's error, the last
segment and the video format; stream passwords never shown."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient

from bot.admin.views import video_format
from bot.handlers.camera_health import agent_status_key
from bot.models import Camera, Detection
from cloud.db import utcnow


def row(html: str, slug: str) -> str:
    """A camera's row as text, its badges kept as ``[class]``."""
    match = re.search(rf'<tr data-camera="{slug}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {slug}"
    marked = re.sub(r'<span class="badge (\w+)">', r"[\1] ", match.group(1))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", marked)).replace(" ,", ",").strip()


def test_cameras_page_shows_health_format_and_agent_errors(admin_client: FlaskClient, services: Any,
                                                           building: dict) -> None:
    now = utcnow()
    with services.session() as db:
        cam = db.get(Camera, building["camera_id"])  # its latest segment ended a minute ago
        cam.stream_url = "rtsp://admin:hunter2@10.0.0.7/main"
        cam.video_width, cam.video_height, cam.video_fps, cam.video_bitrate = 1280, 720, 15.0, 2_048_000
        porch = Camera(slug="porch", name="Porch", stream_url="rtsp://10.0.0.8/main")
        db.add(porch)
        db.flush()
        db.add(Detection(camera_id=porch.id, segment_key="cameras/porch/a.mkv", etag="a", counts="[0]",
                         start_time=now - timedelta(minutes=11), end_time=now - timedelta(minutes=10)))
    since = (now - timedelta(minutes=5)).isoformat() + "Z"
    services.bucket.put(agent_status_key("kitchen"), json.dumps({
        "state": "error", "error": "401 Unauthorized (rtsp://admin:***@10.0.0.9/main)", "since": since,
        "updated": since, "last_segment_key": None, "last_segment_at": None, "width": 640, "height": 360,
        "fps": 10, "bitrate_bps": 512_000}).encode())

    html = admin_client.get("/admin/cameras").get_data(as_text=True)
    lobby, kitchen, porch = row(html, "lobby"), row(html, "kitchen"), row(html, "porch")
    assert "[online] Online" in lobby and "1280×720 · 15 fps · 2.0 Mbit/s" in lobby
    assert "cameras/lobby/2026-11-27T10-00-00Z.mkv" in lobby
    failing = f"{now - timedelta(minutes=5):%Y-%m-%d %H:%M} UTC"  # as the texts give it, with the date
    assert (f"[offline] Offline since {failing} Agent error since {failing} 401 Unauthorized "
            "(rtsp://admin:***@10.0.0.9/main)") in kitchen  # no video yet
    assert "640×360 · 10 fps · 512 kbit/s" in kitchen  # the agent's word until a segment is analysed
    silent = f"{now - timedelta(minutes=10):%Y-%m-%d %H:%M} UTC"
    assert f"[offline] Offline since {silent}" in porch  # offline now, before the next check texts
    assert "hunter2" not in html and "10.0.0.7" not in html  # stream URLs stay off the page


def test_a_camera_without_an_agent_is_uploads_only(admin_client: FlaskClient, building: dict) -> None:
    html = admin_client.get("/admin/cameras").get_data(as_text=True)
    assert row(html, "lobby").startswith("Lobby lobby · ground floor [idle] Uploads only")


def test_video_format_leaves_out_what_is_unknown() -> None:
    assert video_format(1920, 1080, 25.0, 4_000_000) == ["1920×1080", "25 fps", "4.0 Mbit/s"]
    assert video_format(None, None, 14.985, 800_000) == ["15 fps", "800 kbit/s"]
    assert video_format(None, None, None, None) == []
