"""``status [camera]`` and ``cameras``: how many people each camera sees now, from its latest detection."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, all_cameras, cameras_named, dedupe_key, unwrap
from bot.models import Camera, Detection
from bot.services import services
from cloud.db import utcnow


def last_count(counts_json: str | None, peak: int) -> int:
    """People in a segment's last analysed frame (its peak when no frame was analysed)."""
    try:
        counts = json.loads(counts_json or "[]")
    except ValueError:
        counts = []
    return int(counts[-1]) if counts else int(peak)


# A count is "now" while the camera's next segment could not have arrived yet: two segment cadences
# (one to record the next segment, one of slack for a slow upload) plus the analysis.
ANALYSIS_SLACK = timedelta(seconds=15)
CADENCE_SAMPLE = 6  # recent segments whose spacing gives the camera's cadence
MIN_CADENCE = timedelta(seconds=5)


def cadence(starts: list[datetime], last_duration: timedelta) -> timedelta:
    """How often a camera sends a segment: the median gap between its recent segments' starts (newest
    first), or the last segment's length when it has sent only one."""
    gaps = sorted(a - b for a, b in zip(starts, starts[1:], strict=False) if a > b)
    typical = gaps[len(gaps) // 2] if gaps else last_duration
    return max(typical, MIN_CADENCE)


def is_fresh(as_of: datetime, every: timedelta, now: datetime) -> bool:
    return now - as_of <= 2 * every + ANALYSIS_SLACK


def _counts(detection: Detection) -> list[int]:
    try:
        return [int(c) for c in json.loads(detection.counts or "[]")]
    except (TypeError, ValueError):
        return []


def frame_time(detection: Detection, index: int, n: int) -> datetime:
    """When analysed frame ``index`` of ``n`` was seen, never later than it: frames are sampled evenly
    from the segment's start, one every (length / n) at most."""
    span = detection.end_time - detection.start_time
    return detection.start_time + (span * index / n if n else timedelta(0))


def last_frame_time(detection: Detection) -> datetime:
    n = len(_counts(detection))
    return frame_time(detection, max(n - 1, 0), n)


def last_seen(s: Session, camera: Camera) -> datetime | None:
    """The last analysed frame that showed someone (the segment's start if it analysed no frame)."""
    found = s.scalars(select(Detection).where(Detection.camera_id == camera.id, Detection.peak > 0)
                      .order_by(Detection.start_time.desc(), Detection.id.desc()).limit(1)).first()
    if found is None:
        return None
    counts = _counts(found)
    with_people = [i for i, c in enumerate(counts) if c > 0]
    return frame_time(found, with_people[-1], len(counts)) if with_people else found.start_time


def camera_status(s: Session, camera: Camera, now: datetime,
                  video_until: datetime | None = None) -> replies.CameraStatus:
    """``video_until``: how far the camera agent has the video of a quiet segment (``agent.json``).
    A quiet segment is not analysed because nothing in it changed, or because the agent's person check saw
    nobody at any of its keyframes, the first of which ended the last analysed segment: either way the
    latest count holds through it, the count is as of then, and the camera is not silent."""
    recent = list(s.scalars(select(Detection).where(Detection.camera_id == camera.id)
                            .order_by(Detection.start_time.desc(), Detection.id.desc())
                            .limit(CADENCE_SAMPLE)))
    if not recent:
        return replies.CameraStatus(camera.name, None, None, None, 0)
    latest = recent[0]
    midnight = datetime.combine(now.date(), time.min)
    peak_today = s.scalar(select(func.max(Detection.peak))
                          .where(Detection.camera_id == camera.id, Detection.start_time >= midnight)) or 0
    as_of, video_end = last_frame_time(latest), latest.end_time
    if video_until is not None and video_until > video_end:
        as_of = video_end = video_until
    every = cadence([d.start_time for d in recent], latest.end_time - latest.start_time)
    fresh = is_fresh(as_of, every, now)
    return replies.CameraStatus(camera.name, last_count(latest.counts, latest.peak), as_of,
                                last_seen(s, camera), int(peak_today), fresh=fresh,
                                silent_for=None if fresh else now - video_end)


def still_video_until(camera: Camera) -> datetime | None:
    """Up to when the camera agent says still video of ``camera`` reached the bucket (None: it has not)."""
    from bot.handlers.camera_health import read_agent_status

    agent = read_agent_status(services().bucket, camera.slug)
    return agent.video_until if agent else None


def answer(s: Session, payload: dict[str, Any]) -> str:
    if payload.get("command_type") == "cameras":
        return replies.cameras([(c.slug, c.name, c.area) for c in all_cameras(s)])
    cams = cameras_named(s, payload)
    if isinstance(cams, str):
        return cams
    now = utcnow()
    return replies.status([camera_status(s, c, now, still_video_until(c)) for c in cams])


def handle(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)
    # The answer only reads, so it is worked out before act_once's transaction: on SQLite that transaction
    # holds the database's one write lock from its dedupe claim on, and the webhook's writes wait for it.
    # A duplicate delivery works it out for nothing and sends nothing.
    with services().sessions() as s:
        text = answer(s, payload)
    act_once("status", dedupe_key(event, payload, "message_sid"), lambda _s: [Reply(payload["sender"], text)])
    return {"command_type": payload.get("command_type"), "to": payload.get("sender")}
