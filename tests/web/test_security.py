"""The web app's defences: login on every admin route, CSRF, login throttling, headers, cookies, pictures."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot.admin.auth import LoginThrottle, hash_password, verify_password
from bot.models import AdminAccount, Setting, User
from tests.web.conftest import (
    ADMIN_USER,
    RESIDENT,
    RESIDENT_NAME,
    SNAPSHOT_KEY,
    csrf_token,
    login,
    page_token,
)

# Routes anyone may load: the login form, the API's description, static files, Twilio's signed
# webhooks and the signed media links (each checks its own signature).
PUBLIC = {"admin.login", "api.openapi", "static", "webhook.inbound", "webhook.status_callback", "media.media",
          "home.home"}  # home: only a redirect to the admin pages, which check for themselves
DUMMY_ARGS = {"int": "1", "path": "cameras/lobby/x.jpg", "default": "lobby"}


def concrete(rule: Any) -> str:
    """The rule's URL with a plausible value for each argument."""
    def fill(match: re.Match) -> str:
        converter = match.group(1) or "default"
        return DUMMY_ARGS.get(converter, DUMMY_ARGS["default"])

    return re.sub(r"<(?:(\w+):)?\w+>", fill, rule.rule)


def test_every_route_but_the_public_ones_refuses_anonymous_users(app: Flask, client: FlaskClient,
                                                                 building: dict) -> None:
    # A CSRF token from the login page, so that POSTs are refused for being anonymous, not for the token.
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        url = concrete(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method == "POST" else None
            response = client.open(url, method=method, data=data)
            body = response.get_data(as_text=True)
            if rule.rule.startswith("/api/"):
                assert response.status_code == 401, (method, url)
                assert response.json["status"] == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            elif url.endswith(".json"):
                assert response.status_code == 401
                assert response.json == {"status": 401, "message": "login required"}
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.headers["Location"].startswith("/admin/login?next=")
            assert RESIDENT_NAME not in body and RESIDENT not in body and "Lobby" not in body, (method, url)
            checked.append((method, rule.endpoint))
    endpoints = {e for _, e in checked}
    assert {"admin.dashboard", "admin.people", "admin.person", "admin.delete_person", "admin.media",
            "admin.replay_dead_letter", "admin.settings", "admin.logout", "simulator.page", "simulator.send",
            "simulator.messages_json", "api.cameras", "api.latest_snapshot", "api.detections", "api.events",
            "api.cleaning_requests"} <= endpoints
    assert len(checked) >= 30
    with app.config["CORB_SERVICES"].session() as db:  # and those POSTs changed nothing
        assert db.scalar(select(func.count(User.id))) == 1


def test_post_without_csrf_token_is_refused_and_changes_nothing(admin_client: FlaskClient, services: Any,
                                                               building: dict) -> None:
    response = admin_client.post("/admin/settings", data={"alert_cooldown_s": "5", "retention_days": "2"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    response = admin_client.post("/admin/people/new", data={"name": "Eve", "phone": "+15550009999",
                                                            "role": "admin"})
    assert response.status_code == 400
    response = admin_client.post(f"/admin/people/{building['user_id']}/delete", data={"csrf_token": "forged"})
    assert response.status_code == 400
    with services.session() as db:
        assert db.scalar(select(func.count(Setting.key))) == 0
        assert db.scalars(select(User.name)).all() == [RESIDENT_NAME]


def test_csrf_does_not_apply_to_twilio_webhooks_or_the_api(client: FlaskClient, services: Any,
                                                           building: dict, api_token: str) -> None:
    params = {"MessageSid": "SM" + "1" * 32, "From": RESIDENT, "To": "+15005550006", "Body": "help"}
    url = services.config.base_url + "/sms"
    signature = RequestValidator(services.config.twilio_auth_token).compute_signature(url, params)
    response = client.post("/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200 and "<Message>" in response.get_data(as_text=True)
    response = client.get("/api/cameras", headers={"Authorization": f"Bearer {api_token}"})
    assert response.status_code == 200


def test_sixth_wrong_password_within_a_minute_is_refused_even_when_right(client: FlaskClient,
                                                                          admin_password: str) -> None:
    for _ in range(5):
        assert login(client, "wrong-password").status_code == 401
    response = login(client, admin_password)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many wrong passwords" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302  # still not signed in
    # Another address is not punished for this one's guesses.
    response = login(client, admin_password, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"


def test_login_throttle_forgets_after_the_window(services: Any) -> None:
    throttle = LoginThrottle(services.engine, max_attempts=5)
    t0 = datetime(2026, 11, 30, 12, 0, 0)
    assert [throttle.claim("192.0.2.1", now=t0 + timedelta(seconds=s)) for s in range(5)] == [0] * 5
    assert throttle.claim("192.0.2.1", now=t0 + timedelta(seconds=5)) == 55  # the window began at t0
    assert throttle.claim("198.51.100.2", now=t0 + timedelta(seconds=5)) == 0  # per address
    assert throttle.claim("192.0.2.1", now=t0 + timedelta(seconds=60)) == 0  # a new window
    for _ in range(5):
        throttle.claim("192.0.2.1", now=t0 + timedelta(seconds=61))
    throttle.succeeded("192.0.2.1", now=t0 + timedelta(seconds=62))  # a right password clears the count
    assert throttle.claim("192.0.2.1", now=t0 + timedelta(seconds=62)) == 0


def test_passwords_are_argon2id_hashes(services: Any, admin_password: str) -> None:
    with services.session() as db:
        stored = db.scalars(select(AdminAccount.password_hash)).one()
    assert stored.startswith("$argon2id$") and admin_password not in stored
    assert verify_password(stored, admin_password)
    assert not verify_password(stored, admin_password + "x")
    assert not verify_password(None, admin_password)
    assert hash_password(admin_password) != stored  # salted


@pytest.mark.parametrize("path", ["/admin/login", "/admin/", "/api/openapi.json", "/api/cameras", "/sms",
                                  "/static/corb.css", "/no/such/page"])
def test_security_headers_on_every_response(admin_client: FlaskClient, path: str) -> None:
    response = admin_client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # served over plain http here


def test_pages_load_no_inline_script(admin_client: FlaskClient, building: dict) -> None:
    for path in ("/admin/", "/admin/people", "/admin/events", "/simulator", "/admin/settings"):
        html = admin_client.get(path).get_data(as_text=True)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts), path
        assert not re.search(r"\son[a-z]+=", html), path  # no inline event handlers either
        assert "style=" not in html, path


def test_session_cookie_is_signed_httponly_and_lax(client: FlaskClient, admin_password: str) -> None:
    response = login(client, admin_password)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("corb_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    client.set_cookie("corb_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/admin/").status_code == 302  # a tampered cookie is nobody


def test_https_base_url_makes_cookies_secure_and_sends_hsts(services: Any, admin_password: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import create_app
    from bot.services import Services
    from cloud.config import load_config

    monkeypatch.setenv("CORB_PUBLIC_URL", "https://corb.example.org")
    app = create_app(Services(load_config()))
    client = app.test_client()
    page = client.get("/admin/login", base_url="https://corb.example.org")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    token = csrf_token(page.get_data(as_text=True))
    response = client.post("/admin/login", base_url="https://corb.example.org",
                           headers={"Referer": "https://corb.example.org/admin/login"},
                           data={"csrf_token": token, "username": ADMIN_USER, "password": admin_password})
    assert response.status_code == 302
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("corb_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_sign_out_ends_access(admin_client: FlaskClient) -> None:
    assert admin_client.get("/admin/people").status_code == 200
    response = admin_client.post("/admin/logout", data={"csrf_token": page_token(admin_client)})
    assert response.status_code == 302
    assert admin_client.get("/admin/people").status_code == 302
    assert admin_client.get("/simulator/messages.json").status_code == 401


def test_a_new_password_ends_older_sessions(admin_client: FlaskClient, services: Any) -> None:
    with services.session() as db:
        db.scalars(select(AdminAccount)).one().password_hash = hash_password("a brand new password")
    assert admin_client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target, expected", [
    ("/admin/people", "/admin/people"), ("//evil.example/x", "/admin/"), ("https://evil.example/", "/admin/"),
    ("/\\evil.example", "/admin/")])
def test_login_redirects_only_within_the_site(client: FlaskClient, admin_password: str, target: str,
                                              expected: str) -> None:
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    response = client.post("/admin/login", data={"csrf_token": token, "username": ADMIN_USER,
                                                 "password": admin_password, "next": target})
    assert response.headers["Location"] == expected


def test_snapshot_needs_a_login_or_a_signature(client: FlaskClient, services: Any, building: dict,
                                               admin_password: str) -> None:
    picture = building["snapshot"]
    # Anonymous: the admin route, the API without a token, a forged or expired link: no picture.
    assert client.get(f"/admin/media/{SNAPSHOT_KEY}").status_code == 302
    assert client.get("/api/cameras/lobby/latest.jpg").status_code == 401
    assert client.get(f"/media/{SNAPSHOT_KEY}").status_code in (403, 404)
    forged = services.bucket.presigned_url(SNAPSHOT_KEY).rsplit("/", 1)[1][:-3] + "xyz"
    assert client.get(f"/media/{forged}").status_code == 403
    expired = services.bucket.presigned_url(SNAPSHOT_KEY, expires_in=-5)
    assert client.get(expired.replace(services.config.base_url, "")).status_code == 403
    # A signed, unexpired link works (that is how the MMS carries it), and so does a signed-in admin.
    signed = services.bucket.presigned_url(SNAPSHOT_KEY)
    response = client.get(signed.replace(services.config.base_url, ""))
    assert response.status_code == 200 and response.data == picture
    login(client, admin_password)
    response = client.get(f"/admin/media/{SNAPSHOT_KEY}")
    assert response.status_code == 200 and response.data == picture and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"] == "private, max-age=300"
    # Even signed in, only pictures the database refers to (not arbitrary bucket objects).
    services.bucket.put("cameras/lobby/raw.mkv", b"video")
    assert client.get("/admin/media/cameras/lobby/raw.mkv").status_code == 404
