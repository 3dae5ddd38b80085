"""The counting zone in a real browser: typed on the camera page, drawn over the latest snapshot.

Reuses the browser suite's live server (``corb serve`` in a thread) and Chromium; the snapshot is put in
directly, as ``tests/web/test_browser.py``'s journey already makes them the real way.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from playwright.sync_api import Browser, expect

from bot.models import Camera, Detection
from cloud.camera_settings import CAPTION_BAR, load_settings
from cloud.db import utcnow
from detection.annotate import snapshot
from tests.web import test_browser as suite

# The suite's module-scoped fixtures, instantiated again for this module: its own server and data.
live, browser, admin_password = suite.live, suite.browser, suite.admin_password
SNAPSHOT = "snapshots/porch/2026-11-27T10-00-00Z.jpg"


def test_zone_is_validated_saved_and_drawn_over_the_snapshot(live: suite.Live, browser: Browser,
                                                             admin_password: str) -> None:
    # A real snapshot: the picture below its caption bar, where the zone must be drawn.
    picture = np.full((360, 640, 3), 90, dtype=np.uint8)
    shot = snapshot(picture, np.array([[300.0, 150.0, 350.0, 330.0]]), camera="Porch", when=None)
    live.services.bucket.put(SNAPSHOT, shot, "image/jpeg")
    now = utcnow()
    with live.db() as db:
        porch = Camera(slug="porch", name="Porch", area="entrance")
        db.add(porch)
        db.flush()
        db.add(Detection(camera_id=porch.id, segment_key="cameras/porch/a.mkv", etag="a", start_time=now -
                         timedelta(minutes=2), end_time=now - timedelta(minutes=1), peak=1, mean=1.0,
                         unique_people=1, counts="[1]", snapshot_key=SNAPSHOT))
        camera_id = porch.id
    context = browser.new_context(viewport=suite.SIZES["laptop"])
    page = context.new_page()
    errors = suite.csp_errors(page)
    suite.sign_in(page, live, admin_password)

    page.goto(f"{live.url}/admin/cameras/{camera_id}")
    expect(page.locator(".zone-preview")).to_contain_text("No zone: the whole picture counts.")
    page.fill("#zone", "0,0.4 1,0.4 1")
    page.click("button:has-text('Save')")
    expect(page.locator(".field.has-error .errors")).to_contain_text("'1' is not a point")
    page.fill("#zone", "0,0.4 1,0.4 1,1 0,1")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.success")).to_have_text("Saved camera Porch.")
    assert load_settings(live.services.bucket, "porch").zone == ((0, 0.4), (1, 0.4), (1, 1), (0, 1))

    page.goto(f"{live.url}/admin/cameras/{camera_id}")
    expect(page.locator("#zone")).to_have_value("0,0.4 1,0.4 1,1 0,1")
    zone = page.locator(".zone-frame polygon.zone")
    expect(zone).to_be_visible()
    suite.wait_for("the snapshot to load", lambda: suite.natural_width(page, ".zone-frame img") > 0, 15)
    picture, overlay, outline = (page.locator(s).bounding_box() for s in (
        ".zone-frame img", ".zone-frame svg", ".zone-frame polygon.zone"))
    assert picture and overlay and outline and picture["width"] > 300
    assert all(abs(picture[k] - overlay[k]) < 1 for k in ("x", "y", "width", "height"))  # the svg covers it
    top = (CAPTION_BAR + 0.4) / (1 + CAPTION_BAR)  # 40% down the camera's picture, under the caption bar
    assert abs(outline["y"] - (picture["y"] + top * picture["height"])) < 3  # drawn where the zone is
    assert abs(outline["y"] + outline["height"] - picture["y"] - picture["height"]) < 3
    suite.SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(suite.SHOTS / "camera-zone-laptop.png"), full_page=True)
    page.set_viewport_size(suite.SIZES["phone"])
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the camera page is {overflow}px wider than a phone"
    page.screenshot(path=str(suite.SHOTS / "camera-zone-phone.png"), full_page=True)
    assert errors == [], errors  # no CSP violation
    context.close()
