"""``/simulator``: text Corb from a browser, through the real ``/sms`` webhook, signed as Twilio signs.

Only while the outbox messenger is in use (no Twilio account configured): with Twilio, real phones
exist and a page that can post as any of them must not. The message goes in-process through the WSGI
app, so signature validation, dedupe, parsing and publishing all run exactly as for Twilio's post.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import and_, or_, select
from twilio.request_validator import RequestValidator
from wtforms import SelectChoice

from bot.admin.forms import SimulatorForm, normalise_phone
from bot.admin.security import require_admin, services
from bot.models import Message, User

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

# Without a Twilio number Corb's messages come from "corb" (as the outbox messenger writes them).
DEFAULT_CORB_NUMBER = "corb"
FAKE_ACCOUNT_SID = "AC" + "0" * 32


@bp.before_request
def _enabled_and_logged_in() -> Response | None:
    if services().config.uses_twilio:
        abort(404)
    return require_admin()


def corb_number() -> str:
    return services().config.twilio_from or DEFAULT_CORB_NUMBER


def twilio_form(phone: str, body: str) -> dict[str, str]:
    """The form fields Twilio posts for an inbound SMS."""
    sid = "SM" + uuid.uuid4().hex
    return {"ToCountry": "US", "SmsMessageSid": sid, "NumMedia": "0", "SmsSid": sid, "SmsStatus": "received",
            "Body": body, "To": corb_number(), "NumSegments": "1", "MessageSid": sid,
            "AccountSid": services().config.twilio_account_sid or FAKE_ACCOUNT_SID, "From": phone,
            "ApiVersion": "2010-04-01"}


def post_as_twilio(phone: str, body: str) -> tuple[int, str]:
    """POST to this app's own ``/sms`` with Twilio's signature; returns the webhook's status and TwiML."""
    config = services().config
    params = twilio_form(phone, body)
    signature = RequestValidator(config.twilio_auth_token).compute_signature(config.base_url + "/sms", params)
    with current_app.test_client() as client:
        response = client.post("/sms", data=params, headers={"X-Twilio-Signature": signature},
                               base_url=config.base_url)
    return response.status_code, response.get_data(as_text=True)


def _phones() -> list[SelectChoice]:
    with services().session() as db:
        users = db.scalars(select(User).order_by(User.name)).all()
    return [SelectChoice(u.phone, f"{u.name} ({u.phone})") for u in users]


def _message_json(message: Message, phone: str) -> dict[str, Any]:
    media_url = None
    if message.media_key:
        try:
            media_url = services().bucket.presigned_url(message.media_key)  # what the phone would open
        except ValueError:
            media_url = None
    return {"id": message.id, "mine": message.direction == "in", "body": message.body,
            "status": message.status, "time": f"{message.created_at:%H:%M}", "media_url": media_url}


def conversation(phone: str, after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """Messages between ``phone`` and Corb, oldest first, newer than message id ``after``."""
    with services().session() as db:
        rows = db.scalars(select(Message).where(
            Message.id > after,
            or_(and_(Message.direction == "in", Message.from_number == phone),
                and_(Message.direction == "out", Message.to_number == phone)),
        ).order_by(Message.id.desc()).limit(limit)).all()
    return [_message_json(m, phone) for m in reversed(rows)]


@bp.get("")
def page() -> str:
    form = SimulatorForm()
    form.phone.choices = _phones()
    registered = [choice.value for choice in form.phone.choices]
    asked = normalise_phone(request.args.get("phone"))
    phone = asked if asked in registered else (registered[0] if registered else "")
    form.phone.data = phone
    return render_template("admin/simulator.html", form=form, phone=phone, corb_number=corb_number(),
                           messages=conversation(phone) if phone else [])


@bp.post("/send")
def send() -> Response:
    form = SimulatorForm()
    form.phone.choices = _phones()
    wants_json = request.accept_mimetypes.best == "application/json"
    if not form.validate():
        errors = {name: field.errors for name, field in form._fields.items() if field.errors}
        if wants_json:
            response = jsonify(ok=False, status=400, message="invalid message", errors=errors)
            response.status_code = 400
            return response
        flash("Choose a phone and type a message.", "error")
        return redirect(url_for("simulator.page", phone=form.phone.data or ""))
    status, _twiml = post_as_twilio(form.phone.data, form.body.data)
    ok = 200 <= status < 300
    if wants_json:
        response = jsonify(ok=ok, status=status, message="sent" if ok else f"the webhook answered {status}")
        response.status_code = 200 if ok else 502
        return response
    if not ok:
        flash(f"The webhook answered {status}.", "error")
    return redirect(url_for("simulator.page", phone=form.phone.data))


@bp.get("/messages.json")
def messages_json() -> Response:
    phone = normalise_phone(request.args.get("phone")) or ""
    try:
        after = max(0, int(request.args.get("after", "0")))
    except ValueError:
        after = 0
    return jsonify(phone=phone, messages=conversation(phone, after) if phone else [])
