"""What a bus event means, in a building manager's words, for the admin Events page.

The bus speaks the runtime's language (``Lambda Function Invocation Result - Success``, function ARNs,
``unmatched``); a manager wants "Max Member texted "status lobby"" or "Lobby video analysed: up to 7
people". ``describe`` turns one stored event into that sentence; the page keeps the raw event one click
away. Pure: the event's JSON and a phone-to-name map in, words out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

# A bus event's delivery status, as the page says it.
STATUS_WORDS = {"pending": "waiting", "delivered": "handled", "failed": "failed",
                "unmatched": "nothing to do"}

COMMAND_WORDS = {"status": "asked for the status", "cameras": "asked for the camera list",
                 "snapshot": "asked for a picture", "subscribe": "subscribed",
                 "unsubscribe": "unsubscribed", "request_cleaning": "asked for cleaning",
                 "done": "reported cleaning done"}


def _people(n: Any) -> str:
    try:
        n = int(n)
    except (TypeError, ValueError):
        return "people"
    return f"{n} {'person' if n == 1 else 'people'}"


def _request(r: Mapping[str, Any]) -> str:
    return f"cleaning request #{r['request_id']}" if r.get("request_id") is not None else "a cleaning request"


# What each function's result means (keyed by the result's ``kind`` or ``command_type``).
RESULT_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "segment_analysed": lambda r: (f"{r.get('camera', 'A camera')} video analysed: "
                                   f"up to {_people(r.get('peak'))}"),
    "segments_analysed": lambda r: f"{len(r.get('results') or [])} camera video(s) analysed",
    "segment_skipped": lambda r: f"Camera video skipped ({r.get('reason') or 'not a segment'})",
    "segment_recorded": lambda r: (f"{r.get('camera', 'Camera')} video recorded; "
                                   f"{r.get('alerts') or 0} alert(s) sent"),
    "request_cleaning": lambda r: f"{_request(r).capitalize()} recorded ({r.get('area') or 'no area'})",
    "request_cleaning_area_asked": lambda r: "Cleaning request without an area: asked which area",
    "cleaning_report": lambda r: f"Report written for {_request(r)}",
    "cleaning_report_sent": lambda r: f"Report for {_request(r)} sent to {r.get('cleaners', 0)} cleaner(s)",
    "cleaning_closed": lambda r: (f"{_request(r).capitalize()} closed" if r.get("request_id") is not None
                                  else "A cleaner's DONE was answered"),
    "retention_purged": lambda r: (f"Old recordings deleted (older than {r.get('retention_days')} days: "
                                   f"{r.get('detections', 0)} analyses)"),
    "dead_letter": lambda r: f"A failed task was set aside for replay ({r.get('function', '')})",
}


def _function(detail: Mapping[str, Any]) -> str:
    arn = str((detail.get("requestContext") or {}).get("functionArn", ""))
    return arn.split(":function:")[-1].split(":")[0]


def describe(body: str, names: Mapping[str, str]) -> str:
    """One sentence saying what happened; "" when the event cannot be read."""
    try:
        event = json.loads(body)
    except ValueError:
        return ""
    detail = event.get("detail") if isinstance(event, dict) else None
    if not isinstance(detail, dict):
        return ""
    if "requestContext" in detail:  # a function finished (a Lambda destination record)
        if str(event.get("detail-type", "")).endswith("Failure"):
            error = (detail.get("responsePayload") or {}).get("errorMessage", "") \
                if isinstance(detail.get("responsePayload"), dict) else ""
            return f"A task failed after its retries ({_function(detail)}){': ' + error if error else ''}"
        result = detail.get("responsePayload")
        if isinstance(result, dict):
            words = RESULT_WORDS.get(str(result.get("kind") or result.get("command_type") or ""))
            if words:
                return words(result)
            if result.get("to"):
                who = names.get(str(result["to"]), str(result["to"]))
                return f"Answered {who}"
        return f"Task finished ({_function(detail)})"
    if detail.get("command_type"):  # a text from a registered person
        sender = str(detail.get("sender") or "Someone")
        who = detail.get("sender_name") or names.get(sender, sender)
        what = COMMAND_WORDS.get(str(detail["command_type"]), str(detail["command_type"]))
        text = str(detail.get("text") or "")
        return f'{who} {what}: "{text[:80]}"' if text else f"{who} {what}"
    return ""
