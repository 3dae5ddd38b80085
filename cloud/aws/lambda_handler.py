"""How an event reaches a Corb function inside a Zappa Lambda.

Zappa's ``LambdaHandler`` routes API Gateway requests (to the WSGI app), S3 records (by bucket ARN),
scheduled events (by rule name) and ``{"command": "module.function"}`` payloads. An EventBridge event
from a custom-pattern rule (a ``corb.sms`` command, a Lambda destination record) matches none of these,
and Zappa returns ``None`` for it: dropped, with no error.

Corb's mechanism: every declared rule's target carries an EventBridge **input transformer** that wraps
the event in a command Zappa already routes::

    {"command": "cloud.aws.lambda_handler.route", "function": "<module.function>", "rule": "<rule name>",
     "event": <aws.events.event.json>}

``route`` unwraps it and calls the function with the original event, byte for byte what AWS sent. Why
this rather than re-matching the declared patterns inside the Lambda: all bot handlers share one Lambda,
so an event matching two rules invokes it twice, and an in-Lambda matcher could not tell the two
invocations apart (each would run every matching function). With the function named by the rule's own
target, one invocation runs exactly one function, its result is that function's destination record
(chaining works), and EventBridge stays the only pattern evaluator in production.

``lambda_handler`` (the stage's ``lambda_handler`` setting) delegates everything to Zappa's handler and
adds one guard: an EventBridge event that Zappa would silently drop raises ``UnroutableEvent`` instead,
so it is retried and lands in the dead letters (onFailure), where it can be seen and replayed.
"""

from __future__ import annotations

import json
from typing import Any

from cloud.functions import resolve

ROUTE = "cloud.aws.lambda_handler.route"
# Only Corb's own code may be named by an envelope (Zappa's "command" would import anything).
ALLOWED_PACKAGES = ("bot.", "cloud.", "detection.")
SCHEDULED = "Scheduled Event"


class UnroutableEvent(RuntimeError):
    """An event Zappa's handler would drop: no rule target wrapped it (run ``corb deploy``)."""


class FunctionTypeError(RuntimeError):
    """A ``TypeError`` raised inside a function, re-raised as something else: Zappa's ``run_function``
    answers any ``TypeError`` by calling the function again with fewer arguments, which would run a
    failing handler twice more and hide its error behind a signature complaint."""


def envelope(function: str, event: Any, *, rule: str | None = None) -> dict:
    """The payload that makes Zappa's handler run ``function`` on ``event`` (an envelope is re-wrapped)."""
    _, inner = unwrap(event)
    payload: dict[str, Any] = {"command": ROUTE, "function": function}
    if rule:
        payload["rule"] = rule
    payload["event"] = inner
    return payload


def is_envelope(payload: Any) -> bool:
    return isinstance(payload, dict) and payload.get("command") == ROUTE and "function" in payload \
        and "event" in payload


def unwrap(payload: Any) -> tuple[str | None, Any]:
    """``(function, event)`` of an envelope; ``(None, payload)`` for anything else."""
    if is_envelope(payload):
        return str(payload["function"]), payload["event"]
    return None, payload


def input_transformer(function: str, rule: str) -> dict:
    """The rule target's ``InputTransformer``: the envelope with the whole event substituted in.

    ``<aws.events.event.json>`` is EventBridge's predefined variable for the full original event; it may
    only stand as a JSON value, which is how it is used. Nothing else is substituted, so the template is
    plain JSON with one placeholder.
    """
    head = json.dumps({"command": ROUTE, "function": function, "rule": rule})
    return {"InputPathsMap": {}, "InputTemplate": head[:-1] + ', "event": <aws.events.event.json>}'}


def _check(function: str) -> None:
    if not function.startswith(ALLOWED_PACKAGES) or function.count(".") < 1:
        raise UnroutableEvent(f"refusing to route to {function!r}: not a Corb function")


def route(payload: dict, context: Any = None) -> Any:
    """Zappa's command target: run the enveloped function on the original event, return its result."""
    function, event = unwrap(payload)
    if function is None:
        raise UnroutableEvent("route() needs an envelope: {'command', 'function', 'event'}")
    _check(function)
    handler = resolve(function)
    try:
        return handler(event, context)
    except TypeError as exc:
        raise FunctionTypeError(f"{function}: {type(exc).__name__}: {exc}") from exc


def would_drop(event: Any) -> bool:
    """Whether Zappa's handler would return without running anything for this EventBridge event."""
    return (isinstance(event, dict) and "detail-type" in event and "source" in event
            and event.get("detail-type") != SCHEDULED and not event.get("command"))


def lambda_handler(event: Any, context: Any) -> Any:
    """The Lambda entry point (``"lambda_handler": "cloud.aws.lambda_handler.lambda_handler"``)."""
    if would_drop(event):
        raise UnroutableEvent(
            f"EventBridge event {event.get('source')}/{event.get('detail-type')} ({event.get('id')}) reached "
            "the Lambda without Corb's input transformer; run `corb deploy STAGE` to fix the rule targets")
    try:
        from zappa.handler import lambda_handler as zappa_handler
    except ImportError:  # pragma: no cover - a package with only Zappa's root copy of handler.py
        from handler import lambda_handler as zappa_handler  # type: ignore[no-redef]
    return zappa_handler(event, context)
