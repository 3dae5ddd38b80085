"""``check`` (every minute): text every admin once when a camera goes offline, and once when it is back.

Decided on the cloud side, from what reached the cloud, so it works the same embedded and on AWS (where the
agent runs in the building and has no database). A camera is watched when an agent feeds it: it has a
``stream_url``, or an agent status object ``cameras/<slug>/agent.json`` in the bucket that does not say
``stopped`` (the agent stopped recording it because its stream was removed). Cameras that only ever get
``corb ingest`` uploads are not watched.

Video "arrived" when a segment was analysed (its detection is recorded): that is what the building gets
from a camera, and it needs no bucket listing; or when the agent put a quiet segment under ``quiet/``
(unanalysed: nothing changed, or nobody was there), which its status object's ``video_until`` says once the
upload succeeded.
A watched camera is **offline** when, for longer than the
grace period (``settings.camera_grace_s``, else ``CORB_CAMERA_GRACE``, 2 minutes), no segment ended and,
for an agent that says it is connecting (or online), the agent has not (re)started in that time either;
an agent in ``error`` does not hold the alarm back. The text gives the time the video stopped: the end of
the last segment, else the agent's ``since``, else when the camera was added. It is **back online** once a
segment ended after that time: the agent's own word is not enough, only video is.

Exactly once: each transition is one ``act_once`` key (``offline:<slug>:<since>``,
``online:<slug>:<since>``) claimed in the same transaction as the camera's new state and the queued texts,
the camera row read ``FOR UPDATE``. Queued texts that a crash left undelivered are delivered by the next
run (every recent ``camera_health`` key is swept), so a retry never texts twice and never loses one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, deliver_pending, setting_int
from bot.handlers.alerts import parse_time
from bot.models import Camera, Detection, Role, User
from bot.services import Services, services
from cloud.bucket import Bucket, NoSuchKey
from cloud.db import utcnow
from cloud.idempotency import stored_key
from cloud.models import ProcessedKey

log = logging.getLogger(__name__)

SCOPE = "camera_health"
GRACE_SETTING = "camera_grace_s"
AGENT_STATES = ("online", "connecting", "error", "stopped")  # stopped: taken off recording on purpose
SWEEP = timedelta(hours=1)  # texts still undelivered after this are left to the Messages page


def agent_status_key(slug: str) -> str:
    """Where the camera agent writes its status (on state changes only)."""
    return f"cameras/{slug}/agent.json"


@dataclass(frozen=True)
class AgentStatus:
    """The agent's last word on a camera (``cameras/<slug>/agent.json``); times naive UTC."""

    state: str  # online | connecting | error
    since: datetime | None
    error: str | None = None  # the agent redacts the password before writing it
    updated: datetime | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_bps: int | None = None
    video_until: datetime | None = None  # how far the video is in the bucket, or recorded into a quiet one


def video_end(last_end: datetime | None, agent: AgentStatus | None) -> datetime | None:
    """Up to when the camera's video reached the cloud: the last analysed segment's end, or the end of a
    quiet segment the agent uploaded since, or is recording (quiet segments are not analysed, see
    ``agent.segmenter``)."""
    until = agent.video_until if agent else None
    return max(last_end, until) if last_end and until else last_end or until


def _optional(data: Mapping[str, Any], name: str, kind: type) -> Any:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return kind(value)


def parse_agent_status(raw: bytes) -> AgentStatus:
    """Validate an agent status object; ``ValueError`` says what is wrong."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    state = data.get("state")
    if state not in AGENT_STATES:
        raise ValueError(f"state must be one of {', '.join(AGENT_STATES)}, got {state!r}")
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"error must be a string or null, got {error!r}")
    times = {}
    for name in ("since", "updated", "video_until"):
        try:
            times[name] = parse_time(data[name]) if data.get(name) is not None else None
        except ValueError as exc:
            raise ValueError(f"{name} is not a time: {data[name]!r}") from exc
    return AgentStatus(state=state, since=times["since"], error=error[:500] if error else None,
                       updated=times["updated"], width=_optional(data, "width", int),
                       height=_optional(data, "height", int), fps=_optional(data, "fps", float),
                       bitrate_bps=_optional(data, "bitrate_bps", int), video_until=times["video_until"])


def read_agent_status(bucket: Bucket, slug: str) -> AgentStatus | None:
    """The camera's agent status, or None when there is none; an unreadable one is logged and read as
    an agent in ``error`` saying why (the camera is still watched, and the page shows the problem)."""
    try:
        raw = bucket.get(agent_status_key(slug))
    except NoSuchKey:
        return None
    try:
        return parse_agent_status(raw)
    except ValueError as exc:
        log.warning("%s is unreadable: %s", agent_status_key(slug), exc)
        return AgentStatus(state="error", since=None, error=f"agent status unreadable: {exc}")


def fed_by_agent(stream_url: str | None, agent: AgentStatus | None) -> bool:
    """Watched: a stream to record, or an agent recording it (not one that stopped: its stream went)."""
    return bool(stream_url) or (agent is not None and agent.state != "stopped")


def went_offline(now: datetime, grace: timedelta, last_end: datetime | None, agent: AgentStatus | None,
                 created_at: datetime) -> datetime | None:
    """Pure: when the video stopped, if the camera counts as offline now; else None.

    Silence is measured from the last segment's end, or from the agent's ``since`` when the agent
    (re)connected later than that (it is still within its first segment); an agent in ``error`` does not
    restart the clock, else a camera that keeps failing to connect would never be reported.
    """
    stopped = last_end or (agent.since if agent and agent.since else None) or created_at
    clock = stopped
    if agent and agent.since and agent.state != "error" and agent.since > clock:
        clock = agent.since
    return stopped if now - clock > grace else None


@dataclass(frozen=True)
class CameraHealth:
    """What the Cameras page shows about one camera, by the same rule as the texts."""

    watched: bool  # fed by an agent (a stream URL or an agent status object)
    offline_since: datetime | None  # None: online (or not watched)
    agent: AgentStatus | None


def health(camera: Camera, last_end: datetime | None, agent: AgentStatus | None, now: datetime,
           grace: timedelta) -> CameraHealth:
    """The camera's state now: the recorded outage, else the rule applied now (the page must not wait
    for the next minute's check to say a camera is offline)."""
    if not fed_by_agent(camera.stream_url, agent):
        return CameraHealth(False, None, None)
    if camera.offline_since is not None and not (last_end and last_end > camera.offline_since):
        return CameraHealth(True, camera.offline_since, agent)
    return CameraHealth(True, went_offline(now, grace, last_end, agent, camera.created_at), agent)


def grace_period(s: Session, default_s: int) -> timedelta:
    """The grace period: the admin Settings page's value, else the configured one."""
    return timedelta(seconds=max(setting_int(s, GRACE_SETTING, default_s), 1))


def last_segment_ends(s: Session) -> dict[int, datetime]:
    """Each camera's latest recorded segment end."""
    return dict(s.execute(select(Detection.camera_id, func.max(Detection.end_time))
                          .group_by(Detection.camera_id)).all())


def _first_start_after(s: Session, camera_id: int, since: datetime) -> datetime | None:
    return s.scalar(select(func.min(Detection.start_time))
                    .where(Detection.camera_id == camera_id, Detection.end_time > since))


def _admins(s: Session) -> list[User]:
    return list(s.scalars(select(User).where(User.role == Role.admin, User.opted_out.is_(False))
                          .order_by(User.id)))


def _locked(s: Session, camera_id: int) -> Camera | None:
    return s.scalars(select(Camera).where(Camera.id == camera_id).with_for_update()).first()


def _mark_offline(s: Session, camera_id: int, since: datetime, now: datetime) -> list[Reply]:
    camera = _locked(s, camera_id)
    if camera is None or camera.offline_since is not None:  # another run got there first
        return []
    admins = _admins(s)
    camera.offline_since, camera.offline_alerted = since, bool(admins)
    text = replies.camera_offline(camera.name, since, now)
    return [Reply(a.phone, text) for a in admins]


def _mark_online(s: Session, camera_id: int, since: datetime, now: datetime) -> list[Reply]:
    camera = _locked(s, camera_id)
    if camera is None or camera.offline_since != since:
        return []
    back = _first_start_after(s, camera_id, since) or now
    owed = camera.offline_alerted
    camera.offline_since, camera.offline_alerted = None, False
    if not owed:
        return []
    text = replies.camera_online(camera.name, since, max(back, since), now)
    return [Reply(a.phone, text) for a in _admins(s)]


def _sweep(svc: Services, now: datetime, done: set[str], errors: list[Exception]) -> None:
    """Deliver texts an earlier run queued but could not send (it died, or the carrier failed)."""
    with svc.sessions() as s:
        keys = s.scalars(select(ProcessedKey.key).where(ProcessedKey.scope == SCOPE,
                                                        ProcessedKey.created_at >= now - SWEEP)).all()
    for key in set(keys) - done:
        try:
            deliver_pending(svc, key)
        except Exception as exc:  # noqa: BLE001 - raised by ``check`` after every camera was seen to
            errors.append(exc)


def _transition(svc: Services, key: str, work: Callable[[Session], list[Reply]], done: set[str]) -> bool:
    done.add(stored_key(SCOPE, key))
    return act_once(SCOPE, key, work, svc)


def check(event: Any = None, context: Any = None) -> dict:
    """Judge every watched camera once; returns what changed (for the logs and the destinations)."""
    svc = services()
    now = utcnow()
    summary: dict[str, Any] = {"kind": "camera_health_checked", "watched": 0, "offline": [],
                               "went_offline": [], "back_online": []}
    with svc.sessions() as s:
        grace = grace_period(s, svc.config.camera_grace_s)
        cameras = [(c.id, c.slug, c.stream_url, c.created_at, c.offline_since)
                   for c in s.scalars(select(Camera).order_by(Camera.slug))]
        last_ends = last_segment_ends(s)
    errors: list[Exception] = []
    done: set[str] = set()  # outbox keys this run already tried to deliver
    for camera_id, slug, stream_url, created_at, offline_since in cameras:
        agent = read_agent_status(svc.bucket, slug)
        if not fed_by_agent(stream_url, agent):
            if offline_since is not None:  # no longer fed by an agent: nothing left to watch
                with svc.session() as s:
                    s.execute(update(Camera).where(Camera.id == camera_id)
                              .values(offline_since=None, offline_alerted=False))
            continue
        summary["watched"] += 1
        last_end = video_end(last_ends.get(camera_id), agent)
        try:
            if offline_since is not None and last_end is not None and last_end > offline_since:
                if _transition(svc, f"online:{slug}:{offline_since.isoformat()}",
                               lambda s, c=camera_id, t=offline_since: _mark_online(s, c, t, now), done):
                    summary["back_online"].append(slug)
                offline_since = None
            stopped = went_offline(now, grace, last_end, agent, created_at)
            if stopped is None:
                continue
            summary["offline"].append(slug)
            if offline_since is None and _transition(
                    svc, f"offline:{slug}:{stopped.isoformat()}",
                    lambda s, c=camera_id, t=stopped: _mark_offline(s, c, t, now), done):
                summary["went_offline"].append(slug)
        except Exception as exc:  # noqa: BLE001 - one camera's failure must not silence the others
            log.exception("camera health of %s failed", slug)
            errors.append(exc)
    _sweep(svc, now, done, errors)
    if errors:
        raise errors[0]
    return summary
