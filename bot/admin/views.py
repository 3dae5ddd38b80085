"""``/admin``: the pages the people who run the building use. Every route requires a logged-in admin.

The login check is a ``before_request`` on the whole blueprint, not a decorator per view, so a route
added later is protected without anyone remembering to.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from wtforms import SelectChoice

from agent.redact import redact_url
from bot import replies
from bot.admin.auth import verify_password
from bot.admin.event_words import STATUS_WORDS, describe
from bot.admin.forms import (
    ALL_CAMERAS,
    ActionForm,
    CameraForm,
    LoginForm,
    PersonForm,
    SettingsForm,
    normalise_phone,
)
from bot.admin.security import (
    current_admin,
    log_in,
    log_out,
    require_admin,
    safe_next,
    services,
    throttle,
)
from bot.camera_config import SettingsNotSaved, camera_transaction
from bot.handlers.camera_health import (
    grace_period,
    health,
    last_segment_ends,
    read_agent_status,
    video_end,
)
from bot.handlers.status import camera_status, still_video_until
from bot.models import (
    AdminAccount,
    Camera,
    CleaningRequest,
    Detection,
    Message,
    Role,
    Setting,
    Subscription,
    User,
)
from bot.plots import people_svg
from cloud.bucket import NoSuchKey, guess_type
from cloud.camera_settings import CAPTION_BAR, CameraSettings, format_zone, load_settings, parse_zone
from cloud.db import utcnow
from cloud.dead_letters import list_dead_letters
from cloud.models import BusEvent, DeadLetter, Invocation

bp = Blueprint("admin", __name__, url_prefix="/admin")

MESSAGES_PER_PAGE = 50
EVENTS_SHOWN = 50

PUBLIC_ENDPOINTS = frozenset({"admin.login"})
# Settings the bot's handlers read from the ``settings`` table; the configuration gives the defaults.
SETTING_KEYS = ("alert_cooldown_s", "retention_days", "camera_grace_s")


@bp.before_request
def _login_required() -> Response | None:
    return require_admin(PUBLIC_ENDPOINTS)


@bp.app_context_processor
def _layout_context() -> dict[str, Any]:
    return {"current_admin": current_admin,
            "simulator_enabled": not services().config.uses_twilio,
            "action_form": ActionForm}


@bp.app_template_filter("when")
def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


@bp.app_template_filter("ago")
def _ago(value: datetime | None) -> str:
    """'3 min ago': how people read recency; the exact time goes in the element's title."""
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 0:
        return "just now" if seconds > -60 else f"in {-seconds // 60} min"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


# -- login -----------------------------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    form = LoginForm()
    if request.method == "GET":
        if current_admin() is not None:
            return redirect(url_for("admin.dashboard"))
        form.next.data = safe_next(request.args.get("next")) or ""
        return render_template("admin/login.html", form=form)
    if form.validate():
        address = request.remote_addr or "unknown"
        limiter = throttle()
        wait = limiter.claim(address)  # counted before the password is looked at: parallel guesses too
        if wait:
            error = "Too many wrong passwords. Wait a minute and try again."
            response = make_response(render_template("admin/login.html", form=form, error=error), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        with services().session() as db:
            account = db.scalars(select(AdminAccount).where(
                AdminAccount.username == form.username.data)).first()
        if verify_password(account.password_hash if account else None, form.password.data or ""):
            limiter.succeeded(address)
            log_in(account)
            return redirect(safe_next(form.next.data) or url_for("admin.dashboard"))
    return make_response(render_template("admin/login.html", form=form,
                                         error="Wrong username or password."), 401)


@bp.post("/logout")
def logout() -> Response:
    log_out()
    flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))


# -- dashboard -------------------------------------------------------------------------------------

def camera_overview(db: Session, camera: Camera, now: datetime) -> dict[str, Any]:
    """What the dashboard shows of one camera: latest snapshot, its count (called "now" only while
    fresh, by the same rule as the ``status`` text), when people were last seen, a 24 h plot."""
    recent = select(Detection).where(Detection.camera_id == camera.id).order_by(
        Detection.end_time.desc(), Detection.id.desc())
    latest = db.scalars(recent.limit(1)).first()
    snapshot = db.scalars(recent.where(Detection.snapshot_key.is_not(None)).limit(1)).first()
    rows = db.execute(select(Detection.start_time, Detection.peak).where(
        Detection.camera_id == camera.id, Detection.start_time >= now - timedelta(hours=24),
        Detection.start_time <= now)).all()
    status = camera_status(db, camera, now, still_video_until(camera))
    return {"camera": camera, "latest": latest, "snapshot": snapshot, "people_now": status.people_now,
            "status": status, "last_seen": status.last_seen,
            "plot": people_svg([(t, p) for t, p in rows], now=now, label=f"People at {camera.name}")}


@bp.get("/")
def dashboard() -> str:
    now = utcnow()
    with services().session() as db:
        cameras = db.scalars(select(Camera).order_by(Camera.name)).all()
        overview = [camera_overview(db, c, now) for c in cameras]
        alerts = db.scalars(select(Message).where(
            Message.direction == "out", Message.body.startswith(replies.ALERT_PREFIX, autoescape=True),
        ).order_by(Message.created_at.desc(), Message.id.desc()).limit(8)).all()
        names = dict(db.execute(select(User.phone, User.name)).all())
        stats = {
            "people": db.scalar(select(func.count(User.id))),
            "open_cleaning": db.scalar(select(func.count(CleaningRequest.id)).where(
                CleaningRequest.status == "open")),
            "dead_letters": db.scalar(select(func.count(DeadLetter.id)).where(
                DeadLetter.replayed_at.is_(None))),
            "messages_today": db.scalar(select(func.count(Message.id)).where(
                Message.created_at >= now - timedelta(hours=24))),
        }
    return render_template("admin/dashboard.html", overview=overview, alerts=alerts, names=names,
                           stats=stats, now=now)


@bp.get("/media/<path:key>")
def media(key: str) -> Response:
    """A snapshot or MMS picture, for the logged-in admin only, and only one the database refers to."""
    with services().session() as db:
        known = db.scalar(select(Detection.id).where(Detection.snapshot_key == key).limit(1)) or db.scalar(
            select(Message.id).where(Message.media_key == key).limit(1))
    if not known:
        abort(404)
    try:
        data = services().bucket.get(key)
    except (NoSuchKey, ValueError):
        abort(404)
    response = Response(data, mimetype=guess_type(key))
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


# -- people ----------------------------------------------------------------------------------------

def _subscription_choices(db: Session) -> list[SelectChoice]:
    cameras = db.scalars(select(Camera).order_by(Camera.name)).all()
    return [SelectChoice(ALL_CAMERAS, "All cameras")] + [SelectChoice(str(c.id), c.name) for c in cameras]


@bp.get("/people")
def people() -> str:
    with services().session() as db:
        users = db.scalars(select(User).options(selectinload(User.subscriptions).selectinload(
            Subscription.camera)).order_by(User.name)).all()
        return render_template("admin/people.html", users=users)


@bp.route("/people/new", methods=["GET", "POST"], defaults={"user_id": None})
@bp.route("/people/<int:user_id>", methods=["GET", "POST"])
def person(user_id: int | None) -> Response | str:
    with services().session() as db:
        user = db.get(User, user_id) if user_id is not None else None
        if user_id is not None and user is None:
            abort(404)
        form = PersonForm(obj=user if request.method == "GET" else None)
        form.subscriptions.choices = _subscription_choices(db)
        if request.method == "GET" and user is not None:
            form.role.data = user.role.value
            form.subscriptions.data = [ALL_CAMERAS if s.camera_id is None else str(s.camera_id)
                                       for s in user.subscriptions]
        if form.validate_on_submit():
            clash = db.scalars(select(User).where(User.phone == form.phone.data)).first()
            if clash is not None and clash is not user:
                form.phone.errors.append(f"{form.phone.data} already belongs to {clash.name}.")
            else:
                if user is None:
                    user = User(phone=form.phone.data, name=form.name.data)
                    db.add(user)
                user.name, user.phone = form.name.data, form.phone.data
                user.role, user.opted_out = Role(form.role.data), bool(form.opted_out.data)
                wanted = {None if v == ALL_CAMERAS else int(v) for v in form.subscriptions.data or []}
                for sub in list(user.subscriptions):
                    if sub.camera_id not in wanted:
                        user.subscriptions.remove(sub)
                have = {s.camera_id for s in user.subscriptions}
                for camera_id in wanted - have:
                    user.subscriptions.append(Subscription(camera_id=camera_id))
                flash(f"Saved {user.name}.", "success")
                return redirect(url_for("admin.people"))
        return render_template("admin/person.html", form=form, user=user)


@bp.post("/people/<int:user_id>/delete")
def delete_person(user_id: int) -> Response:
    with services().session() as db:
        user = db.get(User, user_id)
        if user is None:
            abort(404)
        db.delete(user)
        flash(f"Removed {user.name}.", "success")
    return redirect(url_for("admin.people"))


# -- cameras ---------------------------------------------------------------------------------------

def video_format(width: int | None, height: int | None, fps: float | None, bitrate: int | None) -> list[str]:
    """``["1280x720", "15 fps", "2.0 Mbit/s"]``, leaving out what is unknown."""
    parts = [f"{width}\u00d7{height}"] if width and height else []
    if fps:
        parts.append(f"{fps:.3g} fps")
    if bitrate:
        parts.append(f"{bitrate / 1e6:.1f} Mbit/s" if bitrate >= 1e6 else f"{bitrate / 1e3:.0f} kbit/s")
    return parts


@bp.get("/cameras")
def cameras() -> str:
    """Each camera's health (the same rule as the offline texts), its latest segment and video format."""
    svc, now = services(), utcnow()
    with svc.session() as db:
        rows = db.scalars(select(Camera).order_by(Camera.name)).all()
        latest = {c.id: db.scalars(select(Detection).where(Detection.camera_id == c.id).order_by(
            Detection.end_time.desc()).limit(1)).first() for c in rows}
        grace, ends = grace_period(db, svc.config.camera_grace_s), last_segment_ends(db)
        states, formats = {}, {}
        for c in rows:
            agent = read_agent_status(svc.bucket, c.slug)
            states[c.id] = health(c, video_end(ends.get(c.id), agent), agent, now, grace)
            formats[c.id] = video_format(c.video_width, c.video_height, c.video_fps, c.video_bitrate) or (
                video_format(agent.width, agent.height, agent.fps, agent.bitrate_bps) if agent else [])
        return render_template("admin/cameras.html", cameras=rows, latest=latest, states=states,
                               formats=formats)


@bp.route("/cameras/new", methods=["GET", "POST"], defaults={"camera_id": None})
@bp.route("/cameras/<int:camera_id>", methods=["GET", "POST"])
def camera(camera_id: int | None) -> Response | tuple[str, int] | str:
    """A camera's name, area and counting zone. The zone lives in the bucket, where the detection function
    reads it, written just before the database commits: a save is all or nothing (``bot.camera_config``)."""
    svc = services()
    saved: str | None = None
    try:
        with camera_transaction(svc) as (db, save_camera_settings):
            cam = db.get(Camera, camera_id) if camera_id is not None else None
            if camera_id is not None and cam is None:
                abort(404)
            form = CameraForm(obj=cam if request.method == "GET" else None)
            if cam is not None and request.method == "GET":
                form.zone.data = format_zone(load_settings(svc.bucket, cam.slug).zone)
            if cam is not None and request.method == "POST":
                # The slug names the camera's folder in the bucket and in SMS commands: fixed once made.
                form.slug.raw_data = [cam.slug]
                form.slug.data = cam.slug
            if form.validate_on_submit():
                clash = db.scalars(select(Camera).where(Camera.slug == form.slug.data)).first()
                if clash is not None and clash is not cam:
                    form.slug.errors.append(f"Another camera already uses {form.slug.data}.")
                else:
                    if cam is None:
                        cam = Camera(slug=form.slug.data, name=form.name.data)
                        db.add(cam)
                    cam.name, cam.area = form.name.data, form.area.data or ""
                    cam.stream_url = _new_stream(cam.stream_url, form.stream.data, form.remove_stream.data)
                    cam.substream_url = _new_stream(cam.substream_url, form.substream.data,
                                                    form.remove_substream.data)
                    db.flush()  # the database's refusals first: the bucket is written only if it accepts
                    save_camera_settings(cam.slug, CameraSettings(zone=parse_zone(form.zone.data)))
                    saved = cam.name
            if saved is None:
                return _camera_page(db, form, cam)
    except SettingsNotSaved:
        # Rolled back: the page shows what the admin typed, to try again.
        flash("Nothing was saved: the counting zone could not be stored in the bucket. Try again in a "
              "moment; if it keeps failing, check the bucket (the server log says why).", "error")
        with svc.sessions() as db:
            cam = db.get(Camera, camera_id) if camera_id is not None else None
            return _camera_page(db, form, cam, preview=False), 503
    flash(f"Saved camera {saved}.", "success")  # only once committed
    return redirect(url_for("admin.cameras"))


def _new_stream(stored: str | None, typed: str | None, remove: bool) -> str | None:
    """Leave blank to keep: the stored URL is never sent to the browser, so blank cannot mean "none"."""
    if remove:
        return None
    return typed or stored


def _camera_page(db: Session, form: CameraForm, cam: Camera | None, *, preview: bool = True) -> str:
    """The camera form and, for a camera already made, its latest snapshot with the stored zone drawn over
    it, so the admin sees who counts. No preview while the bucket fails: the stored zone is unknown."""
    snapshot, zone = None, None
    if cam is not None and preview:
        snapshot = db.scalars(select(Detection).where(
            Detection.camera_id == cam.id, Detection.snapshot_key.is_not(None)).order_by(
            Detection.end_time.desc(), Detection.id.desc()).limit(1)).first()
        zone = load_settings(services().bucket, cam.slug).zone
    form.stream.data = form.substream.data = ""  # a typed password is not sent back either
    return render_template("admin/camera.html", form=form, camera=cam, snapshot=snapshot,
                           zone_points=format_zone(zone), caption_bar=CAPTION_BAR,
                           stream_shown=redact_url(cam.stream_url) if cam else "",
                           substream_shown=redact_url(cam.substream_url) if cam else "")


# -- cleaning requests -----------------------------------------------------------------------------

@bp.get("/cleaning")
def cleaning() -> str:
    with services().session() as db:
        query = select(CleaningRequest).options(selectinload(CleaningRequest.requester),
                                                selectinload(CleaningRequest.closed_by))
        open_requests = db.scalars(query.where(CleaningRequest.status != "done").order_by(
            CleaningRequest.created_at.desc())).all()
        done = db.scalars(query.where(CleaningRequest.status == "done").order_by(
            CleaningRequest.closed_at.desc(), CleaningRequest.id.desc()).limit(50)).all()
        return render_template("admin/cleaning.html", open_requests=open_requests, done=done)


@bp.post("/cleaning/<int:request_id>/close")
def close_cleaning(request_id: int) -> Response:
    with services().session() as db:
        req = db.get(CleaningRequest, request_id)
        if req is None:
            abort(404)
        if req.status == "done":
            flash(f"Request #{req.id} was already closed.", "info")
        else:
            req.status, req.closed_at = "done", utcnow()
            flash(f"Closed request #{req.id}.", "success")
    return redirect(url_for("admin.cleaning"))


# -- messages --------------------------------------------------------------------------------------

@bp.get("/messages")
def messages() -> str:
    """Newest first, a page at a time (``before``: the oldest id of the page above)."""
    phone = normalise_phone(request.args.get("phone", "")) or ""
    before = request.args.get("before", type=int)
    with services().session() as db:
        query = select(Message).order_by(Message.id.desc()).limit(MESSAGES_PER_PAGE + 1)
        if phone:
            query = query.where(or_(Message.from_number.contains(phone, autoescape=True),
                                    Message.to_number.contains(phone, autoescape=True)))
        if before:
            query = query.where(Message.id < before)
        rows = db.scalars(query).all()
        names = dict(db.execute(select(User.phone, User.name)).all())
    older = rows[MESSAGES_PER_PAGE - 1].id if len(rows) > MESSAGES_PER_PAGE else None
    return render_template("admin/messages.html", messages=rows[:MESSAGES_PER_PAGE], names=names, phone=phone,
                           older=older, paged=bool(before))


# -- events and dead letters -----------------------------------------------------------------------

@bp.get("/events")
def events() -> str:
    with services().session() as db:
        names = dict(db.execute(select(User.phone, User.name)).all())
        recent = [(e, describe(e.body, names)) for e in db.scalars(
            select(BusEvent).order_by(BusEvent.time.desc()).limit(EVENTS_SHOWN))]
        failing = Invocation.status.in_(("retrying", "dead_letter"))
        failed = db.scalars(select(Invocation).where(failing).order_by(
            Invocation.updated_at.desc()).limit(50)).all()
        letters = list_dead_letters(db, include_replayed=True, limit=100)
    return render_template("admin/events.html", events=recent, failed=failed, letters=letters,
                           status_words=STATUS_WORDS)


@bp.post("/events/dead-letters/<int:letter_id>/replay")
def replay_dead_letter(letter_id: int) -> Response:
    from cloud.adapters import open_invoker
    from cloud.dead_letters import replay

    svc = services()
    with svc.session() as db:
        letter = db.get(DeadLetter, letter_id)
    if letter is None:
        abort(404)
    try:
        done = replay(svc.sessions, open_invoker(svc.config, svc.sessions), [letter_id])
    except Exception as exc:  # noqa: BLE001 - show the operator why, keep the page up
        flash(f"Replay of #{letter_id} failed: {exc}", "error")
    else:
        flash(f"Replayed dead letter #{letter_id} to {letter.function} (request {done[0].request_id}).",
              "success")
    return redirect(url_for("admin.events"))


# -- settings --------------------------------------------------------------------------------------

def read_settings(db: Session) -> dict[str, int]:
    """The building's settings: the stored value, else the configuration's default."""
    config = services().config
    values = {"alert_cooldown_s": config.alert_cooldown_s, "retention_days": config.retention_days,
              "camera_grace_s": config.camera_grace_s}
    for row in db.scalars(select(Setting).where(Setting.key.in_(SETTING_KEYS))):
        with contextlib.suppress(ValueError):  # a hand-edited row must not take the page down
            values[row.key] = int(row.value)
    return values


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> Response | str:
    with services().session() as db:
        form = SettingsForm(data=read_settings(db) if request.method == "GET" else None)
        if form.validate_on_submit():
            for key in SETTING_KEYS:
                db.merge(Setting(key=key, value=str(getattr(form, key).data)))
            flash("Settings saved.", "success")
            return redirect(url_for("admin.settings"))
    return render_template("admin/settings.html", form=form)
