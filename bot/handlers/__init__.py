"""What every bot handler shares: reading the event, acting once, replying safely.

Handlers are Lambda-shaped (``handle(event, context)``) and receive one of two shapes:
- a ``corb.sms`` EventBridge event: the command is ``event["detail"]``;
- a Lambda destination event (``source`` ``lambda``): the previous function's result is
  ``event["detail"]["responsePayload"]``.
``unwrap`` returns the payload either way.

Delivery is at least once, so each handler runs its writes through ``act_once``: a dedupe key (the
command's ``message_sid``, a request id, a segment's key and eTag; the event id as a fallback) is
claimed with ``cloud.idempotency.first_time`` in the same transaction as the handler's writes and its
outbound messages (queued rows). After commit the queued rows are delivered; a retry of a handler that
committed but died before delivering finds those rows and delivers just them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot import replies
from bot.messenger import pending, queue
from bot.models import Camera, Setting, User
from bot.services import Services, services
from cloud.idempotency import first_time

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """One outbound text (an MMS when ``media_key`` names a bucket picture)."""

    to: str
    body: str
    media_key: str | None = None


def unwrap(event: Any) -> dict:
    """The payload to act on: a destination event's ``responsePayload``, an EventBridge event's
    ``detail``, or (a direct invocation) the event itself."""
    if not isinstance(event, Mapping):
        raise TypeError(f"expected an event object, got {type(event).__name__}")
    detail = event.get("detail")
    if isinstance(detail, Mapping) and "detail_ref" in detail:  # EventBridge bus offloaded a large detail
        from cloud.aws.eventbridge import resolve_detail

        detail = resolve_detail(event, services().bucket)["detail"]
    if isinstance(detail, Mapping):
        if "responsePayload" in detail and (event.get("source") == "lambda" or "requestContext" in detail):
            payload = detail.get("responsePayload")
            if not isinstance(payload, Mapping):
                raise ValueError("the destination event carries no result object")
            return dict(payload)
        return dict(detail)
    return dict(event)


def dedupe_key(event: Mapping[str, Any], payload: Mapping[str, Any], *fields: str) -> str:
    """The business key of an event (the first of ``fields`` present in the payload), else its id."""
    for name in fields:
        value = payload.get(name)
        if value not in (None, ""):
            return f"{name}={value}"
    if event.get("id"):
        return f"event={event['id']}"
    raise ValueError("the event has no id and no dedupe key")


def act_once(scope: str, key: str, work: Callable[[Session], Sequence[Reply]],
             svc: Services | None = None) -> bool:
    """Run ``work`` once per (scope, key) and send the replies it returns, at most once each.

    ``work``'s writes, the dedupe claim and the queued replies commit together; delivery follows the
    commit. Returns whether this call did the work (False: a duplicate, which only finishes delivery).
    """
    svc = svc or services()
    outbox_key = f"{scope}:{key}"
    with svc.session() as s:
        fresh = first_time(s, scope, key)
        if fresh:
            for i, reply in enumerate(work(s)):
                queue(s, outbox_key, i, reply.to, reply.body, media_key=reply.media_key,
                      from_number=svc.config.twilio_from or "corb")
        else:
            log.info("%s: %s already handled", scope, key)
    deliver_pending(svc, outbox_key)
    return fresh


def deliver_pending(svc: Services, outbox_key: str) -> int:
    """Deliver every undelivered row queued under ``outbox_key``; raise the first failure after trying
    all (one bad number must not hold back the others; the retry redelivers only the failed ones)."""
    with svc.sessions() as s:
        ids = pending(s, outbox_key)
    errors: list[Exception] = []
    for message_id in ids:
        try:
            svc.messenger.deliver(message_id)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - collected and raised below
            log.warning("delivering message %s failed: %s", message_id, exc)
            errors.append(exc)
    if errors:
        raise errors[0]
    return len(ids)


# -- small shared look-ups ---------------------------------------------------------------------------
def setting_int(s: Session, key: str, default: int) -> int:
    """A building setting (the ``settings`` table, editable by admins) over the configured default."""
    value = s.scalar(select(Setting.value).where(Setting.key == key))
    try:
        return int(value) if value is not None else default
    except ValueError:
        log.warning("setting %s=%r is not a number; using %s", key, value, default)
        return default


def user_by_phone(s: Session, phone: str | None) -> User | None:
    return s.scalars(select(User).where(User.phone == phone)).first() if phone else None


def all_cameras(s: Session) -> list[Camera]:
    return list(s.scalars(select(Camera).order_by(Camera.slug)))


def cameras_named(s: Session, payload: Mapping[str, Any]) -> list[Camera] | str:
    """The cameras a command means (its camera, else its area's, else all), or a reply explaining why none.

    A named camera that does not exist (the grammar leaves unmatched words in ``note``) is an error
    rather than "all cameras": the sender asked about something specific.
    """
    camera, area, note = payload.get("camera"), payload.get("area"), (payload.get("note") or "").strip()
    if camera and camera != "all":
        found = s.scalars(select(Camera).where(Camera.slug == camera)).first()
        if found:
            return [found]
        return replies.unknown_camera(camera, [c.slug for c in all_cameras(s)])
    if area:
        in_area = list(s.scalars(select(Camera).where(or_(func.lower(Camera.area) == area.lower(),
                                                          Camera.slug == area)).order_by(Camera.slug)))
        if in_area:
            return in_area
        return replies.unknown_camera(area, [c.slug for c in all_cameras(s)])
    cams = all_cameras(s)
    if note and camera != "all":
        return replies.unknown_camera(note, [c.slug for c in cams])
    return cams or replies.NO_CAMERAS
