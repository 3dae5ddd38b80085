"""``/api/``: cameras, their latest snapshot, detections, bus events and cleaning requests.

Authentication is ``Authorization: Bearer <token>`` only (never the admin's cookie), so no CSRF token
is needed and the security blueprint exempts this prefix. Errors are ``{"status": N, "message": ...}``,
also for 404, 405 and 500 (the security blueprint's error handler). ``/api/openapi.json`` is public: it
describes the shape of the API, no data.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, request
from sqlalchemy import select, update
from werkzeug.exceptions import Unauthorized

from bot.admin.auth import hash_api_token
from bot.admin.security import services
from bot.api.openapi import openapi_document
from bot.models import ApiToken, Camera, CleaningRequest, Detection
from cloud.bucket import NoSuchKey
from cloud.camera_settings import SLUG
from cloud.db import utcnow
from cloud.models import BusEvent

bp = Blueprint("api", __name__, url_prefix="/api")

PUBLIC_ENDPOINTS = frozenset({"api.openapi"})
MAX_LIMIT = 500
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is for people, not an audit log: spare the writes


class BearerRequired(Unauthorized):
    def get_headers(self, environ: Any = None, scope: Any = None) -> list[tuple[str, str]]:
        return [*super().get_headers(environ, scope), ("WWW-Authenticate", 'Bearer realm="corb"')]


@cache
def _query_parameters(rule: str) -> frozenset[str]:
    """The query parameters the OpenAPI document declares for a route (``/api/cameras/<slug>`` style)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
    operation = openapi_document()["paths"].get(path, {}).get("get", {})
    return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")


@bp.before_request
def _authenticate() -> None:
    if any("\x00" in v for v in request.args.values()):
        abort(400, "query parameters must not contain NUL characters")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerRequired("a bearer token is required (Authorization: Bearer <token>)")
    digest = hash_api_token(token.strip())
    with services().session() as db:
        row = db.execute(select(ApiToken.id, ApiToken.last_used_at).where(
            ApiToken.token_hash == digest)).first()
        if row is None:
            raise BearerRequired("invalid or revoked token")
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > TOUCH_EVERY:
            db.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    g.api_token_id = row.id
    # A misspelt filter (``sinse=``) must not silently return everything.
    unknown = sorted(set(request.args) - _query_parameters(request.url_rule.rule if request.url_rule else ""))
    if unknown:
        abort(400, f"unknown query parameter(s): {', '.join(map(repr, unknown))}")


# -- helpers ---------------------------------------------------------------------------------------

def iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


# RFC 3339's date-time, the ISO 8601 profile OpenAPI's "date-time" means: a zone is required, since a
# time without one is ambiguous (the camera's? the server's?).
RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})")


def parse_time(name: str) -> datetime | None:
    """A date-time query parameter as naive UTC (the database's convention); 400 if malformed."""
    raw = request.args.get(name)
    if raw is None:
        return None
    match = RFC3339.fullmatch(raw)
    if match is None:
        abort(400, f"{name} must be an RFC 3339 date-time, e.g. 2026-11-27T10:00:00Z")
    date, hour_minute, second, fraction, zone = match.groups()
    # RFC 3339 allows a leap second (":60") and any number of fraction digits; datetime does not.
    text = f"{date}T{hour_minute}:{min(int(second), 59):02d}.{(fraction or '0')[:6]:0<6}"
    text += "+00:00" if zone in "Zz" else zone
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        abort(400, f"{name} is not a valid date-time: {raw!r}")
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999 shifted past datetime's range: the range's end is meant
        return datetime.min if value.year < 5000 else datetime.max


def parse_limit(default: int = 100) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,6}", raw.strip()) or not 1 <= int(raw) <= MAX_LIMIT:
        abort(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _camera_or_404(db: Any, slug: str) -> Camera:
    camera = db.scalars(select(Camera).where(Camera.slug == slug)).first() if SLUG.match(slug) else None
    if camera is None:
        abort(404, f"no camera {slug!r}")
    return camera


def _counts(detection: Detection) -> list[int]:
    try:
        values = json.loads(detection.counts or "[]")
    except ValueError:
        return []
    return [int(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def detection_json(detection: Detection, slug: str) -> dict[str, Any]:
    return {"id": detection.id, "camera": slug, "segment_key": detection.segment_key,
            "start_time": iso(detection.start_time), "end_time": iso(detection.end_time),
            "peak": detection.peak, "mean": float(detection.mean), "unique_people": detection.unique_people,
            "counts": _counts(detection), "has_snapshot": bool(detection.snapshot_key),
            "model": detection.model}


def camera_json(db: Any, camera: Camera) -> dict[str, Any]:
    latest = db.scalars(select(Detection).where(Detection.camera_id == camera.id).order_by(
        Detection.end_time.desc(), Detection.id.desc()).limit(1)).first()
    has_snapshot = db.scalar(select(Detection.id).where(
        Detection.camera_id == camera.id, Detection.snapshot_key.is_not(None)).limit(1)) is not None
    return {"slug": camera.slug, "name": camera.name, "area": camera.area,
            "last_segment_key": camera.last_segment_key, "last_segment_at": iso(camera.last_segment_at),
            "latest_detection": detection_json(latest, camera.slug) if latest else None,
            "latest_snapshot": f"/api/cameras/{camera.slug}/latest.jpg" if has_snapshot else None}


# -- routes ----------------------------------------------------------------------------------------

@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())


@bp.get("/cameras")
def cameras() -> Response:
    with services().session() as db:
        rows = db.scalars(select(Camera).order_by(Camera.slug)).all()
        return jsonify(cameras=[camera_json(db, c) for c in rows])


@bp.get("/cameras/<slug>")
def camera(slug: str) -> Response:
    with services().session() as db:
        return jsonify(camera_json(db, _camera_or_404(db, slug)))


@bp.get("/cameras/<slug>/latest.jpg")
def latest_snapshot(slug: str) -> Response:
    with services().session() as db:
        cam = _camera_or_404(db, slug)
        key = db.scalar(select(Detection.snapshot_key).where(
            Detection.camera_id == cam.id, Detection.snapshot_key.is_not(None)).order_by(
            Detection.end_time.desc(), Detection.id.desc()).limit(1))
    if key is None:
        abort(404, f"camera {slug!r} has no snapshot yet")
    try:
        data = services().bucket.get(key)
    except (NoSuchKey, ValueError):
        abort(404, f"the snapshot of camera {slug!r} is gone (retention)")
    response = Response(data, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/detections")
def detections() -> Response:
    since, until, limit = parse_time("since"), parse_time("until"), parse_limit()
    slug = request.args.get("camera")
    with services().session() as db:
        query = select(Detection, Camera.slug).join(Camera, Camera.id == Detection.camera_id)
        if slug:
            query = query.where(Camera.id == _camera_or_404(db, slug).id)
        if since is not None:
            query = query.where(Detection.end_time >= since)
        if until is not None:
            query = query.where(Detection.start_time <= until)
        rows = db.execute(query.order_by(Detection.start_time.desc(), Detection.id.desc()).limit(limit)).all()
        return jsonify(detections=[detection_json(d, s) for d, s in rows])


@bp.get("/events")
def events() -> Response:
    since, until, limit = parse_time("since"), parse_time("until"), parse_limit()
    source = request.args.get("source")
    with services().session() as db:
        query = select(BusEvent)
        if source:
            query = query.where(BusEvent.source == source)
        if since is not None:
            query = query.where(BusEvent.time >= since)
        if until is not None:
            query = query.where(BusEvent.time <= until)
        rows = db.scalars(query.order_by(BusEvent.time.desc()).limit(limit)).all()
    out = []
    for event in rows:
        try:
            body = json.loads(event.body)
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        out.append({"id": event.id, "source": event.source, "detail_type": event.detail_type,
                    "time": iso(event.time), "status": event.status, "targets": event.targets,
                    "detail": detail if isinstance(detail, dict) else {}})
    return jsonify(events=out)


@bp.get("/cleaning-requests")
def cleaning_requests() -> Response:
    status = request.args.get("status")
    if status not in (None, "open", "done"):
        abort(400, "status must be open or done")
    limit = parse_limit()
    with services().session() as db:
        query = select(CleaningRequest)
        if status:
            query = query.where(CleaningRequest.status == status)
        rows = db.scalars(query.order_by(CleaningRequest.created_at.desc(), CleaningRequest.id.desc())
                          .limit(limit)).all()
        out = [{"id": r.id, "area": r.area, "note": r.note, "status": r.status, "report": r.report,
                "requester": r.requester.name if r.requester else None, "created_at": iso(r.created_at),
                "closed_at": iso(r.closed_at)} for r in rows]
    return jsonify(cleaning_requests=out)
