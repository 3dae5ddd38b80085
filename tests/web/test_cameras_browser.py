"""The Cameras list in Chromium at laptop and phone size: health badges, the agent's error, the video
format, nothing wider than the screen, and every "N min ago" on one line (issue 12: it wrapped onto three
lines beside a long segment key on a 390 px phone)."""

from __future__ import annotations

import json
from datetime import timedelta

from playwright.sync_api import Browser, expect

from bot.handlers.camera_health import agent_status_key
from bot.models import Camera, Detection
from cloud.db import utcnow
from tests.web import test_browser as suite

# The suite's module-scoped fixtures, instantiated again for this module: its own server and data.
live, browser, admin_password = suite.live, suite.browser, suite.admin_password

# Each time's height against its own line height, and how many line boxes it makes.
TIME_LINES = """() => [...document.querySelectorAll('table.cameras time')].map(el => {
  const style = getComputedStyle(el);
  const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
  return {text: el.textContent, rects: el.getClientRects().length,
          lines: el.getBoundingClientRect().height / line};
})"""


def test_cameras_list_at_laptop_and_phone_size(live: suite.Live, browser: Browser,
                                               admin_password: str) -> None:
    now = utcnow()
    with live.db() as db:
        lobby = Camera(slug="lobby-hall", name="Lobby hall", area="ground floor", stream_url="rtsp://cam1/main",
                       video_width=1280, video_height=720, video_fps=15.0, video_bitrate=2_000_000)
        gate = Camera(slug="gate", name="Gate", area="outside", stream_url="rtsp://cam2/main")
        db.add_all([lobby, gate])
        db.flush()
        key = f"cameras/lobby-hall/{now - timedelta(minutes=15):%Y-%m-%dT%H-%M-%S.000Z}.mkv"
        lobby.last_segment_key, lobby.last_segment_at = key, now - timedelta(minutes=15)
        for cam, ago in ((lobby, timedelta(seconds=30)), (gate, timedelta(minutes=15))):
            db.add(Detection(camera_id=cam.id, segment_key=f"{cam.slug}.mkv", etag="e", counts="[1]", peak=1,
                             start_time=now - ago - timedelta(seconds=60), end_time=now - ago))
    since = (now - timedelta(minutes=14)).isoformat() + "Z"
    live.services.bucket.put(agent_status_key("gate"), json.dumps({
        "state": "error", "error": "could not connect to rtsp://cam2/main: Connection refused",
        "since": since, "updated": since}).encode())

    for size, viewport in suite.SIZES.items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors = suite.csp_errors(page)
        suite.sign_in(page, live, admin_password)
        page.goto(live.url + "/admin/cameras")
        lobby_row, gate_row = page.locator("tr[data-camera=lobby-hall]"), page.locator("tr[data-camera=gate]")
        expect(lobby_row.locator(".badge")).to_have_text("Online")
        expect(lobby_row).to_contain_text("1280×720 · 15 fps · 2.0 Mbit/s")
        expect(gate_row.locator(".badge")).to_have_text("Offline")
        expect(gate_row.locator(".agent-error")).to_have_text(
            "could not connect to rtsp://cam2/main: Connection refused")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the cameras page is {overflow}px wider than a {size} screen"
        times = page.evaluate(TIME_LINES)
        assert any(t["text"] == "15 min ago" for t in times), times
        wrapped = [t for t in times if t["rects"] != 1 or t["lines"] > 1.5]
        assert wrapped == [], f"times wrapped at {size} size: {wrapped}"
        suite.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(suite.SHOTS / f"cameras-health-{size}.png"), full_page=True)
        assert errors == [], errors
        context.close()
