"""Cleaning requests, as a chain of functions joined by Lambda destinations and rules:

1. ``record_request`` (rule: ``corb.sms`` ``request_cleaning``) stores the request and returns
   ``{"command_type": "request_cleaning", "request_id", ...}``; its onSuccess destination puts it on the bus.
2. ``generate_report`` (rule: ``{"detail": {"responsePayload": {"command_type": ["request_cleaning"]}}}``)
   works out how much the area was used since its last cleaning, stores the report on the request and
   returns ``{"command_type": "cleaning_report", "request_id"}``.
3. ``send_report`` texts the report to every cleaner and a confirmation with the number to the requester.
4. ``close_request`` (``done N`` from a cleaner) closes request N and tells the requester.
Each step dedupes on its business key (the MessageSid, the request id), so a redelivered event repeats
nothing and returns the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot import replies
from bot.handlers import Reply, act_once, dedupe_key, unwrap, user_by_phone
from bot.models import Camera, CleaningRequest, Detection, Role, User
from bot.services import services
from cloud.db import utcnow


# -- the report's arithmetic (pure) -------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    mean: float  # mean people count over the segment's analysed frames
    peak: int


def people_minutes(segments: Iterable[Segment]) -> float:
    """Sum of mean count x duration: two people for ten minutes and four for five are both 20."""
    return sum(max(0.0, s.mean) * max(0.0, (s.end - s.start).total_seconds()) / 60.0 for s in segments)


def area_usage(area: str, since: datetime | None, segments: list[Segment]) -> replies.AreaUsage:
    return replies.AreaUsage(area=area, since=since, people_minutes=people_minutes(segments),
                             peak=max((s.peak for s in segments), default=0), segments=len(segments))


# -- 1. record ----------------------------------------------------------------------------------------
def _result(req: CleaningRequest, requester: str | None) -> dict:
    return {"command_type": "request_cleaning", "request_id": req.id, "area": req.area, "note": req.note,
            "requester": requester, "message_sid": req.source_sid}


def camera_areas(s: Session) -> list[str]:
    """The areas cameras watch, each once (case-insensitively), in alphabetical order."""
    seen: dict[str, str] = {}
    for (area,) in s.execute(select(Camera.area).where(Camera.area != "").order_by(Camera.area)):
        seen.setdefault(area.lower(), area)
    return list(seen.values())


def record_request(event: dict, context: Any = None) -> dict:
    """Store the request. With no area named: the building's only area, or (several) a question back
    and nothing stored or dispatched (the result's ``command_type`` matches no report rule)."""
    payload = unwrap(event)
    key = dedupe_key(event, payload, "message_sid")
    source = payload.get("message_sid") or key
    asked: list[str] = []

    def work(s: Session) -> list[Reply]:
        requester = user_by_phone(s, payload.get("sender"))
        area = payload.get("area") or ""
        if not area:
            areas = camera_areas(s)
            if len(areas) > 1:
                asked.extend(areas)
                return [Reply(requester.phone, replies.which_area(areas))] if requester else []
            area = areas[0] if areas else ""
        s.add(CleaningRequest(area=area[:120], note=(payload.get("note") or "")[:1000],
                              requester_id=requester.id if requester else None, source_sid=source[:64]))
        return []

    act_once("cleaning.record", key, work)
    with services().session() as s:
        req = s.scalars(select(CleaningRequest).where(CleaningRequest.source_sid == source[:64])).first()
        if req is None:  # asked which area (now, or on the first delivery of this message)
            return {"command_type": "request_cleaning_area_asked", "areas": asked,
                    "message_sid": payload.get("message_sid")}
        return _result(req, payload.get("sender"))


# -- 2. report ----------------------------------------------------------------------------------------
def last_cleaned(s: Session, area: str, before: datetime) -> datetime | None:
    return s.scalar(select(func.max(CleaningRequest.closed_at)).where(
        CleaningRequest.status == "done", func.lower(CleaningRequest.area) == area.lower(),
        CleaningRequest.closed_at < before))


def usage_for(s: Session, area: str, now: datetime) -> replies.AreaUsage:
    since = last_cleaned(s, area, now)
    cams = select(Camera.id).where(or_(func.lower(Camera.area) == area.lower(), Camera.slug == area))
    query = select(Detection.start_time, Detection.end_time, Detection.mean, Detection.peak).where(
        Detection.camera_id.in_(cams))
    if since is not None:
        query = query.where(Detection.end_time > since)
    segments = [Segment(max(start, since) if since else start, end, mean or 0.0, peak or 0)
                for start, end, mean, peak in s.execute(query)]
    return area_usage(area, since, segments)


def _request_id(payload: dict) -> int:
    try:
        return int(payload["request_id"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"no request_id in {payload!r}") from None


def generate_report(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)
    request_id = _request_id(payload)

    def work(s: Session) -> list[Reply]:
        req = s.get(CleaningRequest, request_id)
        if req is None:
            raise LookupError(f"no cleaning request {request_id}")
        usage = usage_for(s, req.area, req.created_at or utcnow()) if req.area else None
        requester = req.requester.name if req.requester else "unknown"
        req.report = replies.cleaning_report(req.id, usage, req.note, requester)
        return []

    act_once("cleaning.report", f"request={request_id}", work)
    return {"command_type": "cleaning_report", "request_id": request_id}


# -- 3. send ------------------------------------------------------------------------------------------
def send_report(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)
    request_id = _request_id(payload)
    counted: dict[str, int] = {}

    def work(s: Session) -> list[Reply]:
        req = s.get(CleaningRequest, request_id)
        if req is None or not req.report:
            raise LookupError(f"cleaning request {request_id} has no report yet")
        cleaners = list(s.scalars(select(User).where(User.role == Role.cleaner, User.opted_out.is_(False))
                                  .order_by(User.id)))
        out = [Reply(c.phone, req.report) for c in cleaners]
        counted["cleaners"] = len(cleaners)
        if req.requester and not req.requester.opted_out:
            out.append(Reply(req.requester.phone, replies.request_confirmation(req.id, len(cleaners))))
        return out

    act_once("cleaning.send", f"request={request_id}", work)
    return {"command_type": "cleaning_report_sent", "request_id": request_id, **counted}


# -- 4. close -----------------------------------------------------------------------------------------
def close(s: Session, cleaner: User | None, number: int | None,
          closed: list[int] | None = None) -> list[Reply]:
    """Close request ``number`` (None: the only open one), appending its id to ``closed``."""
    if cleaner is None:
        return []
    if cleaner.role != Role.cleaner:
        return [Reply(cleaner.phone, replies.NOT_A_CLEANER)]
    if number is None:  # the only open request is meant; with several, ask which
        open_ids = list(s.scalars(select(CleaningRequest.id).where(CleaningRequest.status != "done")
                                  .order_by(CleaningRequest.id).limit(replies.MAX_LISTED + 1)))
        if len(open_ids) != 1:
            return [Reply(cleaner.phone, replies.done_which(open_ids))]
        number = open_ids[0]
    req = s.get(CleaningRequest, number)
    if req is None:
        return [Reply(cleaner.phone, replies.request_unknown(number))]
    if req.status == "done":
        return [Reply(cleaner.phone, replies.request_already_closed(number))]
    req.status, req.closed_at, req.closed_by_id = "done", utcnow(), cleaner.id
    if closed is not None:
        closed.append(req.id)
    out = [Reply(cleaner.phone, replies.request_closed(number))]
    requester = req.requester
    if requester and requester.id != cleaner.id and not requester.opted_out:
        out.append(Reply(requester.phone, replies.request_done(number, req.area, cleaner.name)))
    return out


def close_request(event: dict, context: Any = None) -> dict:
    payload = unwrap(event)
    number = payload.get("number")
    number = int(number) if isinstance(number, int | str) and str(number).isdecimal() else None
    closed: list[int] = []
    act_once("cleaning.close", dedupe_key(event, payload, "message_sid"),
             lambda s: close(s, user_by_phone(s, payload.get("sender")), number, closed))
    return {"command_type": "cleaning_closed", "request_id": closed[0] if closed else number}

