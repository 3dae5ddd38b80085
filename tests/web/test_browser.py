"""The admin pages and the phone simulator in a real browser (Debian's Chromium, driven by Playwright).

The app runs as ``corb serve`` runs it: the Flask app on a loopback port plus the embedded cloud (local
bus, runtime and bucket watcher) in this process; the first admin is made by the real ``corb admin
create`` command. Pictures come the real way: video segments dropped in the bucket are analysed by the
detection function, recorded and alerted on by the bot's handlers.

Screenshots of every page, at laptop and phone sizes, go to ``test-artifacts/screenshots/``; with
``CORB_DOCS_SCREENSHOTS=1`` the dashboard and simulator ones are also copied to ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import func, select
from werkzeug.serving import make_server

from bot import replies
from bot.models import CleaningRequest, Detection, Message, Setting, User
from cloud.db import utcnow
from cloud.models import DeadLetter, Invocation

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
UPDATE_DOCS = bool(os.environ.get("CORB_DOCS_SCREENSHOTS"))  # read now: the live server clears CORB_*
CHROMIUM = os.environ.get("CORB_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SIZES = {"laptop": {"width": 1366, "height": 800}, "phone": {"width": 390, "height": 844}}
RESIDENT = "+15550000002"


@dataclass
class Live:
    url: str
    services: Any
    env: dict[str, str]

    def db(self) -> Any:
        return self.services.session()


def _placeholder(environ: dict, start_response: Callable) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Live]:
    """``corb serve`` in a thread: web app + local runtime + bucket watcher on a free loopback port."""
    from bot import create_app
    from bot.services import Services, use_services
    from cloud.config import load_config
    from cloud.runtime import start_embedded

    root = tmp_path_factory.mktemp("live")
    database = root / "corb.db"
    database.write_bytes(sqlite_template.read_bytes())
    # Bound first (port 0: no race for a free port), the app set once the port is known for base_url.
    server = make_server("127.0.0.1", 0, _placeholder, threaded=True)
    env = {"CORB_DATA_DIR": str(root / "data"), "DATABASE_URL": f"sqlite:///{database}",
           "CORB_PORT": str(server.server_port), "TWILIO_AUTH_TOKEN": "browser-test-auth-token",
           "CORB_SECRET_KEY": "browser-test-secret"}
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith(("CORB_", "TWILIO_")) or var == "DATABASE_URL":
                mp.delenv(var)
        for key, value in env.items():
            mp.setenv(key, value)
        svc = Services(load_config())
        previous = use_services(svc)
        server.app = create_app(svc)
        embedded = start_embedded(svc.config, sessions=svc.sessions, bucket=svc.bucket, backoff_base=0.2,
                                  poll_interval=0.1)
        thread = threading.Thread(target=server.serve_forever, name="corb-web", daemon=True)
        thread.start()
        try:
            yield Live(url=svc.config.base_url, services=svc, env=env)
        finally:
            server.shutdown()
            embedded.stop(10)
            use_services(previous)
            svc.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run .ci/install-browser.sh"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def admin_password(live: Live) -> str:
    """The first admin, made by the real command; its password is printed once, on the last line."""
    corb = Path(sys.executable).with_name("corb")
    result = subprocess.run([str(corb), "admin", "create", "ada"], env={**os.environ, **live.env},
                            capture_output=True, text=True, timeout=60, check=True)
    assert "shown once" in result.stdout
    password = result.stdout.strip().splitlines()[-1]
    assert len(password) >= 16
    return password


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sign_in(page: Page, live: Live, password: str) -> None:
    page.goto(live.url + "/admin/login")
    page.fill("#username", "ada")
    page.fill("#password", password)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Dashboard")


def csp_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def ingest(live: Live, clip: str, ago: timedelta, camera: str = "lobby") -> str:
    """A camera uploads a segment: the watcher notices, the detection function analyses it."""
    start = utcnow() - ago
    key = f"cameras/{camera}/{start:%Y-%m-%dT%H-%M-%S}Z.mkv"
    live.services.bucket.upload(DATA / clip, key)
    return key


def natural_width(page: Page, selector: str) -> int:
    return page.locator(selector).evaluate("img => img.complete ? img.naturalWidth : 0")


def test_admin_journey(live: Live, browser: Browser, admin_password: str) -> None:
    context = browser.new_context(viewport=SIZES["laptop"])
    page = context.new_page()
    errors = csp_errors(page)

    # Anonymous: sent to the login page. A wrong password is refused, the right one lets in.
    page.goto(live.url + "/admin/people")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=(/|%2F)admin(/|%2F)people$"))
    page.fill("#username", "ada")
    page.fill("#password", "not-the-password")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".flash.error")).to_have_text("Wrong username or password.")
    page.fill("#password", admin_password)
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("People")  # back where they were going
    errors.clear()  # the refused password's 401 page was logged as a failed load; that was intended

    # A camera, then a person subscribed to it.
    page.click("nav >> text=Cameras")
    page.click("text=Add camera")
    page.fill("#slug", "lobby")
    page.fill("#name", "Lobby")
    page.fill("#area", "Ground floor")
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.success")).to_have_text("Saved camera Lobby.")
    page.click("text=Add camera")
    page.fill("#slug", "back-door")
    page.fill("#name", "Back door")
    page.fill("#area", "Courtyard")
    page.click("button:has-text('Save')")
    expect(page.locator("tr", has_text="Back door")).to_contain_text("Courtyard")

    page.click("nav >> text=People")
    page.click("text=Add person")
    page.fill("#name", "Max Member")
    page.fill("#phone", "+1 555 000-0002")  # typed as people type it, stored as E.164
    page.select_option("#role", "member")
    page.get_by_label("Lobby", exact=True).check()
    page.click("button:has-text('Save')")
    expect(page.locator(".flash.success")).to_have_text("Saved Max Member.")
    row = page.locator("tr", has_text="Max Member")
    expect(row).to_contain_text(RESIDENT)
    expect(row.locator(".badge", has_text="Lobby")).to_be_visible()
    page.click("text=Add person")
    page.fill("#name", "Cleo Cleaner")
    page.fill("#phone", "+15550000003")
    page.select_option("#role", "cleaner")
    page.get_by_label("All cameras", exact=True).check()
    page.click("button:has-text('Save')")
    cleo = page.locator("tr", has_text="Cleo Cleaner")
    expect(cleo.locator(".badge", has_text="All cameras")).to_be_visible()
    with live.db() as db:
        subscriptions = {u.name: [s.camera.slug if s.camera else "all" for s in u.subscriptions]
                         for u in db.scalars(select(User))}
        assert subscriptions == {"Max Member": ["lobby"], "Cleo Cleaner": ["all"]}

    # Segments arrive in the bucket: earlier ones, an empty scene, and one from two minutes ago. One at a
    # time: the detection function's LiteRT interpreter is not safe for concurrent invocations.
    segments = [("vtest-clip.mkv", timedelta(hours=5), "lobby"),
                ("empty-scene.mkv", timedelta(hours=2), "lobby"),
                ("empty-scene.mkv", timedelta(minutes=25), "back-door"),
                ("vtest-clip.mkv", timedelta(minutes=2), "lobby")]
    for n, (clip, ago, camera) in enumerate(segments, start=1):
        ingest(live, clip, ago, camera)
        wait_for(f"segment {n} analysed", lambda n=n: _count(live, Detection) == n, timeout=60)
    wait_for("the alert MMS", lambda: _count(live, Message, Message.to_number == RESIDENT,
                                             Message.media_key.is_not(None)) >= 1)

    # The dashboard: the annotated snapshot, people now, the 24 h plot, the alert to the subscriber.
    page.click("nav >> text=Dashboard")
    expect(page.locator(".camera-card")).to_have_count(2)
    card = page.locator(".camera-card", has_text="Lobby")
    expect(card.locator(".snapshot img")).to_be_visible()
    wait_for("the snapshot to load", lambda: natural_width(page, "[data-camera=lobby] .snapshot img") > 0, 15)
    expect(card.locator("svg.plot path.line")).to_have_count(1)
    expect(card.locator("svg.plot circle.point")).to_have_count(3)
    alerts = page.locator("section", has_text="Recent alerts")
    expect(alerts.locator("tr", has_text="Max Member")).to_be_visible()
    # The back door's only video is 25 minutes old: its count is not "now", and the card says so.
    back_door = page.locator("[data-camera=back-door]")
    expect(back_door.locator(".badge.stale")).to_have_text(re.compile(r"no video since 2\d min"))
    expect(back_door).to_contain_text("People at ")
    expect(back_door).not_to_contain_text("0 now")

    # The simulator: a snapshot by MMS through the real webhook and handlers, shown without a reload.
    page.click("nav >> text=Simulator")
    page.select_option("#phone-select", RESIDENT)
    expect(page.locator("#chat")).to_have_attribute("data-phone", RESIDENT)
    page.fill("#body", "help")
    page.click("#composer button")
    expect(page.locator(".bubble.mine").last).to_contain_text("help")
    expect(page.locator(".bubble.theirs").last).to_contain_text(replies.HELP, timeout=15_000)

    page.fill("#body", "request cleaning lobby spilled coffee")
    page.press("#body", "Enter")
    wait_for("the cleaning request",
             lambda: _count(live, CleaningRequest, CleaningRequest.note.contains("coffee")))
    expect(page.locator(".bubble").last).to_have_class(re.compile("theirs"), timeout=15_000)  # an answer

    page.fill("#body", "snapshot lobby")
    page.press("#body", "Enter")
    expect(page.locator(".bubble.mine").last).to_contain_text("snapshot lobby")
    picture = page.locator(".bubble.theirs").last.locator("img")
    expect(picture).to_be_visible(timeout=30_000)
    wait_for("the MMS picture to load", lambda: natural_width(page, ".bubble.theirs img >> nth=-1") > 0, 15)
    assert "/media/" in (picture.get_attribute("src") or "")  # a signed, expiring link, as a phone gets

    # Cleaning: the request and its report; close it.
    page.click("nav >> text=Cleaning")
    open_row = page.locator("tr", has_text="spilled coffee")
    expect(open_row).to_be_visible()
    open_row.locator("button:has-text('Mark done')").click()
    expect(page.locator(".flash.success")).to_contain_text("Closed request")
    with live.db() as db:
        assert db.scalars(select(CleaningRequest.status)).all() == ["done"]

    # A corrupt upload fails the detection function every retry: a dead letter, which we replay.
    ingest_key = f"cameras/lobby/{utcnow():%Y-%m-%dT%H-%M-%S}Z.mkv"
    live.services.bucket.put(ingest_key, b"this is not a video")
    letter_id = wait_for("the dead letter", lambda: _first_id(live, DeadLetter), timeout=60)
    page.click("nav >> text=Events")
    letter_row = page.locator("tr", has_text="detection.handler.handle").first
    expect(letter_row).to_be_visible()
    letter_row.locator("button:has-text('Replay')").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Replayed dead letter #{letter_id}")
    with live.db() as db:
        assert db.get(DeadLetter, letter_id).replayed_at is not None
        replayed = db.scalars(select(Invocation).where(Invocation.trigger == "replay")).one()
        assert replayed.function == "detection.handler.handle"

    # Settings: saved and read back.
    page.click("nav >> text=Settings")
    page.fill("#alert_cooldown_s", "900")
    page.fill("#retention_days", "14")
    page.fill("#camera_grace_s", "300")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".flash.success")).to_have_text("Settings saved.")
    page.reload()
    expect(page.locator("#alert_cooldown_s")).to_have_value("900")
    expect(page.locator("#retention_days")).to_have_value("14")
    expect(page.locator("#camera_grace_s")).to_have_value("300")
    with live.db() as db:
        assert dict(db.execute(select(Setting.key, Setting.value)).all()) == {
            "alert_cooldown_s": "900", "retention_days": "14", "camera_grace_s": "300"}

    # Signing out ends access: every page goes back to the login, showing no data.
    page.click("button:has-text('Sign out')")
    expect(page.locator(".flash.info")).to_have_text("You are signed out.")
    for path in ("/admin/", "/admin/people", "/simulator"):
        page.goto(live.url + path)
        expect(page.locator("h1")).to_have_text("Sign in")
        assert "Max Member" not in page.content()

    assert errors == [], errors  # no CSP violation, no script error on any page
    context.close()


def _count(live: Live, model: Any, *where: Any) -> int:
    with live.db() as db:
        return db.scalar(select(func.count()).select_from(model).where(*where))


def _first_id(live: Live, model: Any) -> int | None:
    with live.db() as db:
        return db.scalar(select(model.id).order_by(model.id).limit(1))


PAGES = [("dashboard", "/admin/"), ("people", "/admin/people"), ("person", "/admin/people/new"),
         ("cameras", "/admin/cameras"), ("cleaning", "/admin/cleaning"), ("messages", "/admin/messages"),
         ("events", "/admin/events"), ("settings", "/admin/settings"),
         ("simulator", "/simulator?phone=" + RESIDENT.replace("+", "%2B"))]
DOCS_PAGES = ("dashboard", "simulator")
# Lazy images below the fold would never load for a full-page picture: load them all, wait at most 10 s.
LOAD_IMAGES = """() => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  const loaded = Promise.all(images.map(img => img.decode().catch(() => null)));
  return Promise.race([loaded, new Promise(done => setTimeout(done, 10000))]);
}"""


def test_screenshots_of_every_page(live: Live, browser: Browser, admin_password: str) -> None:
    """Every page at laptop and phone size, nothing wider than the screen, saved for people to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        errors = csp_errors(page)
        page.goto(live.url + "/admin/login")
        page.screenshot(path=str(SHOTS / f"login-{size}.png"))
        sign_in(page, live, admin_password)
        for name, path in PAGES:
            page.goto(live.url + path)
            page.wait_for_load_state("networkidle")
            page.evaluate(LOAD_IMAGES)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow}px wider than a {size} screen"
            page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
        assert errors == [], errors
        if size == "laptop" and UPDATE_DOCS:
            docs_pictures(browser, live, context.storage_state())
        context.close()
    assert {p.name for p in SHOTS.glob("*.png")} >= {f"{n}-{s}.png" for n, _ in PAGES for s in SIZES}


def docs_pictures(browser: Browser, live: Live, state: Any) -> None:
    """The README's pictures: the laptop view, rendered at 0.8 scale to stay small (< 300 KB)."""
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=SIZES["laptop"], device_scale_factor=0.8, storage_state=state)
    page = context.new_page()
    for name, path in PAGES:
        if name in DOCS_PAGES:
            page.goto(live.url + path)
            page.wait_for_load_state("networkidle")
            page.evaluate(LOAD_IMAGES)
            target = DOCS_SHOTS / f"{name}.png"
            page.screenshot(path=str(target))
            assert target.stat().st_size < 300_000, f"{target} is too big for the README"
    context.close()


def test_signed_out_browser_is_refused(live: Live, browser: Browser, admin_password: str) -> None:
    context = browser.new_context(viewport=SIZES["phone"])
    page = context.new_page()
    sign_in(page, live, admin_password)
    page.click("button:has-text('Sign out')")
    response = page.request.get(live.url + "/simulator/messages.json?phone=" + RESIDENT.replace("+", "%2B"))
    assert response.status == 401 and response.json() == {"status": 401, "message": "login required"}
    response = page.request.get(live.url + "/admin/events", max_redirects=0)
    assert response.status == 302 and response.headers["location"].startswith("/admin/login")
    context.close()


def test_a_message_typed_while_one_is_sending_is_kept_and_sent(live: Live, browser: Browser,
                                                               admin_password: str) -> None:
    context = browser.new_context(viewport=SIZES["phone"])
    page = context.new_page()
    sign_in(page, live, admin_password)
    page.goto(live.url + "/simulator?phone=" + RESIDENT.replace("+", "%2B"))
    held: list[Any] = []
    page.route("**/simulator/send", lambda route: held.append(route))  # the first send stays in flight
    page.fill("#body", "cameras")
    page.press("#body", "Enter")
    wait_for("the send to start", lambda: held or page.evaluate("() => 0"), 10)
    page.fill("#body", "status lobby")  # typed while "cameras" is on its way
    held[0].continue_()
    page.unroute("**/simulator/send")
    # Delivered: it comes back in the chat ("Delivered to Corb" shows only until the next poll brings it).
    expect(page.locator(".bubble.mine").last).to_contain_text("cameras")
    expect(page.locator("#chat-status")).not_to_contain_text("Not sent")
    expect(page.locator("#body")).to_have_value("status lobby")  # not wiped by the first send's success
    page.press("#body", "Enter")
    expect(page.locator(".bubble.mine").last).to_contain_text("status lobby")
    expect(page.locator("#body")).to_have_value("")
    context.close()


def test_phone_pages_stay_short_show_who_is_signed_in_and_never_crop_pictures(
        live: Live, browser: Browser, admin_password: str) -> None:
    with live.db() as db:
        db.add_all([Message(direction="out", sid=f"SMphone{i}", from_number="corb", to_number=RESIDENT,
                            body=f"Lobby: {i} people now (10:00 UTC). Peak today {i}.", status="sent")
                    for i in range(60)])
    context = browser.new_context(viewport=SIZES["phone"])
    page = context.new_page()
    sign_in(page, live, admin_password)
    expect(page.locator(".who .name")).to_be_visible()
    expect(page.locator(".who .name")).to_have_text("ada")
    for path in ("/admin/messages", "/admin/events"):
        page.goto(live.url + path)
        rows = page.locator("table.compact tbody tr")
        count = rows.count()
        assert count <= 50
        heights = rows.evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
        # One line of facts and a line or two of text: not the 7-line card per row it was.
        assert sum(heights) / len(heights) < 110, (path, sorted(heights)[-5:])
    # Pictures are scaled, never cropped: the caption bar along the top edge stays whole.
    for path, selector in (("/admin/", ".snapshot img"), ("/admin/", "img.thumb"),
                           ("/simulator?phone=" + RESIDENT.replace("+", "%2B"), ".bubble img")):
        page.goto(live.url + path)
        page.evaluate(LOAD_IMAGES)
        img = page.locator(selector).first
        fit, radius = img.evaluate(
            "i => [getComputedStyle(i).objectFit, parseFloat(getComputedStyle(i).borderTopLeftRadius)]")
        assert fit in ("contain", "fill") and radius <= 4, (path, fit, radius)
        box = img.evaluate("i => [i.clientWidth, i.clientHeight, i.naturalWidth, i.naturalHeight]")
        if fit == "fill":  # the box has the picture's own shape
            assert abs(box[0] / box[1] - box[2] / box[3]) < 0.02, (path, box)
    context.close()
