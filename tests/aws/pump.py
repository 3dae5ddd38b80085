"""The Lambda pump: plays the one part of AWS that moto's server does not, running the Lambdas.

moto stores Lambda functions but does not run their code, and its EventBridge cannot deliver to a Lambda
target (its PutEvents fails on one). Everything else stays moto's, over HTTP:

- **S3 -> Lambda.** ``install`` reads the bucket's notification configuration (as ``corb deploy`` wrote
  it) and re-points each Lambda configuration, same Id, events and prefix/suffix filters, at an SQS
  queue standing for that Lambda. moto then matches each PUT against the filters and emits the S3
  event records itself.
- **EventBridge -> Lambda.** Every rule target that names one of the deployment's Lambdas is re-pointed
  at that Lambda's queue, keeping its Id and input transformer: moto evaluates the rule's pattern and
  applies the transformer, so the queue receives exactly what the Lambda would.
- **Lambda's Invoke API.** Code that queues an invocation itself (``LambdaInvoker``, e.g. a dead-letter
  replay) gets ``pump.lambda_client``, which talks to moto through a recording proxy: each
  ``InvocationType=Event`` request that crossed the wire is then run like any other async invocation.
- **Running a function.** A message is invoked through the real entry point and Zappa's own
  ``LambdaHandler`` with the packaged settings (``ZappaLambdas``), as an async invocation: up to
  ``MaximumRetryAttempts`` retries, then the onSuccess / onFailure destination, read from the function's
  event-invoke config, put on the bus with ``PutEvents`` as Lambda's destination record.

Limits (what differs from AWS): every Lambda runs in this process, one invocation at a time, and the
Lambdas of both stages share its per-process caches (reset once, at the start, as a cold start);
retries happen at once, not after Lambda's one and two minutes; timeouts and memory limits are not
enforced; IAM policies, resource policies (``AddPermission``) and presigned-URL expiry are not checked
by moto; moto's events carry ``time`` as epoch seconds and an extra ``ingestion-time``, which the pump
normalises to EventBridge's shape; moto's S3 records have no ``sequencer`` and encode ``/`` in keys;
the ``s3:TestEvent`` S3 sends to a newly configured queue is dropped (a Lambda never gets one).
"""

from __future__ import annotations

import json
import re
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from cloud.aws import session
from cloud.events import FAILURE, SUCCESS, destination_record

from .wire import WireProxy
from .zappa_lambda import FakeContext, ZappaLambdas

TAP_RULE = "pump-tap"
INVOKE_PATH = re.compile(r"^POST /2015-03-31/functions/(?P<name>[^/]+)/invocations$")


def _normalise(event: Any) -> Any:
    """moto's event -> EventBridge's: ISO ``time``, no ``ingestion-time``."""
    if isinstance(event, dict) and "detail-type" in event:
        event = dict(event)
        event.pop("ingestion-time", None)
        if isinstance(event.get("time"), int | float):
            event["time"] = datetime.fromtimestamp(event["time"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def normalise(payload: Any) -> Any:
    if isinstance(payload, dict) and isinstance(payload.get("event"), dict):
        return {**payload, "event": _normalise(payload["event"])}
    return _normalise(payload)


@dataclass
class Run:
    lambda_name: str
    payload: Any
    attempts: int
    result: Any = None
    error: dict | None = None


@dataclass
class AsyncConfig:
    function_arn: str
    retries: int
    on_success: str | None
    on_failure: str | None


@dataclass
class LambdaPump:
    lambdas: ZappaLambdas
    bus: str = "default"
    queues: dict[str, str] = field(default_factory=dict)  # Lambda name -> queue URL
    configs: dict[str, AsyncConfig] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    tap_url: str = ""
    endpoint: str | None = None

    def __post_init__(self) -> None:
        self.events = session.client("events")
        self.sqs = session.client("sqs")
        self.s3 = session.client("s3")
        self.lam = session.client("lambda")
        self.proxy = WireProxy(self.endpoint or self.lam.meta.endpoint_url).start()
        self.lambda_client = session.client("lambda", endpoint_url=self.proxy.url)
        self._invocations_seen = 0

    def stop(self) -> None:
        self.proxy.stop()

    def _invoked(self) -> list[tuple[str, Any]]:
        """Async invocations sent through ``lambda_client`` since the last look."""
        new = self.proxy.recorded[self._invocations_seen:]
        self._invocations_seen += len(new)
        out = []
        for rec in new:
            m = INVOKE_PATH.match(rec.target)
            if m and rec.headers.get("X-Amz-Invocation-Type") == "Event":
                name = unquote(m["name"]).split(":function:")[-1].split(":")[0]
                out.append((name, json.loads(rec.body or b"null")))
        return out

    def _queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        arn = attrs["QueueArn"]
        return url, arn

    def install(self, buckets: list[str]) -> None:
        arn_to_name: dict[str, str] = {}
        queue_arns: dict[str, str] = {}
        for name in self.lambdas.deployment.lambda_names:
            fn_arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
            arn_to_name[fn_arn] = name
            conf = self.lam.get_function_event_invoke_config(FunctionName=name)
            dest = conf.get("DestinationConfig") or {}
            self.configs[name] = AsyncConfig(fn_arn, int(conf.get("MaximumRetryAttempts", 2)),
                                             (dest.get("OnSuccess") or {}).get("Destination"),
                                             (dest.get("OnFailure") or {}).get("Destination"))
            self.queues[name], queue_arns[name] = self._queue(f"pump-{name}")
        for rule in self.events.list_rules(EventBusName=self.bus)["Rules"]:
            targets = self.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=self.bus)["Targets"]
            for target in targets:
                name = arn_to_name.get(target["Arn"].split(":$")[0])
                if name is not None:
                    self.events.put_targets(Rule=rule["Name"], EventBusName=self.bus,
                                            Targets=[{**target, "Arn": queue_arns[name]}])
        for bucket in buckets:
            conf = self.s3.get_bucket_notification_configuration(Bucket=bucket)
            conf.pop("ResponseMetadata", None)
            kept, queued = [], list(conf.get("QueueConfigurations", []))
            for c in conf.get("LambdaFunctionConfigurations", []):
                name = arn_to_name.get(c["LambdaFunctionArn"].split(":$")[0])
                if name is None:
                    kept.append(c)
                    continue
                queued.append({"Id": c.get("Id", name), "QueueArn": queue_arns[name], "Events": c["Events"],
                               **({"Filter": c["Filter"]} if "Filter" in c else {})})
            conf["LambdaFunctionConfigurations"], conf["QueueConfigurations"] = kept, queued
            self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=conf)
        self.tap_url, tap_arn = self._queue("pump-tap")
        self.events.put_rule(Name=TAP_RULE, EventBusName=self.bus,
                             EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        self.events.put_targets(Rule=TAP_RULE, EventBusName=self.bus, Targets=[{"Id": "tap", "Arn": tap_arn}])
        self.seen: list[dict] = []

    # -- running ---------------------------------------------------------------------------------------
    def _receive(self, url: str) -> list[Any]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                out.append(normalise(json.loads(m["Body"])))

    def bus_events(self) -> list[dict]:
        """Every event the bus has carried so far (a catch-all rule to a queue)."""
        self.seen.extend(self._receive(self.tap_url))
        return list(self.seen)

    def run_until_idle(self, max_rounds: int = 50) -> None:
        """Invoke queued work until a full pass finds every Lambda's queue empty."""
        for _ in range(max_rounds):
            # S3 sends an "s3:TestEvent" to a queue when it is configured as a destination; a Lambda
            # destination never receives one, so the stand-in queue's is dropped.
            work = [(name, payload) for name, url in self.queues.items() for payload in self._receive(url)
                    if not (isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent")]
            work += self._invoked()
            if not work:
                return
            for name, payload in work:
                self.invoke_async(name, payload)
        last = [r.lambda_name for r in self.runs[-5:]]
        raise AssertionError(f"still busy after {max_rounds} rounds: {last}")

    def invoke_async(self, name: str, payload: Any) -> Run:
        conf = self.configs[name]
        request_id = str(uuid.uuid4())
        run = Run(name, payload, 0)
        for attempt in range(1, conf.retries + 2):
            run.attempts = attempt
            context = FakeContext(name)
            context.aws_request_id = request_id
            try:
                result = self.lambdas.invoke(name, payload, context)
                run.result, run.error = json.loads(json.dumps(result)), None  # Lambda returns JSON
                break
            except Exception as exc:  # noqa: BLE001 - what Lambda's runtime reports as the function error
                run.error = {"errorMessage": str(exc), "errorType": type(exc).__name__,
                             "requestId": request_id,
                             "stackTrace": traceback.format_tb(exc.__traceback__)}
        self.runs.append(run)
        success = run.error is None
        target = conf.on_success if success else conf.on_failure
        if target:
            record = destination_record(function=name, request_id=request_id, request_payload=payload,
                                        response_payload=run.result if success else run.error,
                                        success=success, attempts=run.attempts)
            record["requestContext"]["functionArn"] = f"{conf.function_arn}:$LATEST"
            bus = target.rsplit("/", 1)[-1]
            resp = self.events.put_events(Entries=[{
                "Source": "lambda", "DetailType": SUCCESS if success else FAILURE,
                "Detail": json.dumps(record),
                "Resources": [f"{conf.function_arn}:$LATEST"], "EventBusName": bus}])
            assert resp["FailedEntryCount"] == 0, resp
        return run
