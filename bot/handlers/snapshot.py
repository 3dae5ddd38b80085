"""``snapshot [camera]``: an MMS with the latest annotated picture (sent as a signed, expiring link)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, cameras_named, dedupe_key, unwrap
from bot.handlers.alerts import picture_facts
from bot.models import Detection
from bot.services import services


def answer(s: Session, payload: dict[str, Any]) -> Reply:
    to = payload["sender"]
    cams = cameras_named(s, payload)
    if isinstance(cams, str):
        return Reply(to, cams)
    by_id = {c.id: c for c in cams}
    latest = s.scalars(select(Detection)
                       .where(Detection.camera_id.in_(by_id), Detection.snapshot_key.is_not(None))
                       .order_by(Detection.end_time.desc(), Detection.id.desc()).limit(1)).first()
    if latest is None:
        return Reply(to, replies.no_snapshot(cams[0].name if len(cams) == 1 else None))
    taken, people = picture_facts(latest)
    caption = replies.snapshot_caption(by_id[latest.camera_id].name, taken, people,
                                       services().config.media_url_ttl)
    return Reply(to, caption, media_key=latest.snapshot_key)


def handle(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)
    act_once("snapshot", dedupe_key(event, payload, "message_sid"), lambda s: [answer(s, payload)])
    return {"command_type": "snapshot", "to": payload.get("sender")}
