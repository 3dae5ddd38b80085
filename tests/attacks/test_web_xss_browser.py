"""Stored XSS: script-shaped payloads arrive the ways an outsider can put text into Corb (an SMS body, a
sender "number", a cleaning note) and the ways an admin can (person, camera and area names), then every
page that shows them is opened in Chromium. Nothing may run: no marker set, no dialog, no CSP violation
(which would mean markup got through and only the policy stopped it), and the text shows as text."""

from __future__ import annotations

import urllib.request
from urllib.parse import urlencode

from playwright.sync_api import Browser, Page
from sqlalchemy import func, select

from bot.models import Camera, CleaningRequest, User
from tests.attacks.conftest import twilio_form
from tests.bot.conftest import sign
from tests.web import test_browser as suite
from tests.web.test_browser import Live, sign_in, wait_for

# The browser suite's module-scoped fixtures, instantiated again for this module: its own server and data.
live, browser, admin_password = suite.live, suite.browser, suite.admin_password

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload="window.__xss=1">',
    "';window.__xss=1;//",
    "javascript:window.__xss=1",
    "</textarea><iframe srcdoc='<script>parent.__xss=1</script>'>",
]
SENDER = "+15550000042"
TRAP = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => window.__violations.push(e.violatedDirective));
"""


def text(live: Live, sender: str, body: str) -> int:
    form = twilio_form(sender, body)
    signature = sign(live.url + "/sms", form, token=live.env["TWILIO_AUTH_TOKEN"])
    request = urllib.request.Request(live.url + "/sms", data=urlencode(form).encode(),
                                     headers={"X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def clean(page: Page, path: str) -> None:
    assert page.evaluate("window.__xss") is None, f"a payload ran on {path}"
    assert page.evaluate("window.__violations") == [], f"markup got through on {path} (only the CSP held)"
    assert page.locator("img[src='x'], svg[onload], iframe[srcdoc]").count() == 0, path


def test_payloads_from_texts_and_names_render_as_text_everywhere(live: Live, browser: Browser,
                                                                 admin_password: str) -> None:
    with live.db() as s:
        users = [User(phone=f"{SENDER[:-1]}{i}", name=p[:120]) for i, p in enumerate(PAYLOADS)]
        cameras = [Camera(slug=f"xss-{i}", name=p[:120], area=p[:120]) for i, p in enumerate(PAYLOADS)]
        s.add_all([*users, *cameras])
        s.flush()
        user_ids, camera_ids = [u.id for u in users], [c.id for c in cameras]
    for i, payload in enumerate(PAYLOADS):
        assert text(live, users[i].phone, payload) == 200
        assert text(live, users[i].phone, f"request cleaning kitchen {payload}") == 200
    assert text(live, "<svg/onload=window.__xss=1>", "hi") == 200  # a "number" no carrier would send
    wait_for("the cleaning requests", lambda: _open_requests(live) >= len(PAYLOADS))

    pages = ["/admin/", "/admin/people", "/admin/cameras", "/admin/messages", "/admin/cleaning",
             "/admin/events", "/admin/settings", "/simulator",
             *(f"/admin/people/{i}" for i in user_ids), *(f"/admin/cameras/{i}" for i in camera_ids)]
    context = browser.new_context()
    context.add_init_script(TRAP)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live, admin_password)
    for path in pages:
        page.goto(live.url + path)
        page.wait_for_load_state("networkidle")
        clean(page, path)
    page.goto(live.url + "/admin/messages")
    shown = page.locator("body").inner_text()
    assert all(p in shown for p in PAYLOADS[:3]), "the payloads are shown, as text"
    assert dialogs == []
    context.close()


def _open_requests(live: Live) -> int:
    with live.db() as s:
        return s.scalar(select(func.count()).select_from(CleaningRequest))


