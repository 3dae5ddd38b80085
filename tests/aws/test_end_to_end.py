"""One story, two clouds, the same assertions.

A camera segment lands in the bucket -> the detection function analyses it and writes the snapshot ->
its onSuccess destination record goes on the bus -> the segment rule runs the bot's alert handler -> the
subscriber gets an MMS whose link serves the JPEG. Then an SMS "snapshot lobby" goes through the webhook,
the bus and the snapshot handler to a second MMS. Delivered twice, the segment changes nothing.

- ``embedded``: FolderBucket + LocalBus + LocalRuntime (with the bucket watcher), the Flask app.
- ``aws``: S3Bucket + EventBridgeBus on the moto server, ``corb deploy``'s rules and S3 notification, the
  functions run by Zappa's own LambdaHandler from the packaged settings (the Lambda pump, see pump.py),
  the webhook reached through an API Gateway event.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.models import Camera, Message, Role, Subscription, User
from cloud.bucket import Bucket
from cloud.events import FAILURE, SUCCESS
from cloud.models import DeadLetter
from cloud.results import extract

CLIP = Path(__file__).resolve().parents[1] / "data" / "vtest-clip.mkv"
SEGMENT = "cameras/lobby/2026-11-27T10-00-00Z.mkv"
MEMBER = "+15550000002"
TOKEN = "e2e-auth-token"
API = "https://e2e0api.execute-api.us-east-1.amazonaws.com/dev"


class Cloud(Protocol):
    bucket: Bucket
    sessions: Any

    def sms(self, sender: str, body: str) -> tuple[int, str]: ...

    def settle(self) -> None: ...

    def bus_events(self) -> list[dict]: ...

    def fetch(self, url: str) -> tuple[int, str, bytes]: ...

    def replay(self) -> list[Any]: ...


def twilio_form(sender: str, body: str) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32, "From": sender,
            "To": "+15550001000", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}


# -- the embedded cloud ---------------------------------------------------------------------------------

@dataclass
class Embedded:
    svc: Any
    runtime: Any
    client: Any

    @property
    def bucket(self) -> Bucket:
        return self.svc.bucket

    @property
    def sessions(self) -> Any:
        return self.svc.sessions

    def sms(self, sender: str, body: str) -> tuple[int, str]:
        form = twilio_form(sender, body)
        sig = RequestValidator(TOKEN).compute_signature(self.svc.config.base_url + "/sms", form)
        resp = self.client.post("/sms", data=form, headers={"X-Twilio-Signature": sig})
        return resp.status_code, resp.get_data(as_text=True)

    def settle(self) -> None:
        assert self.runtime.run_until_idle(timeout=120)

    def bus_events(self) -> list[dict]:
        import json

        from cloud.models import BusEvent

        with self.svc.sessions() as s:
            return [json.loads(b) for b in s.scalars(select(BusEvent.body).order_by(BusEvent.time))]

    def fetch(self, url: str) -> tuple[int, str, bytes]:
        resp = self.client.get(url.removeprefix(self.svc.config.base_url))
        return resp.status_code, resp.mimetype, resp.data

    def replay(self) -> list[Any]:
        from cloud.dead_letters import replay

        return replay(self.svc.sessions, self.runtime)


# -- the AWS cloud (moto server + the Lambda pump) -----------------------------------------------------

@dataclass
class OnAws:
    svc: Any  # reads the same database the Lambdas write
    lambdas: Any
    pump: Any
    bucket: Bucket

    @property
    def sessions(self) -> Any:
        return self.svc.sessions

    def sms(self, sender: str, body: str) -> tuple[int, str]:
        from .test_zappa_routing import api_gateway_post

        form = twilio_form(sender, body)
        sig = RequestValidator(TOKEN).compute_signature(f"{API}/sms", form)
        event = api_gateway_post("/sms", form, sig)
        event["headers"]["Host"] = event["requestContext"]["domainName"] = API.split("/")[2]
        event["multiValueHeaders"]["Host"] = [event["headers"]["Host"]]
        event["body"] = urlencode(form)
        resp = self.lambdas.invoke("corb-dev", event)
        return resp["statusCode"], resp.get("body") or ""

    def settle(self) -> None:
        self.pump.run_until_idle()

    def bus_events(self) -> list[dict]:
        return self.pump.bus_events()

    def fetch(self, url: str) -> tuple[int, str, bytes]:
        with urllib.request.urlopen(url) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()

    def replay(self) -> list[Any]:
        from cloud.aws.lambda_invoker import LambdaInvoker
        from cloud.dead_letters import replay

        return replay(self.svc.sessions, LambdaInvoker(self.lambdas.deployment, self.pump.lambda_client))


@pytest.fixture
def svc(corb_env: dict[str, str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from bot.services import Services, use_services
    from cloud.config import load_config

    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    services = Services(load_config())
    with services.session() as s:
        member = User(phone=MEMBER, name="Max Member", role=Role.member)
        lobby = Camera(slug="lobby", name="Lobby", area="lobby")
        s.add_all([member, lobby])
        s.flush()
        s.add(Subscription(user_id=member.id, camera_id=lobby.id))
    previous = use_services(services)
    yield services
    use_services(previous)
    services.close()


@pytest.fixture(params=["embedded", "aws"])
def cloud(request: pytest.FixtureRequest, svc: Any) -> Iterator[Cloud]:
    if request.param == "embedded":
        yield from _embedded(svc)
    else:
        yield from _aws(request, svc)


def _embedded(svc: Any) -> Iterator[Cloud]:
    from bot import create_app
    from cloud.declaration import load_declaration
    from cloud.runtime import LocalRuntime
    from cloud.watcher import BucketWatcher

    decl = load_declaration("dev")
    watcher = BucketWatcher(svc.bucket, decl, svc.sessions, interval=0.1)
    runtime = LocalRuntime(svc.sessions, decl, workers=2, poll_interval=0.05, backoff_base=0.05,
                           schedules=False, pollers=[watcher])
    app = create_app(svc)
    app.config.update(TESTING=True)
    yield Embedded(svc, runtime, app.test_client())
    runtime.stop()


def _aws(request: pytest.FixtureRequest, svc: Any) -> Iterator[Cloud]:
    from cloud.aws import session
    from cloud.aws.deploy import apply_stage
    from cloud.aws.s3 import S3Bucket

    from .conftest import BUCKET, create_lambdas
    from .pump import LambdaPump
    from .zappa_lambda import ZappaLambdas

    request.getfixturevalue("bucket_name")  # the moto server, reset, with the bucket
    create_lambdas({"corb-dev": "corb-dev-web", "corb-dev-detection": "corb-dev-detection"})
    apply_stage("dev", echo=lambda line: None)  # `corb deploy dev`: rules, targets, async config, S3
    env = {"DATABASE_URL": svc.config.database_url, "TWILIO_AUTH_TOKEN": TOKEN, "CORB_SECRET_KEY": "e2e",
           "CORB_PUBLIC_URL": API, "CORB_DATA_DIR": str(svc.config.data_dir / "lambda")}
    lambdas = ZappaLambdas("dev", env)
    pump = LambdaPump(lambdas)
    pump.install([BUCKET])
    try:
        yield OnAws(svc, lambdas, pump, S3Bucket(BUCKET, session.client("s3")))
    finally:
        pump.stop()
        lambdas.close()


def outbox(cloud: Cloud, to: str) -> list[Message]:
    with cloud.sessions() as s:
        return list(s.scalars(select(Message).where(Message.direction == "out", Message.to_number == to)
                              .order_by(Message.id)))


def test_a_segment_becomes_an_alert_and_a_snapshot_command_an_mms(cloud: Cloud) -> None:
    cloud.bucket.upload(CLIP, SEGMENT)
    cloud.settle()

    # the detection function stored the annotated best frame and its result
    [snapshot] = list(cloud.bucket.list("snapshots/lobby/"))
    assert snapshot.content_type == "image/jpeg"
    picture = cloud.bucket.get(snapshot.key)
    assert picture[:3] == b"\xff\xd8\xff"
    assert extract(picture)["segment_key"] == SEGMENT  # the result travels inside the picture

    # its onSuccess destination record went on the bus
    [dest] = [e for e in cloud.bus_events() if e["source"] == "lambda" and e["detail-type"] == SUCCESS
              and (e["detail"]["responsePayload"] or {}).get("kind") == "segment_analysed"]
    result = dest["detail"]["responsePayload"]
    assert result["camera"] == "lobby" and result["segment_key"] == SEGMENT
    assert result["snapshot_key"] == snapshot.key and result["peak"] > 0
    assert dest["detail"]["requestContext"]["condition"] == "Success"
    assert dest["detail"]["requestPayload"]["Records"][0]["s3"]["object"]["eTag"] == result["etag"]

    # the segment rule ran the alert handler: one MMS to the subscriber, whose link serves the JPEG
    [alert] = outbox(cloud, MEMBER)
    assert alert.body.startswith(f"Corb alert: {result['peak']} people at Lobby")
    assert alert.media_key == snapshot.key and alert.status == "sent"
    status, content_type, data = cloud.fetch(alert.media_url)
    assert (status, content_type, data) == (200, "image/jpeg", picture)

    # S3 delivers at least once: the same object again changes nothing
    cloud.bucket.upload(CLIP, SEGMENT)
    cloud.settle()
    assert len(list(cloud.bucket.list("snapshots/lobby/"))) == 1
    assert len(outbox(cloud, MEMBER)) == 1

    # an SMS command: webhook -> bus -> rule -> snapshot handler -> MMS
    status, twiml = cloud.sms(MEMBER, "snapshot lobby")
    assert status == 200 and "<Response" in twiml
    cloud.settle()
    [command] = [e for e in cloud.bus_events() if e["source"] == "corb.sms"]
    assert command["detail"]["command_type"] == "snapshot" and command["detail"]["sender"] == MEMBER
    [_, mms] = outbox(cloud, MEMBER)
    assert mms.body.startswith("Lobby at ") and mms.media_key == snapshot.key
    assert cloud.fetch(mms.media_url) == (200, "image/jpeg", picture)


def test_a_failing_segment_is_retried_dead_lettered_and_replayed(cloud: Cloud) -> None:
    bad = "cameras/lobby/2026-11-27T11-00-00Z.mkv"
    cloud.bucket.put(bad, b"this is not a video", "video/x-matroska")
    cloud.settle()

    # two retries, then the onFailure destination record on the bus, then the dead-letter rule
    [failure] = [e for e in cloud.bus_events() if e["detail-type"] == FAILURE]
    detail = failure["detail"]
    assert detail["requestContext"]["condition"] == "RetriesExhausted"
    assert detail["requestContext"]["approximateInvokeCount"] == 3
    assert detail["responsePayload"]["errorType"] == "VideoError"
    assert detail["requestPayload"]["Records"][0]["s3"]["bucket"]["name"] == cloud.bucket.name
    with cloud.sessions() as s:
        [letter] = s.scalars(select(DeadLetter)).all()
    assert letter.attempts == 3 and "VideoError" in letter.error
    assert json.loads(letter.payload) == detail["requestPayload"]
    # locally the letter names the function; on AWS the record names the Lambda that runs it
    assert letter.function in ("detection.handler.handle", "corb-dev-detection")
    assert outbox(cloud, MEMBER) == [] and list(cloud.bucket.list("snapshots/")) == []

    # replay: the same request goes to the same function again (it fails again, and says so)
    [replayed] = cloud.replay()
    assert replayed.dead_letter_id == letter.id
    cloud.settle()
    with cloud.sessions() as s:
        letters = s.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
    assert len(letters) == 2 and letters[0].replayed_at is not None and letters[1].replayed_at is None
    assert letters[1].payload == letter.payload and letters[1].function == letter.function
