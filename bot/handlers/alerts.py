"""``on_segment``: a camera segment was analysed. Record it, and alert subscribers when people appear.

"People appear" on a camera when this segment saw someone (peak > 0) and the moment just before it
was empty, meaning the camera's previous segment (the one that started latest before this one, by
segment time, whatever order the events arrive in) ended with 0 people in its last analysed frame,
or there is no such segment, or it analysed no frame, or it ended more than ``CONTINUITY_GAP``
before this one started (a camera that was off says nothing about who was there).

Results can arrive out of order: Lambda analyses a camera's segments side by side (so does the local
runtime with more than one detection worker), and the 2-s segment in which someone walks in can overtake
the long one the agent closed just before it. That later segment was then judged against the segment before
the missing one. When the missing one arrives, the judgement is made again: if the later segment is an
appearance after all, its alert goes out then (late, not lost). An alert already sent is not taken back.

Each subscriber (of this camera or of all cameras, never an opted-out user) gets at most one alert per
camera per cooldown: the ``settings`` table's ``alert_cooldown_s``, else the configured one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, setting_int, unwrap
from bot.models import AlertSent, Camera, Detection, Subscription, User
from bot.services import services
from cloud import results
from cloud.bucket import NoSuchKey
from cloud.camera_settings import SLUG, slug_for
from cloud.db import utcnow

log = logging.getLogger(__name__)
CONTINUITY_GAP = timedelta(minutes=5)


def people_appeared(peak: int, previous_last_count: int | None) -> bool:
    """Pure: this segment saw people and the moment before it had none (or is unknown)."""
    return peak > 0 and not previous_last_count


def parse_time(value: Any) -> datetime:
    """ISO 8601 (with ``Z`` or an offset) or epoch seconds, as naive UTC like every column."""
    if isinstance(value, int | float):
        ts = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    elif isinstance(value, datetime):
        ts = value
    else:
        raise ValueError(f"not a time: {value!r}")
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def _last_count(detection: Detection | None, this_start: datetime) -> int | None:
    if detection is None or this_start - detection.end_time > CONTINUITY_GAP:
        return None
    counts = json.loads(detection.counts or "[]")
    return int(counts[-1]) if counts else None


def _camera(s: Session, slug: str, key: str) -> Camera:
    """The segment's camera; one that uploads before anyone registered it is added under its slug, if
    its folder name is one (a camera the API cannot address and the admin cannot save helps nobody):
    otherwise the segment is refused with the reason, which the runtime keeps as a dead letter."""
    # Locked (PostgreSQL) so that two results of one camera are recorded one after the other: each sees the
    # other, whichever commits first, and an overtaken appearance is found (SQLite serialises writers).
    camera = s.scalars(select(Camera).where(Camera.slug == slug).with_for_update()).first()
    if camera is None:
        if not SLUG.match(slug):
            hint = slug_for(slug)
            raise ValueError(
                f"{key}: folder {slug!r} is not a camera slug (lower-case letters, digits and dashes), so no "
                "camera was created and the segment was not recorded"
                + (f"; upload under cameras/{hint}/ instead" if hint else ""))
        camera = Camera(slug=slug, name=slug, area="")
        s.add(camera)
        s.flush()
    return camera


def _recipients(s: Session, camera: Camera) -> list[User]:
    return list(s.scalars(
        select(User).join(Subscription, Subscription.user_id == User.id)
        .where(or_(Subscription.camera_id == camera.id, Subscription.camera_id.is_(None)),
               User.opted_out.is_(False)).distinct().order_by(User.id)))


def _follows_all(s: Session) -> set[int]:
    """Users subscribed to every camera: UNSUBSCRIBE <camera> would not stop their alerts."""
    return set(s.scalars(select(Subscription.user_id).where(Subscription.camera_id.is_(None))))


def best_frame(r: dict[str, Any], start: datetime, peak: int) -> tuple[datetime, int]:
    """The attached picture's time and head count (the detection result's best frame), so the text
    agrees with the caption burnt into the picture; without them, the segment's start and peak."""
    best = r.get("best_frame") if isinstance(r.get("best_frame"), dict) else {}
    try:
        return parse_time(best["utc"]), int(best["count"])
    except (KeyError, TypeError, ValueError):
        return start, peak


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


def _overtaken(s: Session, detection: Detection, previous: Detection | None) -> Detection | None:
    """The camera's next segment, when it was recorded before ``detection`` (it overtook it) and is an
    appearance after all: it was judged against ``previous`` (the segment before the missing one)."""
    later = s.scalars(select(Detection)
                      .where(Detection.camera_id == detection.camera_id,
                             Detection.start_time > detection.start_time)
                      .order_by(Detection.start_time, Detection.id).limit(1)).first()
    if later is None or (previous is not None and later.id < previous.id):
        return None  # none, or recorded before ``previous`` too: it was judged against something else
    judged = people_appeared(later.peak, _last_count(previous, later.start_time))
    return later if people_appeared(later.peak, _last_count(detection, later.start_time)) and not judged \
        else None


def _alerts(s: Session, camera: Camera, taken: datetime, people: int, media_key: str | None,
            summary: dict[str, Any]) -> list[Reply]:
    cooldown = timedelta(seconds=setting_int(s, "alert_cooldown_s", services().config.alert_cooldown_s))
    now = utcnow()
    follows_all = _follows_all(s)
    out = [Reply(u.phone, replies.alert(camera.name, taken, people,
                                        "ALL" if u.id in follows_all else camera.slug),
                 media_key=media_key)
           for u in _recipients(s, camera) if _cooled_down(s, u, camera, now, cooldown)]
    summary["alerts"] = summary.get("alerts", 0) + len(out)
    return out


def _cooled_down(s: Session, user: User, camera: Camera, now: datetime, cooldown: timedelta) -> bool:
    """Whether ``user`` may be alerted about ``camera`` now; if so, remember that they were."""
    sent = s.scalars(select(AlertSent).where(AlertSent.user_id == user.id, AlertSent.camera_id == camera.id)
                     ).first()
    if sent is None:
        s.add(AlertSent(user_id=user.id, camera_id=camera.id, sent_at=now))
        return True
    if now - sent.sent_at < cooldown:
        return False
    sent.sent_at = now
    return True


def _positive(value: Any, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 and number == number else None  # NaN != NaN


def record_format(camera: Camera, r: dict[str, Any]) -> None:
    """The stream's format as the camera's latest segment shows it (fields the payload lacks are kept)."""
    for column, field, kind in (("video_width", "width", int), ("video_height", "height", int),
                                ("video_fps", "fps", float), ("video_bitrate", "bitrate_bps", int)):
        value = _positive(r.get(field), kind)
        if value is not None:
            setattr(camera, column, value)


def record(s: Session, r: dict[str, Any], summary: dict[str, Any]) -> list[Reply]:
    camera = _camera(s, str(r["camera"]), str(r.get("segment_key") or ""))
    # A segment whose time is unknown is placed by its end (the upload) and duration.
    end = parse_time(r.get("end_time") or r.get("start_time") or utcnow())
    start = (parse_time(r["start_time"]) if r.get("start_time")
             else end - timedelta(seconds=float(r.get("duration_s") or 0)))
    counts = [int(c) for c in r.get("counts") or []]
    peak = int(r.get("peak") or max(counts, default=0))
    previous = s.scalars(select(Detection)
                         .where(Detection.camera_id == camera.id, Detection.start_time < start)
                         .order_by(Detection.start_time.desc(), Detection.id.desc()).limit(1)).first()
    detection = Detection(
        camera_id=camera.id, segment_key=str(r["segment_key"])[:1024], etag=str(r.get("etag") or "")[:64],
        start_time=start, end_time=end, peak=peak, mean=float(r.get("mean") or 0.0),
        unique_people=int(r.get("unique_people") or 0), counts=json.dumps(counts),
        snapshot_key=r.get("snapshot_key") or None, model=str(r.get("model") or "")[:120])
    s.add(detection)
    if camera.last_segment_at is None or start >= camera.last_segment_at:
        camera.last_segment_key, camera.last_segment_at = detection.segment_key, start
        record_format(camera, r)
    s.flush()
    summary.update(detection_id=detection.id, camera=camera.slug)
    out = []
    if people_appeared(peak, _last_count(previous, start)):
        taken, people = best_frame(r, start, peak)
        out += _alerts(s, camera, taken, people, detection.snapshot_key, summary)
    later = _overtaken(s, detection, previous)
    if later is not None:
        log.info("%s arrived after %s, which is an appearance after all: alerting now",
                 detection.segment_key, later.segment_key)
        summary["late_alert_for"] = later.segment_key
        out += _alerts(s, camera, *picture_facts(later), later.snapshot_key, summary)
    return out


def on_segment(event: dict, context: Any = None) -> dict:
    result = unwrap(event)
    if result.get("kind") != "segment_analysed":
        raise ValueError(f"not a segment result: {result.get('kind')!r}")
    summary: dict[str, Any] = {"kind": "segment_recorded", "segment_key": result["segment_key"], "alerts": 0}
    key = f"{result.get('bucket', '')}/{result['segment_key']}#{result.get('etag', '')}"
    summary["duplicate"] = not act_once("alerts", key, lambda s: record(s, result, summary))
    return summary
