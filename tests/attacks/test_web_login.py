"""Attacks on the admin login: parallel password guessing, a session cookie kept after sign-out, and
``next`` values that would send the browser elsewhere or split the response's headers."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bot.models import AdminSession
from cloud.db import utcnow
from tests.web.conftest import ADMIN_USER, csrf_token, page_token


def test_forty_parallel_wrong_passwords_get_five_checked(app: Flask, admin_password: str) -> None:
    clients = [app.test_client() for _ in range(40)]
    tokens = [csrf_token(c.get("/admin/login").get_data(as_text=True)) for c in clients]
    start = threading.Barrier(len(clients))
    codes: list[int] = []

    def guess(client: FlaskClient, token: str) -> None:
        start.wait()
        response = client.post("/admin/login", data={"csrf_token": token, "username": ADMIN_USER,
                                                     "password": "guess"})
        codes.append(response.status_code)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(clients, tokens, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(codes) == [401] * 5 + [429] * 35  # 5 passwords checked, the rest refused unchecked
    right = clients[0].post("/admin/login", data={"csrf_token": tokens[0], "username": ADMIN_USER,
                                                  "password": admin_password})
    assert right.status_code == 429  # still inside the window: even the right password waits


def test_a_session_cookie_copied_before_sign_out_is_dead_after_it(app: Flask, admin_client: FlaskClient,
                                                                  services: Any) -> None:
    cookie = admin_client.get_cookie("corb_session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("corb_session", cookie.value)
    assert thief.get("/admin/people").status_code == 200  # a copy works while the session lives
    admin_client.post("/admin/logout", data={"csrf_token": page_token(admin_client)})
    assert thief.get("/admin/people").status_code == 302
    assert thief.get("/simulator/messages.json").status_code == 401
    with services.sessions() as s:
        assert s.scalars(select(AdminSession)).all() == []  # revoked on the server, not just forgotten


def test_a_session_ends_on_the_server_after_its_lifetime(admin_client: FlaskClient, services: Any) -> None:
    assert admin_client.get("/admin/people").status_code == 200
    with services.session() as s:  # the signed cookie would still be accepted by Flask
        s.execute(update(AdminSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert admin_client.get("/admin/people").status_code == 302


OFF_SITE = ["/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\\evil.example",
            "/\\\\evil.example", "//evil.example", "///evil.example", "https://evil.example/",
            "http:evil.example", "/ /evil.example", "\t//evil.example", "/admin\r\nSet-Cookie: stolen=1",
            "/admin\r\n\r\n<script>alert(1)</script>", "/admin/\x00", "/" + "a" * 5000]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the database plays no part here
def test_login_never_redirects_off_site_or_splits_headers(app: Flask, admin_password: str) -> None:
    for target in OFF_SITE:
        client = app.test_client()
        page = client.get("/admin/login", query_string={"next": target}).get_data(as_text=True)
        response = client.post("/admin/login", data={"csrf_token": csrf_token(page), "username": ADMIN_USER,
                                                     "password": admin_password, "next": target})
        assert response.status_code == 302, target  # signed in; a CR/LF here was a 500 after the login
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), (target, location)
        assert not any(c in location for c in "\t\r\n\\\x00 "), (target, location)
        assert "stolen" not in response.headers.get("Set-Cookie", "")


def test_login_keeps_an_on_site_next_even_with_odd_characters(client: FlaskClient,
                                                              admin_password: str) -> None:
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    response = client.post("/admin/login", data={"csrf_token": token, "username": ADMIN_USER,
                                                 "password": admin_password,
                                                 "next": "/admin/messages?q=café au lait"})
    assert response.headers["Location"] == "/admin/messages?q=caf%C3%A9%20au%20lait"
