"""Messengers: the outbox (one machine) and Twilio through its real SDK against a wire-format fake."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bot.handlers import Reply, act_once
from bot.messenger import OutboxMessenger, TwilioMessenger, open_messenger, pending, provisional_sid
from bot.models import Message
from tests.bot.conftest import MEMBER

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-secret"


class FakeTwilio(ThreadingHTTPServer):
    """Speaks Twilio's REST wire format for Messages.json: form-encoded in, a message resource out."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TwilioHandler)
        self.requests: list[dict[str, list[str]]] = []
        self.fail_with: tuple[int, int, str] | None = None  # (HTTP status, Twilio code, message)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _TwilioHandler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            return self._send(404, {"code": 20404, "message": "The requested resource was not found",
                                    "status": 404})
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"code": 20003, "message": "Authenticate", "status": 401})
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.server.requests.append(form)
        if self.server.fail_with:
            status, code, message = self.server.fail_with
            return self._send(status, {"code": code, "message": message, "status": status,
                                       "more_info": f"https://www.twilio.com/docs/errors/{code}"})
        media = form.get("MediaUrl", [])
        self._send(201, {
            "sid": "SM" + uuid.uuid4().hex, "account_sid": ACCOUNT_SID, "api_version": "2010-04-01",
            "to": form["To"][0], "from": form["From"][0], "body": form["Body"][0], "status": "queued",
            "num_media": str(len(media)), "num_segments": "1", "direction": "outbound-api",
            "date_created": "Fri, 27 Nov 2026 12:00:00 +0000",
            "date_updated": "Fri, 27 Nov 2026 12:00:00 +0000",
            "date_sent": None, "error_code": None, "error_message": None, "price": None, "price_unit": "USD",
            "messaging_service_sid": None, "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/x.json",
            "subresource_uris": {}})


class LocalTwilioHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, aimed at the fake instead of api.twilio.com (the SDK's http_client hook)."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return super().request(method, url.replace("https://api.twilio.com", self.base), *args, **kwargs)


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def twilio(services: Any, fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch) -> TwilioMessenger:
    from bot.services import Services
    from cloud.config import load_config

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    monkeypatch.setenv("TWILIO_FROM", "+15550001000")
    monkeypatch.setenv("CORB_PUBLIC_URL", "https://corb.example.org")
    svc = Services(load_config())  # same database and bucket folder, the public URL of production
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=LocalTwilioHttpClient(fake_twilio.url))
    return TwilioMessenger(svc, client)


def rows(services: Any) -> list[Message]:
    with services.sessions() as s:
        return list(s.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)))


def test_open_messenger_picks_the_outbox_without_twilio_settings(services: Any) -> None:
    assert isinstance(open_messenger(services), OutboxMessenger)


def test_open_messenger_picks_twilio_when_configured(twilio: TwilioMessenger) -> None:
    assert isinstance(open_messenger(twilio.svc), TwilioMessenger)


def test_outbox_stores_the_message_with_a_signed_link(services: Any) -> None:
    services.bucket.put("snapshots/a.jpg", b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
    sid = services.messenger.send(MEMBER, "hello", media_key="snapshots/a.jpg")
    [row] = rows(services)
    assert (row.sid, row.to_number, row.body, row.status) == (sid, MEMBER, "hello", "sent")
    assert sid.startswith("SM") and len(sid) == 34
    assert services.bucket.resolve_token(row.media_url.rsplit("/", 1)[1]) == "snapshots/a.jpg"


def test_twilio_sends_through_the_sdk_and_stores_the_returned_sid(services, twilio, fake_twilio) -> None:
    services.bucket.put("snapshots/b.jpg", b"\xff\xd8\xff\xe0jpeg", "image/jpeg")
    sid = twilio.send(MEMBER, "a picture", media_key="snapshots/b.jpg")
    [request] = fake_twilio.requests
    assert (request["To"], request["From"], request["Body"]) == ([MEMBER], ["+15550001000"], ["a picture"])
    assert request["StatusCallback"] == ["https://corb.example.org/sms/status"]
    assert request["MediaUrl"][0].startswith("https://corb.example.org/media/")
    [row] = rows(services)
    assert (row.sid, row.status, row.media_url) == (sid, "queued", request["MediaUrl"][0])
    assert row.from_number == "+15550001000"


def test_twilio_errors_are_stored_and_raised(services, twilio, fake_twilio) -> None:
    fake_twilio.fail_with = (400, 21211, "The 'To' number +1555 is not a valid phone number.")
    with pytest.raises(TwilioRestException) as err:
        twilio.send(MEMBER, "hello")
    assert err.value.code == 21211
    [row] = rows(services)
    assert row.status == "failed" and row.error.startswith("Twilio error 21211: ")


def test_a_retry_sends_only_what_the_first_attempt_did_not(services, twilio, fake_twilio) -> None:
    """Send-then-crash: the handler's replies are queued with its dedupe claim; a retry delivers the rest."""
    services._overrides["messenger"] = twilio
    services.__dict__.pop("messenger", None)
    work_done: list[int] = []

    def work(_s: Any) -> list[Reply]:
        work_done.append(1)
        return [Reply(MEMBER, "one"), Reply("+15550000003", "two")]

    fake_twilio.fail_with = (503, 20500, "Service unavailable")
    with pytest.raises(TwilioRestException):
        act_once("test", "event-1", work, services)
    assert len(fake_twilio.requests) == 2  # both tried, both failed
    fake_twilio.fail_with = None
    assert act_once("test", "event-1", work, services) is False  # a retry: no work again, just delivery
    assert act_once("test", "event-1", work, services) is False  # and a third time sends nothing more
    assert work_done == [1]
    assert [r["Body"] for r in fake_twilio.requests[2:]] == [["one"], ["two"]]
    with services.sessions() as s:
        assert pending(s, "test:event-1") == []
    assert all(r.status == "queued" and not r.sid.startswith(provisional_sid("test:event-1", 0)[:28])
               for r in rows(services))
