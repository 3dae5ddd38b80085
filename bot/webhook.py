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
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
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
# Twilio's own identifiers. Its signature joins sorted name+value pairs without separators, so a captured
# request re-sent with a field boundary moved (``MessageSid=<sid>NumMedia0``, ``NumMedia`` dropped) carries
# the same valid signature: exact shapes make every such rewrite a 400 instead of a "new" message.
MESSAGE_SID = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
SID_ALIASES = ("SmsSid", "SmsMessageSid")  # older names Twilio still sends: equal to MessageSid when present
MAX_ADDRESS = 32  # From/To: E.164 (16), short codes, "whatsapp:+..." (the columns hold 32)
MAX_BODY = 1600  # Twilio's own limit for one message; what is stored of a longer Body
RETRY_AFTER_S = 60

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


def _single(form: Any, name: str) -> str:
    """A field Twilio sends at most once; a repeated one is a rewritten request (400)."""
    values = form.getlist(name)
    if len(values) > 1:
        abort(400, f"{name} given {len(values)} times")
    return values[0] if values else ""


def _inbound_fields() -> tuple[str, str, str, str]:
    """(MessageSid, From, To, Body), refused with 400 unless each has the shape Twilio gives it.

    Checked at the edge, before any database sees them: a value over a column's length is a 500 on
    PostgreSQL (SQLite stores it), and a loose MessageSid is the boundary-replay hole described above.
    """
    form = request.form
    sid = _single(form, "MessageSid")
    if not MESSAGE_SID.match(sid):
        abort(400, "MessageSid is not a Twilio message SID")
    for alias in SID_ALIASES:
        if alias in form and _single(form, alias) != sid:
            abort(400, f"{alias} differs from MessageSid")
    account = _single(form, "AccountSid")
    if account and not ACCOUNT_SID.match(account):
        abort(400, "AccountSid is not a Twilio account SID")
    media = _single(form, "NumMedia")
    if media and not (media.isdigit() and len(media) <= 2):
        abort(400, "NumMedia is not a small number")
    sender, to, body = _single(form, "From"), _single(form, "To"), _single(form, "Body")
    for name, value in (("From", sender), ("To", to)):
        if len(value) > MAX_ADDRESS or any(c.isspace() or not c.isprintable() for c in value):
            abort(400, f"{name} is not a phone number or sender id")
    if not sender:
        abort(400, "From is missing")
    return sid, sender, to, body[:MAX_BODY]


@bp.errorhandler(SQLAlchemyError)
def _storage_failed(exc: SQLAlchemyError) -> Response:
    """The database refused a read or write (disk full, read-only, gone): nothing was stored, so ask
    Twilio to try again later (503 + Retry-After; Twilio retries 5xx when the webhook URL's connection
    overrides ask it to, and calls the fallback URL otherwise) and say in the log what really happened."""
    sid, sender = request.form.get("MessageSid", "")[:40], request.form.get("From", "")[:40]
    what = " ".join(filter(None, [request.path, sid, sender and f"from {sender}"]))
    log.error("could not store %s, answered 503 for Twilio to retry: %s", what,
              getattr(exc, "orig", None) or exc)
    response = twiml()
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


@bp.post("/sms")
def inbound() -> Response:
    _verify_signature()
    svc = _services()
    sid, sender, to, body = _inbound_fields()

    with svc.engine.connect() as conn:  # read-only, plain Core (this is the hot path): dedupe, who is this
        seen = conn.execute(_SEEN, {"sid": sid}).first()
        user = conn.execute(_SENDER, {"phone": sender}).first()
    if seen and seen.status != "failed":
        return twiml()  # Twilio redelivered: answered the first time, nothing more to do

    inbound_row = {"direction": "in", "sid": sid, "from_number": sender, "to_number": to,
                   "body": body, "status": "received", "error": None}
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
            except SQLAlchemyError:
                raise  # the database itself failed: nothing can be kept, Twilio must retry (503)
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
    sid, status = _single(request.form, "MessageSid"), _single(request.form, "MessageStatus").lower()
    if not MESSAGE_SID.match(sid) or status not in STATUS_RANK:
        abort(400)
    error = _single(request.form, "ErrorCode") or None
    if error and not (error.isdigit() and len(error) <= 8):
        abort(400)
    with _services().session() as s:
        msg = s.scalars(select(Message).where(Message.sid == sid)).first()
        if msg is not None and STATUS_RANK[status] >= STATUS_RANK.get(msg.status, 0):
            msg.status = status
            if error:
                msg.error = f"Twilio error {error}"
    return Response(status=204)
