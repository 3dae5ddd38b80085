"""``status [camera]`` and ``cameras``: how many people each camera sees now, from its latest detection."""

from __future__ import annotations

import json
from datetime import datetime, time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, all_cameras, cameras_named, dedupe_key, unwrap
from bot.models import Camera, Detection
from cloud.db import utcnow


def last_count(counts_json: str | None, peak: int) -> int:
    """People in a segment's last analysed frame (its peak when no frame was analysed)."""
    try:
        counts = json.loads(counts_json or "[]")
    except ValueError:
        counts = []
    return int(counts[-1]) if counts else int(peak)


def camera_status(s: Session, camera: Camera, now: datetime) -> replies.CameraStatus:
    latest = s.scalars(select(Detection).where(Detection.camera_id == camera.id)
                       .order_by(Detection.start_time.desc(), Detection.id.desc()).limit(1)).first()
    if latest is None:
        return replies.CameraStatus(camera.name, None, None, None, 0)
    last_seen = s.scalar(select(func.max(Detection.end_time))
                         .where(Detection.camera_id == camera.id, Detection.peak > 0))
    midnight = datetime.combine(now.date(), time.min)
    peak_today = s.scalar(select(func.max(Detection.peak))
                          .where(Detection.camera_id == camera.id, Detection.start_time >= midnight)) or 0
    return replies.CameraStatus(camera.name, last_count(latest.counts, latest.peak), latest.end_time,
                                last_seen, int(peak_today))


def answer(s: Session, payload: dict[str, Any]) -> str:
    if payload.get("command_type") == "cameras":
        return replies.cameras([(c.slug, c.name, c.area) for c in all_cameras(s)])
    cams = cameras_named(s, payload)
    if isinstance(cams, str):
        return cams
    now = utcnow()
    return replies.status([camera_status(s, c, now) for c in cams])


def handle(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)

    def work(s: Session) -> list[Reply]:
        return [Reply(payload["sender"], answer(s, payload))]

    act_once("status", dedupe_key(event, payload, "message_sid"), work)
    return {"command_type": payload.get("command_type"), "to": payload.get("sender")}
