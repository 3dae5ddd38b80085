"""Access attacks that held when Corb was attacked, kept so they stay held: anonymous requests with every
method to every route, CSRF on every form, API token misuse, and tampered media links."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select

from bot.admin.auth import hash_api_token
from bot.models import ApiToken, Camera, Setting, User
from tests.web.conftest import RESIDENT, RESIDENT_NAME, SNAPSHOT_KEY, csrf_token
from tests.web.test_security import PUBLIC, concrete

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no query of theirs differs
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def private_data_in(body: str) -> bool:
    return RESIDENT_NAME in body or RESIDENT in body or "ground floor" in body


@SQLITE_ONLY
def test_anonymous_requests_with_any_method_reach_nothing(app: Flask, client: FlaskClient,
                                                          building: dict) -> None:
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    tried = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in METHODS:
            for url in (concrete(rule), concrete(rule) + "?admin=1&next=/admin/", concrete(rule) + "/"):
                response = client.open(url, method=method, data={"csrf_token": token})
                code = response.status_code
                assert code in (302, 308, 400, 401, 404, 405), (method, url, code)
                if code == 308:  # Werkzeug's own slash redirects, to this site
                    assert response.headers["Location"].startswith(("/", "http://localhost/")), url
                assert not private_data_in(response.get_data(as_text=True)), (method, url)
                tried += 1
    assert tried >= 300  # 25 routes x 5 methods x 3 forms of the URL
    with app.config["CORB_SERVICES"].sessions() as db:
        assert db.scalar(select(func.count(User.id))) == 1 and db.scalar(select(func.count(Setting.key))) == 0


@SQLITE_ONLY
def test_every_admin_form_refuses_a_missing_or_foreign_csrf_token(app: Flask, admin_client: FlaskClient,
                                                                  services: Any, building: dict) -> None:
    other = app.test_client()  # another browser's session: its token must not work in this one
    foreign = csrf_token(other.get("/admin/login").get_data(as_text=True))
    posts = [r for r in app.url_map.iter_rules()
             if "POST" in r.methods and r.rule.startswith(("/admin", "/simulator"))
             and r.endpoint != "admin.login"]
    assert len(posts) >= 9
    for rule in posts:
        url = concrete(rule).replace("/1", f"/{building['user_id']}")
        for data in ({}, {"csrf_token": foreign}, {"csrf_token": "x" * 90}):
            data |= {"name": "Eve", "phone": "+15550009999", "role": "admin", "slug": "evil", "body": "hi",
                     "alert_cooldown_s": "5", "retention_days": "1"}
            response = admin_client.post(url, data=data)
            assert response.status_code == 400, (url, data.get("csrf_token"), response.status_code)
    with services.sessions() as db:
        assert db.scalars(select(User.name)).all() == [RESIDENT_NAME]
        assert db.scalar(select(func.count(Setting.key))) == 0
        assert "evil" not in db.scalars(select(Camera.slug)).all()
    assert admin_client.get("/admin/people").status_code == 200  # and the admin is still signed in


def test_api_tokens_only_as_a_bearer_header_and_only_while_they_exist(app: Flask, services: Any,
                                                                       building: dict, api_token: str,
                                                                       admin_client: FlaskClient) -> None:
    client = app.test_client()  # no cookie: ``admin_client`` is the signed-in one
    def api(headers: dict[str, str] | None = None, query: str = "", c: FlaskClient = client) -> int:
        return c.get("/api/cameras" + query, headers=headers or {}).status_code

    assert api({"Authorization": f"Bearer {api_token}"}) == 200
    misuses = [{"Authorization": api_token}, {"Authorization": f"Basic {api_token}"},
               {"Authorization": f"Bearer {api_token}x"}, {"Authorization": f"Bearer {api_token[:-1]}"},
               {"Authorization": f"Bearer {hash_api_token(api_token)}"}, {"Authorization": "Bearer "},
               {"Authorization": f"Token {api_token}"}, {"X-Api-Token": api_token}]
    for headers in misuses:
        assert api(headers) in (400, 401), headers
    assert api(query=f"?access_token={api_token}") in (400, 401)  # never from a URL (logs, referrers)
    assert api(c=admin_client) == 401  # the admin's cookie is no API credential (so no CSRF either)
    assert client.get("/admin/people", headers={"Authorization": f"Bearer {api_token}"}).status_code == 302
    with services.session() as db:
        db.execute(delete(ApiToken))
    assert api({"Authorization": f"Bearer {api_token}"}) == 401  # revoked is revoked at once


@SQLITE_ONLY
def test_tampered_media_links_are_refused(client: FlaskClient, services: Any, building: dict) -> None:
    bucket = services.bucket
    link = bucket.presigned_url(SNAPSHOT_KEY).replace(services.config.base_url, "")
    token = link.rsplit("/", 1)[1]
    assert client.get(link).status_code == 200
    for i in range(0, len(token), 3):  # one character changed anywhere
        flipped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        assert client.get(f"/media/{flipped}").status_code in (403, 404), i
    head, _, signature = token.rpartition(".")
    other = bucket.presigned_url("snapshots/lobby/other.jpg").rsplit("/", 1)[1]
    spliced = other.rpartition(".")[0] + "." + signature  # another link's body with this signature
    for bad in (spliced, token + "x", token[:-1], head, "..%2F..%2Fcorb.db", "%2e%2e/%2e%2e/corb.db",
                "../../corb.db", "x" * 5000, ""):
        assert client.get(f"/media/{bad}").status_code in (403, 404), bad[:40]
    # A session cookie is signed with the same secret, but for another purpose: no picture for it.
    with client.session_transaction() as session:
        session["k"] = SNAPSHOT_KEY
    cookie = client.get_cookie("corb_session")
    assert cookie is not None and client.get(f"/media/{cookie.value}").status_code in (403, 404)
