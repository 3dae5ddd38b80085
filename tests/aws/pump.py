"""The Lambda pump: plays the one part of AWS that moto's server does not, running the Lambdas.

moto stores Lambda functions but does not run their code: its EventBridge raises on a Lambda target and
its S3 drops a Lambda notification. The pump teaches the (in-process) moto server one thing, where a
Lambda's invocation goes: each delivery moto makes to a Lambda ARN (qualified or not) is appended to that
Lambda's inbox instead. Nothing in the account is re-pointed, so ``corb deploy`` and Zappa see exactly what
they made, and a trigger that Zappa deletes really stops delivering. Everything else stays moto's:

- **S3 -> Lambda.** moto matches each PUT against the bucket's notification filters and builds the S3
  event record (with the notification Id as ``configurationId``), delivered to the Lambda's inbox.
- **EventBridge -> Lambda.** moto evaluates each rule's pattern on the bus the event was put on and
  applies the target's input transformer; the result lands in the target Lambda's inbox.
- **Lambda's Invoke API.** Code that queues an invocation itself (``LambdaInvoker``, e.g. a dead-letter
  replay or the reconciler) gets ``pump.lambda_client``, which talks to moto through a recording proxy:
  each ``InvocationType=Event`` request that crossed the wire is then run like any other async invocation.
- **Running a function.** An inbox entry is invoked through the real entry point and Zappa's own
  ``LambdaHandler`` with the packaged settings (``ZappaLambdas``), as an async invocation: up to
  ``MaximumRetryAttempts`` retries, then the onSuccess / onFailure destination, read from the function's
  event-invoke config, put on the bus with ``PutEvents`` as Lambda's destination record.

Limits (what differs from AWS): every Lambda runs in this process, one invocation at a time, and the
Lambdas of both stages share its per-process caches (reset once, at the start, as a cold start);
retries happen at once, not after Lambda's one and two minutes; timeouts and memory limits are not
enforced; IAM policies, resource policies (``AddPermission``) and presigned-URL expiry are not checked
by moto, and moto keeps one resource policy and one event-invoke config per function where AWS keeps
one per alias; moto's events carry ``time`` as epoch seconds and an extra ``ingestion-time``, which the
pump normalises to EventBridge's shape; moto's S3 records have no ``sequencer`` and encode ``/`` in keys.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import traceback
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cloud.aws import session
from cloud.events import FAILURE, SUCCESS, destination_record

from .wire import WireProxy
from .zappa_lambda import FakeContext, ZappaLambdas

TAP_RULE = "pump-tap"
LATEST = "$LATEST"
INVOKE_PATH = re.compile(r"^POST /2015-03-31/functions/(?P<name>[^/?]+)/invocations(\?.*)?$")


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
    bus: str = "corb-dev"
    inboxes: dict[str, deque] = field(default_factory=dict)  # Lambda name -> payloads delivered to it
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
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []
        self.delivered: list[tuple[str, Any]] = []  # every (Lambda, payload) moto handed a Lambda, in order
        self.elsewhere: list[tuple[str, Any]] = []  # the same, for Lambdas outside this deployment

    def stop(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()
        self.proxy.stop()

    def _invoked(self) -> list[tuple[str, Any, str]]:
        """Async invocations sent through ``lambda_client`` since the last look."""
        new = self.proxy.recorded[self._invocations_seen:]
        self._invocations_seen += len(new)
        out = []
        for rec in new:
            m = INVOKE_PATH.match(rec.target)
            if m and rec.headers.get("X-Amz-Invocation-Type") == "Event":
                name = unquote(m["name"]).split(":function:")[-1].split(":")[0]
                query = parse_qs(urlsplit(rec.target.split(" ", 1)[1]).query)
                qualifier = query.get("Qualifier", [LATEST])[0]
                out.append((name, json.loads(rec.body or b"null"), qualifier))
        return out

    def _queue(self, name: str) -> tuple[str, str]:
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        arn = attrs["QueueArn"]
        return url, arn

    @staticmethod
    def _is_lambda(arn: str) -> bool:
        parts = arn.split(":")
        return len(parts) >= 7 and parts[2] == "lambda" and parts[5] == "function"

    def deliver(self, arn: str, payload: Any) -> None:
        """One invocation of the Lambda ``arn`` names (any qualifier); another deployment's Lambda (another
        stage) gets it in ``elsewhere``, which nothing runs."""
        parts = arn.split(":")
        name, qualifier = parts[6], (parts[7] if len(parts) > 7 else LATEST)
        with self._lock:
            if name in self.inboxes:
                self.inboxes[name].append((payload, qualifier))
                self.delivered.append((name, payload))
            else:
                self.elsewhere.append((name, payload))

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        self._undo.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    def _hook_moto(self) -> None:
        """Route moto's deliveries to a Lambda ARN into the pump's inboxes (moto runs in this process)."""
        import moto.s3.notifications as s3_notifications
        from moto.events.models import Rule
        from moto.events.utils import EventTemplateParser

        pump = self
        send_to_targets = Rule.send_to_targets

        def rule_send(rule: Any, original_event: dict, transform_input: bool = True) -> None:
            if rule.scheduled_expression:  # EventBridge puts no bus event through a schedule's rule
                return
            lambdas = [t for t in rule.targets if pump._is_lambda(t["Arn"])]
            if lambdas and rule.event_pattern.matches_event(original_event):
                for target in lambdas:
                    transformer = target.get("InputTransformer") or {}
                    event = EventTemplateParser.parse(input_template=transformer.get("InputTemplate"),
                                                      input_paths_map=transformer.get("InputPathsMap", {}),
                                                      event=original_event) if transform_input \
                        else copy.deepcopy(original_event)
                    pump.deliver(target["Arn"], normalise(event))
            others = [t for t in rule.targets if not pump._is_lambda(t["Arn"])]
            if others:
                shallow = copy.copy(rule)
                shallow.targets = others
                send_to_targets(shallow, original_event, transform_input)

        def invoke_lambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
            pump.deliver(fn_arn, event_body)

        self._patch(Rule, "send_to_targets", rule_send)
        self._patch(s3_notifications, "_invoke_awslambda", invoke_lambda)

    def install(self, buckets: list[str] | None = None) -> None:
        """Read each Lambda's async config, hook moto, and tap the bus (``buckets``: kept for callers)."""
        for name in self.lambdas.deployment.lambda_names:
            self.inboxes[name] = deque()
            self.refresh(name)
        self._hook_moto()
        self.tap_url, tap_arn = self._queue(f"pump-tap-{self.bus}")
        self.events.put_rule(Name=TAP_RULE, EventBusName=self.bus,
                             EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        self.events.put_targets(Rule=TAP_RULE, EventBusName=self.bus, Targets=[{"Id": "tap", "Arn": tap_arn}])
        self.seen: list[dict] = []

    def refresh(self, name: str) -> None:
        """(Re)read a Lambda's async config: retries and destinations, as Lambda reads them per invocation."""
        fn_arn = self.lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
        conf = self.lam.get_function_event_invoke_config(FunctionName=name)
        dest = conf.get("DestinationConfig") or {}
        self.configs[name] = AsyncConfig(fn_arn, int(conf.get("MaximumRetryAttempts", 2)),
                                         (dest.get("OnSuccess") or {}).get("Destination"),
                                         (dest.get("OnFailure") or {}).get("Destination"))

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

    def take(self) -> list[tuple[str, Any, str]]:
        """Everything delivered to the Lambdas since the last look, oldest first: (Lambda, payload,
        the qualifier invoked: ``live`` for Corb's triggers, ``$LATEST`` for the bare function)."""
        with self._lock:
            work = [(name, *inbox.popleft()) for name, inbox in self.inboxes.items()
                    for _ in range(len(inbox))]
        return work + self._invoked()

    def run_until_idle(self, max_rounds: int = 50) -> None:
        """Invoke queued work until a full pass finds every Lambda's inbox empty."""
        for _ in range(max_rounds):
            work = self.take()
            if not work:
                return
            for name, payload, qualifier in work:
                self.invoke_async(name, payload, qualifier)
        last = [r.lambda_name for r in self.runs[-5:]]
        raise AssertionError(f"still busy after {max_rounds} rounds: {last}")

    def invoke_async(self, name: str, payload: Any, qualifier: str = LATEST) -> Run:
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
            invoked = f"{conf.function_arn}:{qualifier}"  # as Lambda reports it: the version or alias
            record["requestContext"]["functionArn"] = invoked
            bus = target.rsplit("/", 1)[-1]
            resp = self.events.put_events(Entries=[{
                "Source": "lambda", "DetailType": SUCCESS if success else FAILURE,
                "Detail": json.dumps(record),
                "Resources": [invoked], "EventBusName": bus}])
            assert resp["FailedEntryCount"] == 0, resp
        return run
