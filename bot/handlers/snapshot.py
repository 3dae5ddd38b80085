"""``snapshot [camera]``: an MMS with the latest annotated picture (sent as a signed, expiring link)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, cameras_named, dedupe_key, unwrap
from bot.handlers.alerts import best_frame
from bot.models import Detection
from bot.services import services
from cloud import results
from cloud.bucket import NoSuchKey

log = logging.getLogger(__name__)


def picture_facts(detection: Detection) -> tuple[datetime, int]:
    """The picture's own time and head count, as burnt into it: the result stored inside the snapshot
    (:mod:`cloud.results`) names its best frame. Without a readable result, the segment's start and peak
    (never later than the frame)."""
    try:
        result = results.extract(services().bucket.get(detection.snapshot_key or ""))
    except NoSuchKey:
        result = None
    if result is None:
        log.info("no stored result for %s; using the segment's start", detection.segment_key)
    return best_frame(result or {}, detection.start_time, detection.peak)


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
