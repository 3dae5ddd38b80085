"""The phone simulator posts through the real, signature-checking ``/sms`` webhook and shows the replies."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import replies
from bot.models import Message
from cloud.models import BusEvent
from tests.web.conftest import RESIDENT, SNAPSHOT_KEY, login, page_token

JSON = {"Accept": "application/json"}


def send(client: FlaskClient, body: str, phone: str = RESIDENT) -> Any:
    token = page_token(client, "/simulator")
    return client.post("/simulator/send", data={"csrf_token": token, "phone": phone, "body": body},
                       headers=JSON)


def test_a_message_goes_through_the_webhook_and_its_reply_comes_back(admin_client: FlaskClient, services: Any,
                                                                     building: dict) -> None:
    response = send(admin_client, "help")
    assert response.status_code == 200 and response.json["ok"] is True
    with services.session() as db:
        inbound = db.scalars(select(Message).where(Message.direction == "in")).one()
        assert (inbound.from_number, inbound.body, inbound.status) == (RESIDENT, "help", "received")
        assert inbound.sid.startswith("SM") and len(inbound.sid) == 34
    conversation = admin_client.get("/simulator/messages.json", query_string={"phone": RESIDENT}).json
    texts = [(m["mine"], m["body"]) for m in conversation["messages"]]
    # The webhook's TwiML answer, delivered as Twilio would deliver it.
    assert texts[-2:] == [(True, "help"), (False, replies.HELP)]


def test_commands_are_published_on_the_bus_by_the_webhook(admin_client: FlaskClient, services: Any,
                                                         building: dict) -> None:
    assert send(admin_client, "status lobby").json["ok"] is True
    with services.session() as db:
        event = db.scalars(select(BusEvent).where(BusEvent.source == "corb.sms")).one()
    assert '"command_type": "status"' in event.body and RESIDENT in event.body


def test_the_webhook_really_checks_the_signature(admin_client: FlaskClient, services: Any, building: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from twilio.request_validator import RequestValidator

    monkeypatch.setattr("bot.admin.simulator.RequestValidator",
                        lambda token: RequestValidator("not-the-token"))
    response = send(admin_client, "help")
    assert response.status_code == 502 and response.json == {"ok": False, "status": 403,
                                                              "message": "the webhook answered 403"}
    with services.session() as db:
        assert db.scalars(select(Message).where(Message.direction == "in")).all() == []


def test_only_registered_phones_and_real_messages(admin_client: FlaskClient, services: Any,
                                                  building: dict) -> None:
    assert send(admin_client, "help", phone="+15559999999").status_code == 400
    assert send(admin_client, "   ").status_code == 400
    with services.session() as db:
        assert db.scalars(select(Message).where(Message.direction == "in")).all() == []


def test_pictures_come_as_signed_links_and_polling_returns_only_newer(admin_client: FlaskClient, client: Any,
                                                                      building: dict) -> None:
    first = admin_client.get("/simulator/messages.json", query_string={"phone": RESIDENT}).json["messages"]
    assert len(first) == 2 and all(m["media_url"].startswith("http://127.0.0.1:8000/media/") for m in first)
    picture = admin_client.get(first[0]["media_url"].replace("http://127.0.0.1:8000", ""))
    assert picture.status_code == 200 and picture.data == building["snapshot"]
    send(admin_client, "help")
    newer = admin_client.get("/simulator/messages.json",
                             query_string={"phone": RESIDENT, "after": first[-1]["id"]}).json["messages"]
    assert [m["body"] for m in newer] == ["help", replies.HELP]


def test_the_page_lists_phones_and_the_conversation(admin_client: FlaskClient, building: dict) -> None:
    html = admin_client.get("/simulator", query_string={"phone": RESIDENT}).get_data(as_text=True)
    assert f'<option value="{RESIDENT}" selected>Max Member ({RESIDENT})</option>' in html
    assert 'data-poll-url="/simulator/messages.json"' in html and "Corb alert: 3 people at Lobby" in html
    assert SNAPSHOT_KEY not in html  # the picture is linked signed, never by its bucket key


def test_without_javascript_the_form_posts_and_redirects(admin_client: FlaskClient, building: dict) -> None:
    token = page_token(admin_client, "/simulator")
    response = admin_client.post("/simulator/send",
                                 data={"csrf_token": token, "phone": RESIDENT, "body": "help"})
    assert response.status_code == 302 and response.headers["Location"] == "/simulator?phone=%2B15550000002"


def test_no_simulator_when_twilio_is_configured(services: Any, admin_password: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import create_app
    from bot.services import Services
    from cloud.config import load_config

    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    monkeypatch.setenv("TWILIO_FROM", "+15005550006")
    client = create_app(Services(load_config())).test_client()
    assert client.get("/simulator").status_code == 404  # anonymous
    login(client, admin_password)
    assert client.get("/admin/").status_code == 200 and "Simulator" not in client.get("/admin/").get_data(
        as_text=True)
    for path in ("/simulator", "/simulator/messages.json"):
        assert client.get(path).status_code == 404
    assert client.post("/simulator/send", data={"csrf_token": page_token(client), "phone": RESIDENT,
                                                "body": "help"}).status_code == 404
