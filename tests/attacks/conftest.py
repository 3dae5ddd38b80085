"""Shared fixtures for the attack suite: Twilio-shaped signed requests, the bot's people, an admin, and
the app served on a real loopback socket (for attacks a test client cannot make: lying Content-Lengths,
bodies that never finish).

Each attack file replays one class of attack against the real parts (SQLite and PostgreSQL, the Twilio
SDK's validator, Werkzeug's server, Chromium) and asserts what the attacker gets: a refusal and nothing
stored, never a 500 and never a second copy of anything.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tests.bot.conftest import (  # noqa: F401 - fixture re-export
    CORB_NUMBER,
    MEMBER,
    new_sid,
    now,
    people,
    runtime,  # noqa: F401 - fixture re-export
    sign,
)
from tests.web.conftest import admin_client, admin_password, api_token, building  # noqa: F401 - fixtures too

ACCOUNT_SID = "AC" + "0" * 32


def twilio_form(sender: str = MEMBER, body: str = "status", sid: str | None = None) -> dict[str, str]:
    """Every field Twilio posts for an inbound SMS (its real field set, so boundary rewrites are real)."""
    sid = sid or new_sid()
    return {"ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "BERKELEY",
            "FromZip": "94704", "SmsSid": sid, "FromState": "CA", "SmsStatus": "received",
            "FromCity": "BERKELEY", "Body": body, "FromCountry": "US", "To": CORB_NUMBER, "ToZip": "94705",
            "NumSegments": "1", "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender,
            "ApiVersion": "2010-04-01"}


@pytest.fixture
def post_signed(client: FlaskClient, services: Any) -> Callable[..., Any]:
    """POST ``form`` to ``path`` with a valid X-Twilio-Signature (or the one given)."""

    def post(form: dict[str, str] | list[tuple[str, str]], path: str = "/sms", *,
             signature: str | None = None) -> Any:
        from werkzeug.datastructures import MultiDict

        fields = MultiDict(form)
        sig = signature if signature is not None else sign(services.config.base_url + path, fields)
        return client.post(path, data=fields, headers={"X-Twilio-Signature": sig})

    return post


@pytest.fixture
def served(app: Flask) -> Iterator[tuple[str, int]]:
    """The app on Werkzeug's threaded server on a free loopback port: (host, port)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="attack-target", daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join(10)


def raw_request(address: tuple[str, int], head: bytes, body: bytes = b"", *, timeout: float = 10.0) -> bytes:
    """Send ``head`` (request line and headers, CRLF-terminated) and ``body`` on one socket; return the
    response once its headers and Content-Length bytes are in (or what came before the server closed)."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(head + b"\r\n" + body)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                header, sep, rest = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", header)
                if sep and length and len(rest) >= int(length.group(1)):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return data
