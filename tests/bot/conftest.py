"""Fixtures for the bot's tests: an app on the migrated database, signed Twilio requests, people, cameras."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.models import Camera, Message, Role, User
from cloud.db import utcnow

ADMIN, MEMBER, CLEANER, STRANGER = "+15550000001", "+15550000002", "+15550000003", "+15559999999"
CORB_NUMBER = "+15550001000"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def sign(url: str, params: dict[str, str], token: str = "test-auth-token") -> str:
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def people(services: Any) -> dict[str, int]:
    """An admin, a member and a cleaner, plus two cameras (lobby in the lobby, kitchen in the kitchen)."""
    with services.session() as s:
        users = [User(phone=ADMIN, name="Ada Admin", role=Role.admin),
                 User(phone=MEMBER, name="Max Member", role=Role.member),
                 User(phone=CLEANER, name="Cleo Cleaner", role=Role.cleaner)]
        s.add_all(users)
        s.add_all([Camera(slug="lobby", name="Lobby", area="lobby"),
                   Camera(slug="kitchen", name="Kitchen", area="kitchen")])
        s.flush()
        return {u.phone: u.id for u in users}


@pytest.fixture
def sms(client: FlaskClient, services: Any) -> Callable[..., Any]:
    """POST /sms as Twilio would: form fields signed against the configured public URL."""

    def post(sender: str, body: str, *, sid: str | None = None, signature: str | None = None,
             **kw: Any) -> Any:
        form = {"MessageSid": sid or new_sid(), "AccountSid": "AC" + "0" * 32, "From": sender,
                "To": CORB_NUMBER, "Body": body, "NumMedia": "0"}
        sig = signature if signature is not None else sign(services.config.base_url + "/sms", form)
        headers = {"X-Twilio-Signature": sig} if sig else {}
        return client.post("/sms", data=form, headers=headers, **kw)

    return post


def outbox(services: Any, to: str | None = None) -> list[Message]:
    with services.sessions() as s:
        q = select(Message).where(Message.direction == "out").order_by(Message.id)
        if to:
            q = q.where(Message.to_number == to)
        return list(s.scalars(q))


def segment_result(camera: str, start: datetime, *, counts: list[int], seconds: int = 60,
                   snapshot_key: str | None = None, etag: str | None = None,
                   best: tuple[datetime, int] | None = None) -> dict:
    """What ``detection.handler.handle`` returns for one analysed segment."""
    key = f"cameras/{camera}/{start:%Y-%m-%dT%H-%M-%SZ}.mkv"
    return {"kind": "segment_analysed", "camera": camera, "bucket": "local", "segment_key": key,
            "etag": etag or uuid.uuid5(uuid.NAMESPACE_URL, key).hex, "start_time": start.isoformat() + "Z",
            "end_time": (start + timedelta(seconds=seconds)).isoformat() + "Z", "frames_decoded": 70,
            "frames_analysed": len(counts), "counts": counts, "peak": max(counts, default=0),
            "mean": sum(counts) / len(counts) if counts else 0.0, "unique_people": max(counts, default=0),
            "snapshot_key": snapshot_key, "model": "nanodet-m", "timings_ms": {"total": 1},
            **({"best_frame": {"utc": best[0].isoformat() + "Z", "count": best[1]}} if best else {})}


def destination(result: dict, *, function: str = "detection.handler.handle") -> dict:
    """``result`` as the onSuccess destination delivers it on the bus."""
    from cloud.events import destination_event, destination_record

    record = destination_record(function=function, request_id=str(uuid.uuid4()), request_payload={},
                                response_payload=result, success=True, attempts=1)
    return destination_event(record, success=True)


def sms_event(command_type: str, sender: str, **detail: Any) -> dict:
    from cloud.events import eventbridge_event

    body = {"command_type": command_type, "camera": None, "area": None, "note": "", "number": None,
            "sender": sender, "sender_name": "", "message_sid": new_sid(), "text": command_type, **detail}
    return eventbridge_event("corb.sms", "command", json.loads(json.dumps(body)))


@pytest.fixture
def runtime(services: Any) -> Iterator[Any]:
    """The real local runtime on the declaration's functions (no schedules), stopped after the test."""
    from cloud.declaration import load_declaration
    from cloud.runtime import LocalRuntime

    rt = LocalRuntime(services.sessions, load_declaration("dev"), workers=2, poll_interval=0.05,
                      backoff_base=0.05, schedules=False)
    yield rt
    rt.stop()


def settle(runtime: Any) -> None:
    assert runtime.run_until_idle(timeout=30)


def analysed(services: Any, runtime: Any, result: dict) -> None:
    """A segment result arrives as the detection function's onSuccess destination event."""
    runtime.invoke_async("tests.bot.fake_functions.detect", {"result": result})
    settle(runtime)


@pytest.fixture
def now() -> datetime:
    return utcnow().replace(microsecond=0)

