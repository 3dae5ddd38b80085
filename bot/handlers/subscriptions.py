"""``subscribe [camera|all]`` and ``unsubscribe [camera|all]``: who gets an alert when people appear.

A subscription names one camera, or every camera (``camera_id`` NULL). No camera named means all.
An area subscribes to each of its cameras.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, cameras_named, dedupe_key, unwrap, user_by_phone
from bot.models import Camera, Subscription, User


def _has(s: Session, user: User, camera_id: int | None) -> bool:
    cond = Subscription.camera_id.is_(None) if camera_id is None else Subscription.camera_id == camera_id
    return s.scalar(select(Subscription.id).where(Subscription.user_id == user.id, cond)) is not None


def _targets(s: Session, payload: dict[str, Any]) -> list[Camera] | None | str:
    """The cameras meant, None for all, or a reply saying the camera is unknown."""
    if payload.get("camera") in (None, "all") and not payload.get("area") and (
            payload.get("camera") == "all" or not payload.get("note")):
        return None
    return cameras_named(s, payload)


def subscribe(s: Session, user: User, payload: dict[str, Any]) -> str:
    targets = _targets(s, payload)
    if isinstance(targets, str):
        return targets
    if targets is None:
        if _has(s, user, None):
            return replies.already_subscribed(None)
        s.add(Subscription(user_id=user.id, camera_id=None))
        return replies.subscribed(None, "ALL")
    new = [c for c in targets if not _has(s, user, c.id)]
    for cam in new:
        s.add(Subscription(user_id=user.id, camera_id=cam.id))
    names = ", ".join(c.name for c in targets)
    if not new:
        return replies.already_subscribed(names)
    return replies.subscribed(names, _undo_word(targets, payload))


def _undo_word(targets: list[Camera], payload: dict[str, Any]) -> str:
    """What to text after UNSUBSCRIBE to remove these subscriptions again: the camera's slug, or the
    area when an area subscribed several cameras (``unsubscribe`` takes the same words)."""
    if len(targets) == 1:
        return targets[0].slug
    return str(payload.get("area") or targets[0].area)


def unsubscribe(s: Session, user: User, payload: dict[str, Any]) -> str:
    targets = _targets(s, payload)
    if isinstance(targets, str):
        return targets
    if targets is None:
        gone = s.execute(delete(Subscription).where(Subscription.user_id == user.id)).rowcount
        return replies.unsubscribed(None) if gone else replies.not_subscribed(None)
    ids = [c.id for c in targets]
    names = ", ".join(c.name for c in targets)
    gone = s.execute(delete(Subscription).where(Subscription.user_id == user.id,
                                                Subscription.camera_id.in_(ids))).rowcount
    if gone:
        return replies.unsubscribed(names)
    if _has(s, user, None):
        return replies.follows_all(names)
    return replies.not_subscribed(names)


def handle(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)

    def work(s: Session) -> list[Reply]:
        user = user_by_phone(s, payload.get("sender"))
        if user is None:
            return []  # removed since the message arrived: nobody to answer
        act = subscribe if payload.get("command_type") == "subscribe" else unsubscribe
        return [Reply(user.phone, act(s, user, payload))]

    act_once("subscriptions", dedupe_key(event, payload, "message_sid"), work)
    return {"command_type": payload.get("command_type"), "to": payload.get("sender")}
