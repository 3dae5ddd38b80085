"""Stages on their own buses, a dead-letter recorder that cannot loop, and the reconciler, on moto's server
with the functions run by Zappa's own handler (the pump)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from cloud.aws import session
from cloud.aws.deploy import apply_stage
from cloud.aws.lambda_invoker import LambdaInvoker
from cloud.aws.s3 import S3Bucket
from cloud.aws.stages import Deployment
from cloud.declaration import load_declaration
from cloud.events import FAILURE, SUCCESS, destination_record
from cloud.reconcile import reemit

from .conftest import BUCKET, create_lambdas
from .pump import LambdaPump
from .zappa_lambda import ZappaLambdas

CLIP = Path(__file__).resolve().parents[1] / "data" / "empty-scene.mkv"
DEV = {"corb-dev": "corb-dev-web", "corb-dev-detection": "corb-dev-detection"}
PROD = {"corb-prod": "corb-prod-web", "corb-prod-detection": "corb-prod-detection"}


def quiet(line: str) -> None:
    pass


def put(bus: str, source: str, detail_type: str, detail: dict) -> None:
    resp = session.client("events").put_events(Entries=[{
        "Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}])
    assert resp["FailedEntryCount"] == 0, resp


def failure(lambda_name: str, request_payload: Any, error: str = "VideoError") -> dict:
    record = destination_record(function="x", request_id=str(uuid.uuid4()), request_payload=request_payload,
                                response_payload={"errorType": error, "errorMessage": "boom"}, success=False,
                                attempts=3)
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{lambda_name}:live"
    record["requestContext"]["functionArn"] = arn
    return record


@pytest.fixture
def dev(aws: str, bucket_name: str, tmp_path: Path, database_url: str) -> Iterator[LambdaPump]:
    """Stage dev deployed (`zappa deploy` + `corb deploy`), its Lambdas run by the pump."""
    create_lambdas(DEV)
    apply_stage("dev", echo=quiet)
    env = {"DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": "t", "CORB_SECRET_KEY": "s",
           "CORB_DATA_DIR": str(tmp_path / "lambda")}
    lambdas = ZappaLambdas("dev", env)
    pump = LambdaPump(lambdas)
    pump.install()
    yield pump
    pump.stop()
    lambdas.close()


def test_each_stage_has_its_own_bus_and_the_design_rule_verbatim() -> None:
    for stage in ("dev", "prod"):
        assert Deployment.load(stage).bus == f"corb-{stage}"
        rules = {r.name: r for r in load_declaration(stage).rules}
        assert rules[f"corb-{stage}-cleaning-report"].pattern == {
            "detail": {"responsePayload": {"command_type": ["request_cleaning"]}}}


def test_events_on_prods_bus_never_reach_devs_functions(dev: LambdaPump) -> None:
    session.client("s3").create_bucket(Bucket="corb-video-prod")
    create_lambdas(PROD)
    apply_stage("prod", echo=quiet)
    command = {"command_type": "status", "sender": "+15550000002", "message_sid": "SM1", "args": {}}
    cleaning = destination_record(function="x", request_id="r1", request_payload={},
                                  response_payload={"command_type": "request_cleaning", "area": "lobby"},
                                  success=True, attempts=1)
    put("corb-prod", "corb.sms", "command", command)
    put("corb-prod", "lambda", SUCCESS, cleaning)
    put("corb-prod", "lambda", FAILURE, failure("corb-prod-detection", {"Records": []}))
    put("default", "lambda", FAILURE, failure("someone-elses-function", {"Records": []}))  # the account's
    assert dev.take() == []
    reached = sorted({(name, payload["function"]) for name, payload in dev.elsewhere})
    assert reached == [("corb-prod", "bot.handlers.cleaning.generate_report"),
                       ("corb-prod", "bot.handlers.status.handle"),
                       ("corb-prod", "cloud.dead_letters.record")]

    put("corb-dev", "corb.sms", "command", command)  # and dev's own bus does reach them
    [(name, payload, qualifier)] = dev.take()
    assert (name, payload["function"], qualifier) == ("corb-dev", "bot.handlers.status.handle", "live")


def test_a_recorder_failure_does_not_loop(dev: LambdaPump, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    # the database is down: the recorder fails every time it runs
    monkeypatch.setitem(dev.lambdas.modules["corb-dev"].ENVIRONMENT_VARIABLES, "DATABASE_URL",
                        f"sqlite:///{tmp_path}/no/such/dir/corb.db")
    dev.lambdas._active = None  # the next invocation is a cold start with that environment
    put("corb-dev", "lambda", FAILURE, failure("corb-dev-detection", {"Records": [{"s3": {}}]}))
    dev.run_until_idle(max_rounds=10)
    [run] = dev.runs
    assert (run.lambda_name, run.payload["function"], run.attempts) == (
        "corb-dev", "cloud.dead_letters.record", 3)
    assert run.error is not None and "unable to open database file" in run.error["errorMessage"]
    failures = [e for e in dev.bus_events() if e["detail-type"] == FAILURE]
    assert len(failures) == 2  # the detection failure, and the recorder's own, which nothing picks up
    assert failures[1]["detail"]["requestPayload"]["function"] == "cloud.dead_letters.record"


def test_the_reconciler_re_emits_segments_without_a_result_once(dev: LambdaPump) -> None:
    bucket = S3Bucket(BUCKET, session.client("s3"))
    s3 = session.client("s3")
    kept = s3.get_bucket_notification_configuration(Bucket=BUCKET)
    kept.pop("ResponseMetadata")
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={})  # a gap
    lost = bucket.upload(CLIP, "cameras/lobby/2026-11-30T04-00-00Z.mkv")
    bucket.put("cameras/lobby/notes.txt", b"not a segment")
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration=kept)
    delivered = bucket.upload(CLIP, "cameras/lobby/2026-11-30T04-01-00Z.mkv")
    notified = dev.take()
    assert [unquote_plus(p["Records"][0]["s3"]["object"]["key"]) for _, p, _ in notified] == [delivered.key]
    for name, payload, qualifier in notified:
        dev.invoke_async(name, payload, qualifier)
    invoker = LambdaInvoker(Deployment.load("dev"), dev.lambda_client)
    triggers = list(load_declaration("dev").s3_triggers)
    now = datetime.now(UTC)
    assert reemit(bucket, invoker, triggers, now) == []  # too recent: its first delivery may be on its way
    later = now + timedelta(minutes=11)
    [missed] = reemit(bucket, invoker, triggers, later)
    assert (missed.key, missed.etag, missed.function) == (lost.key, lost.etag, "detection.handler.handle")
    dev.run_until_idle()
    analysed = [r.result for r in dev.runs if r.lambda_name == "corb-dev-detection"]
    assert sorted(r["segment_key"] for r in analysed) == sorted([delivered.key, lost.key])
    assert not any(r.get("duplicate") for r in analysed)
    assert reemit(bucket, invoker, triggers, later) == []  # both have their result now
    assert reemit(bucket, invoker, triggers, now + timedelta(hours=7)) == []  # and old ones are left alone


def test_the_reconciler_has_nothing_to_do_on_the_embedded_runtime(corb_env: dict[str, str]) -> None:
    from cloud.reconcile import run

    assert run({}) == {"kind": "segments_reconciled", "reemitted": [],
                       "note": "the embedded watcher needs no reconciling"}
