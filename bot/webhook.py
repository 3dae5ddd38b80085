"""``POST /sms``: Twilio's inbound-message webhook, and ``POST /sms/status``: its delivery callbacks.

Fast path, in order: validate the signature, dedupe on ``MessageSid``, look up the sender, parse,
publish, store, answer with TwiML. Slow work happens in handlers that answer through the messenger.

Publishing and storing, per bus:
- The local bus lives in the same database, so the event (and its invocations) is written in the SAME
  transaction as the inbound row (``LocalBus.put_events_in``): both commit or neither does.
- EventBridge cannot join a database transaction, so the command is published first and the inbound
  row is written after. If publishing fails, the row is stored with status ``failed`` and the sender is
  asked to try again; a redelivery of that ``MessageSid`` is processed afresh (failed rows do not count
  as seen). If the process dies after publishing but before committing, the command still runs, and a
  redelivery publishes it again: the handlers dedupe on ``message_sid``, so nothing happens twice.
Reads happen in their own short transaction and the write transaction starts with the INSERT, so on
SQLite it takes the write lock at once (no stale-snapshot upgrade failures under concurrency).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.twiml.messaging_response import MessagingResponse

from bot import replies
from bot.grammar import CameraRef, Command, parse
from bot.models import Camera, Message, Refusal, User
from cloud.db import utcnow
from cloud.events import entry as event_entry

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)

SOURCE = "corb.sms"
DETAIL_TYPE = "command"
# Commands a handler acts on (declared in zappa_settings.json); everything else is answered here.
ROUTED = frozenset({"status", "cameras", "snapshot", "subscribe", "unsubscribe", "request_cleaning", "done"})
REFUSAL_WINDOW = timedelta(hours=24)
CATALOG_TTL_S = 5.0
BUSY = "Sorry, Corb could not take that right now. Please try again in a minute."

# Message statuses in the order Twilio reports them; callbacks only move a message forward.
STATUS_RANK = {"received": 0, "queued": 1, "accepted": 1, "scheduled": 1, "sending": 2, "sent": 3,
               "delivered": 4, "read": 5, "undelivered": 4, "failed": 4, "canceled": 4}


# Statements built once: constructing SQLAlchemy statements per request costs more than running them.
_SEEN = select(Message.id, Message.status).where(Message.sid == bindparam("sid"))
_SENDER = select(User.id, User.phone, User.name, User.opted_out).where(User.phone == bindparam("phone"))
_INSERT = Message.__table__.insert()
_CATALOG = select(Camera.slug, Camera.name, Camera.area).order_by(Camera.slug)
_REFUSAL = select(Refusal.last_at).where(Refusal.phone == bindparam("phone"))
_INSERT_REFUSAL = Refusal.__table__.insert()


def twiml(text: str | None = None) -> Response:
    resp = MessagingResponse()
    if text:
        resp.message(text)
    return Response(str(resp), mimetype="application/xml")


def _services() -> Services:
    return current_app.config["CORB_SERVICES"]


def signed_url() -> str:
    """The URL Twilio signed: the public base URL (scheme, host, any stage prefix) plus this path.

    Behind a proxy or API Gateway the request's own Host and scheme are not what Twilio called, and
    ``request.path`` excludes the mount point (SCRIPT_NAME, e.g. Zappa's stage), which the configured
    public URL includes.
    """
    url = _services().config.base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return url


def _verify_signature() -> None:
    signature = request.headers.get("X-Twilio-Signature", "")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    validator = RequestValidator(_services().config.twilio_auth_token)
    if not signature or not validator.validate(signed_url(), request.form, signature, algorithm):
        abort(403)


@dataclass(frozen=True)
class Catalog:
    cameras: tuple[CameraRef, ...]
    areas: tuple[str, ...]
    expires: float


def catalog(svc: Services) -> Catalog:
    """Camera and area names for the grammar, cached per app for a few seconds (the webhook is hot)."""
    cached: Catalog | None = current_app.extensions.get("corb.catalog")
    if cached and cached.expires > time.monotonic():
        return cached
    with svc.sessions() as s:
        rows = s.execute(_CATALOG).all()
    refs = tuple(CameraRef(slug, name, area) for slug, name, area in rows)
    areas = tuple(dict.fromkeys(a for _, _, a in rows if a))
    fresh = Catalog(refs, areas, time.monotonic() + CATALOG_TTL_S)
    current_app.extensions["corb.catalog"] = fresh
    return fresh


def command_detail(cmd: Command, *, sender: Any, message_sid: str, text: str) -> dict:
    """The ``detail`` of a ``corb.sms`` / ``command`` event: what every SMS handler receives."""
    return {"command_type": cmd.type, "camera": cmd.camera, "area": cmd.area, "note": cmd.note,
            "number": cmd.number, "sender": sender.phone, "sender_name": sender.name,
            "message_sid": message_sid, "text": text}


@bp.post("/sms")
def inbound() -> Response:
    _verify_signature()
    svc = _services()
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    sender, to, body = form.get("From", ""), form.get("To", ""), form.get("Body", "")
    if not sid or not sender:
        abort(400)

    with svc.engine.connect() as conn:  # read-only, plain Core (this is the hot path): dedupe, who is this
        seen = conn.execute(_SEEN, {"sid": sid}).first()
        user = conn.execute(_SENDER, {"phone": sender}).first()
    if seen and seen.status != "failed":
        return twiml()  # Twilio redelivered: answered the first time, nothing more to do

    inbound_row = {"direction": "in", "sid": sid, "from_number": sender, "to_number": to,
                   "body": body[:1600], "status": "received", "error": None}
    if user is None:
        return _store(svc, inbound_row, seen_id=seen and seen.id, refuse=sender)

    names = catalog(svc)
    cmd = parse(body, cameras=names.cameras, areas=names.areas)
    reply: str | None = None
    opt: bool | None = None  # new opted_out value
    if user.opted_out:
        if cmd.type == "start":
            opt, reply = False, replies.STARTED
        # otherwise an opted-out user gets nothing at all
    elif cmd.type == "stop":
        opt, reply = True, replies.STOPPED
    elif cmd.type == "start":
        reply = replies.STARTED
    elif cmd.type == "help":
        reply = replies.HELP
    elif cmd.type == "unknown":
        reply = replies.UNKNOWN
    else:
        entry = event_entry(SOURCE, DETAIL_TYPE, command_detail(cmd, sender=user, message_sid=sid, text=body))
        bus = svc.bus
        if hasattr(bus, "put_events_in"):  # the local bus: same transaction as the inbound row
            try:
                return _store(svc, inbound_row, seen_id=seen and seen.id, entry=entry)
            except Exception as exc:  # noqa: BLE001 - the bus refused: keep the message, tell the sender
                return _publish_failed(svc, inbound_row, seen and seen.id, exc)
        try:
            bus.put_events([entry])
        except Exception as exc:  # noqa: BLE001 - any bus failure: keep the message, tell the sender
            return _publish_failed(svc, inbound_row, seen and seen.id, exc)
    return _store(svc, inbound_row, seen_id=seen and seen.id, reply=reply, user_id=user.id, opted_out=opt)


def _publish_failed(svc: Services, row: dict, seen_id: int | None, exc: Exception) -> Response:
    log.error("could not publish %s from %s: %s", row["sid"], row["from_number"], exc)
    row = {**row, "status": "failed", "error": f"publish failed: {exc}"[:1000]}
    return _store(svc, row, seen_id=seen_id, reply=BUSY)


def _store(svc: Services, row: dict, *, seen_id: int | None, reply: str | None = None,
           refuse: str | None = None, user_id: int | None = None, opted_out: bool | None = None,
           entry: dict | None = None) -> Response:
    """The request's one write transaction: the inbound row first (it takes the write lock), then the
    sender's state, then (local bus) the event. A concurrent duplicate loses on the unique sid and
    answers nothing. Plain Core on one connection: this is the hot path, and an ORM session's
    bookkeeping would cost more than the rows."""
    try:
        with svc.engine.begin() as conn:
            if seen_id:  # a redelivery of a message whose first attempt failed to publish
                conn.execute(update(Message).where(Message.id == seen_id).values(**row))
            else:
                conn.execute(_INSERT, row)
            if opted_out is not None and user_id is not None:
                conn.execute(update(User).where(User.id == user_id).values(opted_out=opted_out))
            if refuse:
                reply = replies.REFUSAL if _may_refuse(conn, refuse) else None
            if reply:
                # Twilio sends the TwiML answer as an SMS of its own: keep it with the rest of the talk.
                conn.execute(_INSERT, {
                    "direction": "out", "sid": None, "from_number": row["to_number"],
                    "to_number": row["from_number"], "body": reply, "status": "sent", "error": None})
            if entry is not None:
                svc.bus.put_events_in(conn, [entry])  # type: ignore[attr-defined]
    except IntegrityError:
        return twiml()
    if entry is not None:
        from cloud.local_bus import notify

        notify()  # wake this process's runtime (others poll)
    return twiml(reply)


def _may_refuse(conn: Connection, phone: str) -> bool:
    """Unknown numbers hear "no" once per window; after that, silence (no reply costs, no spam loop)."""
    now = utcnow()
    found = conn.execute(_REFUSAL, {"phone": phone}).first()
    if found is None:
        conn.execute(_INSERT_REFUSAL, {"phone": phone, "last_at": now, "count": 1})
        return True
    again = now - found.last_at >= REFUSAL_WINDOW
    values: dict[str, Any] = {"count": Refusal.count + 1}
    if again:
        values["last_at"] = now
    conn.execute(update(Refusal).where(Refusal.phone == phone).values(**values))
    return again


@bp.post("/sms/status")
def status_callback() -> Response:
    """Twilio's delivery reports: move the stored message's status forward (never back)."""
    _verify_signature()
    sid, status = request.form.get("MessageSid", ""), (request.form.get("MessageStatus") or "").lower()
    if not sid or status not in STATUS_RANK:
        abort(400)
    error = request.form.get("ErrorCode") or None
    with _services().session() as s:
        msg = s.scalars(select(Message).where(Message.sid == sid)).first()
        if msg is not None and STATUS_RANK[status] >= STATUS_RANK.get(msg.status, 0):
            msg.status = status
            if error:
                msg.error = f"Twilio error {error}"
    return Response(status=204)
