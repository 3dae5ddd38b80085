"""POST /sms and /sms/status: signatures, dedupe, strangers, STOP/START, publishing, proxies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot import replies
from bot.models import Message, Refusal, User
from cloud.db import utcnow
from cloud.models import BusEvent
from tests.bot.conftest import CORB_NUMBER, MEMBER, STRANGER, new_sid, sign


def inbound(services: Any) -> list[Message]:
    with services.sessions() as s:
        return list(s.scalars(select(Message).where(Message.direction == "in").order_by(Message.id)))


def events(services: Any) -> list[dict]:
    with services.sessions() as s:
        return [json.loads(b) for b in s.scalars(select(BusEvent.body).order_by(BusEvent.time))]


def said(resp: Any) -> str:
    """The text of a TwiML reply ('' when it says nothing)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(resp.data)
    assert root.tag == "Response"
    return " ".join(m.text or "" for m in root.iter("Message"))


def test_forged_signature_is_refused_and_nothing_is_stored(sms, services, people) -> None:
    resp = sms(MEMBER, "status", signature="bm90IGEgc2lnbmF0dXJl")
    assert resp.status_code == 403
    assert inbound(services) == [] and events(services) == []


def test_unsigned_request_is_refused(sms, services, people) -> None:
    assert sms(MEMBER, "status", signature="").status_code == 403
    assert inbound(services) == []


def test_a_signature_over_other_fields_is_refused(client, services, people) -> None:
    form = {"MessageSid": new_sid(), "From": MEMBER, "To": CORB_NUMBER, "Body": "status"}
    sig = sign(services.config.base_url + "/sms", form)
    resp = client.post("/sms", data={**form, "Body": "snapshot"}, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 403


def test_status_is_stored_published_and_answered_with_empty_twiml(sms, services, people) -> None:
    resp = sms(MEMBER, "Status lobby?", sid="SM" + "a" * 32)
    assert resp.status_code == 200 and resp.mimetype == "application/xml"
    assert said(resp) == ""
    [msg] = inbound(services)
    assert (msg.sid, msg.from_number, msg.to_number, msg.body, msg.status) == (
        "SM" + "a" * 32, MEMBER, CORB_NUMBER, "Status lobby?", "received")
    [event] = events(services)
    assert (event["source"], event["detail-type"]) == ("corb.sms", "command")
    assert event["detail"] == {"command_type": "status", "camera": "lobby", "area": "lobby", "note": "",
                               "number": None, "sender": MEMBER, "sender_name": "Max Member",
                               "message_sid": "SM" + "a" * 32, "text": "Status lobby?"}


def test_the_same_message_sid_twice_is_one_message_and_one_event(sms, services, people) -> None:
    sid = new_sid()
    first, second = sms(MEMBER, "snapshot", sid=sid), sms(MEMBER, "snapshot", sid=sid)
    assert first.status_code == second.status_code == 200
    assert said(second) == "" and second.data == first.data
    assert len(inbound(services)) == 1 and len(events(services)) == 1


def test_help_and_unknown_are_answered_at_once_and_not_published(sms, services, people) -> None:
    assert said(sms(MEMBER, "help")) == replies.HELP
    assert said(sms(MEMBER, "what is the meaning of life")) == replies.UNKNOWN
    assert events(services) == []
    assert len(inbound(services)) == 2


def test_immediate_answers_are_kept_as_outbound_messages(sms, services, people) -> None:
    """Twilio sends a TwiML answer as an SMS of its own: the admin's message log must show it."""
    sms(MEMBER, "help")
    sms(STRANGER, "status")
    sms(STRANGER, "status")  # rate-limited: no answer, so nothing stored
    with services.sessions() as s:
        out = s.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)).all()
    assert [(m.from_number, m.to_number, m.body, m.status) for m in out] == [
        (CORB_NUMBER, MEMBER, replies.HELP, "sent"), (CORB_NUMBER, STRANGER, replies.REFUSAL, "sent")]


def test_unknown_numbers_get_one_refusal_then_silence(sms, services, people) -> None:
    assert said(sms(STRANGER, "status")) == replies.REFUSAL
    assert said(sms(STRANGER, "status")) == ""
    assert said(sms(STRANGER, "snapshot please")) == ""
    assert events(services) == []
    assert len(inbound(services)) == 3
    with services.session() as s:
        refusal = s.get(Refusal, STRANGER)
        assert refusal.count == 3
        refusal.last_at = utcnow() - replies_window() - replies_window() / 24
    assert said(sms(STRANGER, "status")) == replies.REFUSAL  # the window has passed


def replies_window():  # noqa: ANN201
    from bot.webhook import REFUSAL_WINDOW

    return REFUSAL_WINDOW


def test_stop_opts_out_and_start_opts_back_in(sms, services, people) -> None:
    assert said(sms(MEMBER, "STOP")) == replies.STOPPED
    with services.sessions() as s:
        assert s.scalar(select(User.opted_out).where(User.phone == MEMBER)) is True
    assert said(sms(MEMBER, "status")) == ""
    assert said(sms(MEMBER, "help")) == ""
    assert said(sms(MEMBER, "stop")) == ""
    assert events(services) == []
    assert said(sms(MEMBER, "start")) == replies.STARTED
    with services.sessions() as s:
        assert s.scalar(select(User.opted_out).where(User.phone == MEMBER)) is False
    sms(MEMBER, "status")
    assert len(events(services)) == 1


def test_unsubscribe_alone_opts_out_but_unsubscribe_lobby_is_published(sms, services, people) -> None:
    assert said(sms(MEMBER, "unsubscribe lobby")) == ""
    [event] = events(services)
    assert (event["detail"]["command_type"], event["detail"]["camera"]) == ("unsubscribe", "lobby")
    assert said(sms(MEMBER, "UNSUBSCRIBE")) == replies.STOPPED


def test_behind_a_proxy_the_public_url_is_what_is_signed(services, people, monkeypatch) -> None:
    """API Gateway: Twilio calls https://public/prod/sms; the app sees SCRIPT_NAME=/prod, PATH=/sms."""
    from bot import create_app
    from bot.services import Services
    from cloud.config import load_config

    monkeypatch.setenv("CORB_PUBLIC_URL", "https://corb.example.org/prod/")
    svc = Services(load_config())
    app = create_app(svc)
    client = app.test_client()
    form = {"MessageSid": new_sid(), "From": MEMBER, "To": CORB_NUMBER, "Body": "status", "NumMedia": "0"}
    public = "https://corb.example.org/prod/sms?via=gw"
    good = client.post("/sms?via=gw", data=form, base_url="http://10.0.0.7:8000/prod",
                       headers={"X-Twilio-Signature": sign(public, form)})
    assert good.status_code == 200
    internal = "http://10.0.0.7:8000/prod/sms?via=gw"  # what the app itself sees: not what Twilio signed
    bad = client.post("/sms?via=gw", data={**form, "MessageSid": new_sid()}, base_url="http://10.0.0.7:8000/prod",
                      headers={"X-Twilio-Signature": sign(internal, {**form})})
    assert bad.status_code == 403
    svc.close()


def test_a_bus_failure_keeps_the_message_and_a_redelivery_publishes_it(sms, services, people,
                                                                     monkeypatch) -> None:
    from cloud.bus import BusError

    def refuse(*_a: Any, **_k: Any) -> list[str]:
        raise BusError("bus down")

    monkeypatch.setattr(type(services.bus), "put_events_in", refuse)
    sid = new_sid()
    resp = sms(MEMBER, "status", sid=sid)
    assert resp.status_code == 200 and "try again" in said(resp)
    [msg] = inbound(services)
    assert msg.status == "failed" and "bus down" in msg.error
    monkeypatch.undo()
    assert said(sms(MEMBER, "status", sid=sid)) == ""  # Twilio (or the fallback URL) tries again
    [msg] = inbound(services)
    assert msg.status == "received" and msg.error is None
    assert len(events(services)) == 1


def test_with_eventbridge_the_event_is_published_before_the_row_is_stored(sms, services, people) -> None:
    """A bus without a transactional put (EventBridge): put_events first, then the row."""
    calls: list[tuple[str, int]] = []

    class Bridge:
        name = "default"

        def put_events(self, entries: list[dict]) -> list[str]:
            calls.append((json.loads(entries[0]["Detail"])["command_type"], len(inbound(services))))
            return ["id-1"]

    services._overrides["bus"] = Bridge()
    services.__dict__.pop("bus", None)
    assert said(sms(MEMBER, "snapshot lobby")) == ""
    assert calls == [("snapshot", 0)]
    assert [m.status for m in inbound(services)] == ["received"]


def test_cameras_are_cached_briefly(sms, services, people, app) -> None:
    from bot.models import Camera

    sms(MEMBER, "status lobby")
    with services.session() as s:
        s.add(Camera(slug="garage", name="Garage", area="garage"))
    sms(MEMBER, "status garage")
    assert events(services)[-1]["detail"]["camera"] is None  # still the cached list
    app.extensions.pop("corb.catalog")
    sms(MEMBER, "status garage")
    assert events(services)[-1]["detail"]["camera"] == "garage"


@pytest.mark.parametrize("status, expected", [("sent", "sent"), ("delivered", "delivered"),
                                              ("queued", "delivered")])
def test_status_callbacks_move_a_message_forward(client, services, people, status, expected) -> None:
    with services.session() as s:
        s.add(Message(direction="out", sid="SM" + "b" * 32, from_number=CORB_NUMBER, to_number=MEMBER,
                      body="hi", status="sent"))
    url = services.config.base_url + "/sms/status"
    for st in ("delivered", status):
        form = {"MessageSid": "SM" + "b" * 32, "MessageStatus": st}
        resp = client.post("/sms/status", data=form, headers={"X-Twilio-Signature": sign(url, form)})
        assert resp.status_code == 204
    with services.sessions() as s:
        assert s.scalar(select(Message.status).where(Message.sid == "SM" + "b" * 32)) == (
            "delivered" if status != "sent" else "delivered")


def test_status_callback_records_the_error_and_must_be_signed(client, services, people) -> None:
    with services.session() as s:
        s.add(Message(direction="out", sid="SM" + "c" * 32, from_number=CORB_NUMBER, to_number=MEMBER,
                      body="hi", status="queued"))
    form = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert client.post("/sms/status", data=form).status_code == 403
    url = services.config.base_url + "/sms/status"
    resp = client.post("/sms/status", data=form, headers={"X-Twilio-Signature": sign(url, form)})
    assert resp.status_code == 204
    with services.sessions() as s:
        msg = s.scalars(select(Message).where(Message.sid == "SM" + "c" * 32)).one()
        assert (msg.status, msg.error) == ("undelivered", "Twilio error 30003")
        assert s.scalar(select(func.count(Message.id))) == 1


def test_opted_out_flag_survives_in_the_database(sms, services, people) -> None:
    with services.session() as s:
        s.execute(update(User).where(User.phone == MEMBER).values(opted_out=True))
    assert said(sms(MEMBER, "yes")) == replies.STARTED
