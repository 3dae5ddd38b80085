"""Every trigger reaches its function through Zappa's OWN ``LambdaHandler``, loaded from the settings
module Zappa generates for the package, behind the configured entry point
(``cloud.aws.lambda_handler.lambda_handler``): API Gateway, S3, EventBridge rules (custom patterns and
Lambda destination records, through Corb's input transformer), schedules and async invocations."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import slugify
from sqlalchemy import create_engine, select
from twilio.request_validator import RequestValidator

from cloud import functions
from cloud.aws import session
from cloud.aws.deploy import TARGET_ID
from cloud.aws.lambda_handler import (
    ROUTE,
    FunctionTypeError,
    UnroutableEvent,
    envelope,
    input_transformer,
    route,
)
from cloud.aws.lambda_invoker import LambdaInvoker
from cloud.aws.stages import Deployment, lambda_name
from cloud.declaration import load_declaration
from cloud.events import destination_event, destination_record, eventbridge_event, s3_event, s3_record

from .conftest import create_lambdas
from .wire import WireProxy
from .zappa_lambda import ZappaLambdas

API = "https://abc123.execute-api.us-east-1.amazonaws.com/dev"  # the API Gateway URL of stage dev
TOKEN = "routing-test-token"
DECL = load_declaration("dev")


class Spy:
    def __init__(self, result: Any = None) -> None:
        self.calls: list[tuple[Any, Any]] = []
        self.result = result

    def __call__(self, event: Any, context: Any = None) -> Any:
        self.calls.append((event, context))
        return self.result


@pytest.fixture
def lambdas(tmp_path: Path, sqlite_url: str) -> Iterator[ZappaLambdas]:
    env = {"DATABASE_URL": sqlite_url, "TWILIO_AUTH_TOKEN": TOKEN, "CORB_SECRET_KEY": "s",
           "CORB_PUBLIC_URL": API, "CORB_DATA_DIR": str(tmp_path / "lambda")}
    zl = ZappaLambdas("dev", env)  # a cold start: the app is built from the Lambda's environment
    yield zl
    zl.close()


def spy_on(monkeypatch: pytest.MonkeyPatch, function: str, result: Any = None) -> Spy:
    module, attr = function.rsplit(".", 1)
    __import__(module)
    spy = Spy(result)
    monkeypatch.setattr(sys.modules[module], attr, spy)
    functions.clear_cache()
    return spy


def delivered(event: dict, function: str, rule: str) -> dict:
    """What EventBridge hands the Lambda for this rule target: the input transformer applied."""
    template = input_transformer(function, rule)["InputTemplate"]
    return json.loads(template.replace("<aws.events.event.json>", json.dumps(event)))


def only_rule(event: dict) -> Any:
    [rule] = DECL.rules_for(event)
    return rule


# -- API Gateway --------------------------------------------------------------------------------------

def api_gateway_post(path: str, form: dict[str, str], signature: str) -> dict:
    """A REST API (v1) proxy event, as API Gateway sends it for Twilio's POST."""
    body = urlencode(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
               "Host": "abc123.execute-api.us-east-1.amazonaws.com", "User-Agent": "TwilioProxy/1.1",
               "X-Forwarded-For": "54.172.60.1", "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https",
               "X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
    return {
        "resource": "/{proxy+}", "path": path, "httpMethod": "POST", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")}, "stageVariables": None,
        "requestContext": {"resourceId": "x1y2z3", "resourcePath": "/{proxy+}", "httpMethod": "POST",
                           "path": f"/dev{path}", "accountId": "123456789012", "protocol": "HTTP/1.1",
                           "stage": "dev", "domainPrefix": "abc123", "requestId": str(uuid.uuid4()),
                           "identity": {"sourceIp": "54.172.60.1", "userAgent": "TwilioProxy/1.1"},
                           "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "apiId": "abc123"},
        "body": body, "isBase64Encoded": False,
    }


def twilio_form(sender: str, body: str) -> dict[str, str]:
    sid = "SM" + uuid.uuid4().hex
    return {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
            "Body": body, "To": "+15550001111", "NumSegments": "1", "MessageSid": sid,
            "AccountSid": "AC" + "0" * 32, "From": sender, "ApiVersion": "2010-04-01"}


def test_api_gateway_post_sms_reaches_the_webhook_with_the_stage_url_signed(lambdas: ZappaLambdas,
                                                                           sqlite_url: str) -> None:
    form = twilio_form("+15557654321", "status lobby")
    signature = RequestValidator(TOKEN).compute_signature(f"{API}/sms", form)
    resp = lambdas.invoke("corb-dev", api_gateway_post("/sms", form, signature))
    assert resp["statusCode"] == 200, resp
    assert resp["headers"]["Content-Type"].startswith("application/xml")
    assert "not registered with Corb" in resp["body"]  # an unknown number: one polite refusal
    from bot.models import Message

    with create_engine(sqlite_url).connect() as conn:
        row = conn.execute(select(Message.direction, Message.from_number, Message.body)
                           .where(Message.sid == form["MessageSid"])).one()
    assert tuple(row) == ("in", "+15557654321", "status lobby")

    forged = lambdas.invoke("corb-dev", api_gateway_post("/sms", form, "bad" + signature))
    assert forged["statusCode"] == 403


# -- S3 -------------------------------------------------------------------------------------------------

def test_s3_object_created_reaches_the_detection_function(lambdas: ZappaLambdas,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spy = spy_on(monkeypatch, "detection.handler.handle", {"kind": "segment_analysed"})
    record = s3_record("corb-video", "cameras/lobby/2026-11-27T10:00:00Z.mkv", size=10, etag="e" * 32,
                       sequencer="0055AED6DCD90281E5")
    # the notification Id `corb deploy` gives it: Zappa's format, which its handler routes by
    record["s3"]["configurationId"] = "corb-dev-detection:detection.handler.handle"
    event = s3_event(record)
    assert lambdas.invoke("corb-dev-detection", event) == {"kind": "segment_analysed"}
    assert [e for e, _ in spy.calls] == [event]
    assert spy.calls[0][1].function_name == "corb-dev-detection"


# -- EventBridge rules ------------------------------------------------------------------------------------

def sms_command(command_type: str) -> dict:
    return eventbridge_event("corb.sms", "command", {"command_type": command_type, "sender": "+15551234567",
                                                   "message_sid": "SM1"}, account="123456789012")


@pytest.mark.parametrize("command_type,function", [
    ("status", "bot.handlers.status.handle"), ("snapshot", "bot.handlers.snapshot.handle"),
    ("subscribe", "bot.handlers.subscriptions.handle"),
    ("request_cleaning", "bot.handlers.cleaning.record_request"),
    ("done", "bot.handlers.cleaning.close_request")])
def test_a_corb_sms_command_reaches_its_handler(lambdas: ZappaLambdas, monkeypatch: pytest.MonkeyPatch,
                                               command_type: str, function: str) -> None:
    event = sms_command(command_type)
    rule = only_rule(event)
    assert rule.function == function
    spy = spy_on(monkeypatch, function, {"ok": command_type})
    result = lambdas.invoke("corb-dev", delivered(event, rule.function, rule.name))
    assert result == {"ok": command_type}
    assert [e for e, _ in spy.calls] == [event]  # the original event, byte for byte


def destination(function_lambda: str, payload: Any, *, success: bool) -> dict:
    record = destination_record(function="x", request_id=str(uuid.uuid4()), request_payload={"Records": []},
                                response_payload=payload, success=success, attempts=1 if success else 3)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_lambda}:$LATEST"
    record["requestContext"]["functionArn"] = arn
    return destination_event(record, success=success)


@pytest.mark.parametrize("payload,success,function", [
    ({"kind": "segment_analysed", "camera": "lobby", "peak": 2}, True, "bot.handlers.alerts.on_segment"),
    ({"command_type": "request_cleaning", "area": "lobby"}, True, "bot.handlers.cleaning.generate_report"),
    ({"command_type": "cleaning_report", "to": "+1555"}, True, "bot.handlers.cleaning.send_report"),
    ({"errorType": "VideoError", "errorMessage": "corrupt"}, False, "cloud.dead_letters.record"),
])
def test_lambda_destination_records_reach_their_handler(lambdas: ZappaLambdas,
                                                        monkeypatch: pytest.MonkeyPatch, payload: dict,
                                                        success: bool, function: str) -> None:
    event = destination("corb-dev-detection", payload, success=success)
    rule = only_rule(event)
    assert rule.function == function
    spy = spy_on(monkeypatch, function, {"done": True})
    assert lambdas.invoke("corb-dev", delivered(event, rule.function, rule.name)) == {"done": True}
    assert [e for e, _ in spy.calls] == [event]


def test_a_raw_custom_event_is_refused_not_dropped(lambdas: ZappaLambdas) -> None:
    """Without the input transformer Zappa would return None and the command would vanish."""
    with pytest.raises(UnroutableEvent, match="corb deploy"):
        lambdas.invoke("corb-dev", sms_command("status"))


def test_route_refuses_functions_outside_corb_and_shields_type_errors(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnroutableEvent):
        route({"command": ROUTE, "function": "os.system", "event": "echo hi"})
    calls = []

    def broken(event: Any, context: Any = None) -> None:
        calls.append(event)
        raise TypeError("unsupported operand")

    monkeypatch.setattr(sys.modules["cloud.aws.lambda_handler"], "resolve", lambda name: broken)
    with pytest.raises(FunctionTypeError, match="unsupported operand"):
        route(envelope("bot.handlers.status.handle", {"id": "1"}))
    assert len(calls) == 1  # Zappa's run_function would have retried a TypeError with fewer arguments


def test_a_failing_function_raises_through_zappa(lambdas: ZappaLambdas,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors must reach Lambda (retries, then onFailure): neither Zappa nor the entry may swallow them."""
    def boom(event: Any, context: Any = None) -> None:
        raise RuntimeError("handler failed")

    __import__("bot.handlers.status")
    monkeypatch.setattr(sys.modules["bot.handlers.status"], "handle", boom)
    functions.clear_cache()
    event = sms_command("status")
    with pytest.raises(RuntimeError, match="handler failed"):
        lambdas.invoke("corb-dev", delivered(event, "bot.handlers.status.handle", "corb-dev-status"))


# -- schedules and async invocations ----------------------------------------------------------------------

def test_a_scheduled_event_reaches_its_function(lambdas: ZappaLambdas,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = next(s for s in DECL.schedules if s.function == "bot.handlers.retention.purge")
    spy = spy_on(monkeypatch, schedule.function, {"kind": "retention_purged"})
    rule = f"corb-dev-{schedule.function}"  # Zappa's rule name: the function after the last '-'
    arn = f"arn:aws:events:us-east-1:123456789012:rule/{rule}"
    event = {**eventbridge_event("aws.events", "Scheduled Event", {}, account="123456789012",
                                 resources=[arn]), "kwargs": {}}
    assert lambdas.invoke("corb-dev", event) == {"kind": "retention_purged"}
    assert [e for e, _ in spy.calls] == [event]


def test_the_invoker_queues_envelopes_zappa_routes(aws: str, monkeypatch: pytest.MonkeyPatch,
                                                   lambdas: ZappaLambdas) -> None:
    arns = create_lambdas({"corb-dev": "corb-dev-web", "corb-dev-detection": "corb-dev-detection"})
    proxy = WireProxy(aws).start()
    try:
        invoker = LambdaInvoker(Deployment.load("dev"), session.client("lambda", endpoint_url=proxy.url))
        event = sms_command("snapshot")
        request_id = invoker.invoke_async("bot.handlers.snapshot.handle", event, trigger="replay")
        s3_payload = s3_event(s3_record("corb-video", "cameras/a/b.mkv", size=1, etag="e", sequencer="1"))
        invoker.invoke_async("corb-dev-detection", s3_payload)  # a dead letter recorded under the Lambda
        invoker.invoke_async(arns["corb-dev"], envelope("bot.handlers.status.handle", event))
    finally:
        proxy.stop()
    sent = [r for r in proxy.recorded if "/invocations" in r.target]
    assert [r.target for r in sent] == [
        "POST /2015-03-31/functions/corb-dev/invocations",
        "POST /2015-03-31/functions/corb-dev-detection/invocations",
        "POST /2015-03-31/functions/corb-dev/invocations"]
    assert all(r.headers["X-Amz-Invocation-Type"] == "Event" for r in sent)
    assert len(request_id) >= 16
    assert sent[1].json() == s3_payload  # as recorded: Zappa maps it by bucket
    payload = sent[0].json()
    assert payload == {"command": ROUTE, "function": "bot.handlers.snapshot.handle", "event": event}
    spy = spy_on(monkeypatch, "bot.handlers.snapshot.handle", {"sent": 1})
    assert lambdas.invoke("corb-dev", payload) == {"sent": 1}
    assert [e for e, _ in spy.calls] == [event]


def test_lambda_names_are_zappas() -> None:
    for stage in ("dev", "dev_detection", "prod", "prod_detection"):
        assert lambda_name("corb", stage) == slugify.slugify(f"corb-{stage}")
    dep = Deployment.load("dev")
    assert dep.lambda_for("detection.handler.handle") == "corb-dev-detection"
    assert dep.lambda_for("bot.handlers.status.handle") == "corb-dev"
    assert TARGET_ID == "1"


# -- Zappa callbacks --------------------------------------------------------------------------------------

def test_the_settings_callback_leaves_zappa_the_schedules_only() -> None:
    from cloud.aws.stages import read_settings, stage_config
    from cloud.aws.zappa_callbacks import group_of, zappa_events

    settings = read_settings()
    events = stage_config(settings, "dev")["events"]
    kept = zappa_events(events)
    assert [e.get("expression") for e in kept] == ["rate(1 hour)", "rate(1 minute)"]
    detection = zappa_events(stage_config(settings, "dev_detection")["events"])
    assert detection == [{"function": "cloud.reconcile.run", "expression": "rate(15 minutes)"}]
    assert group_of("dev_detection", settings) == "dev" and group_of("prod", settings) == "prod"


def test_the_bytecode_callback_adds_unchecked_hash_pycs(tmp_path: Path) -> None:
    import importlib.util
    import zipfile

    from cloud.aws.zappa_callbacks import add_bytecode

    package = tmp_path / "p.zip"
    with zipfile.ZipFile(package, "w") as zf:
        zf.writestr("bot/__init__.py", "")
        zf.writestr("bot/mod.py", "VALUE = 42\n")
        zf.writestr("twilio/__init__.py", "X = 1\n")
    assert add_bytecode(package) == 3
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(package) as zf:
        pyc = zf.read(f"bot/__pycache__/mod.{tag}.pyc")
        names = set(zf.namelist())
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, unchecked: immune to zip file times
    assert f"twilio/__pycache__/__init__.{tag}.pyc" in names

    small = tmp_path / "q.zip"
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("bot/mod.py", "VALUE = 42\n")
        zf.writestr("av/big.py", "X = 1\n")
    assert add_bytecode(small, limit=10) == 1  # over budget: the project's own modules only
    with zipfile.ZipFile(small) as zf:
        assert [n for n in zf.namelist() if n.endswith(".pyc")] == [f"bot/__pycache__/mod.{tag}.pyc"]
