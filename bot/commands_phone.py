"""``corb sms`` and ``corb outbox``: a phone in the terminal, talking to the running ``corb serve``.

A command-line phone should answer about as fast as the web one, so this module imports only click
and the standard library at load time (``corb --help`` lists it), and each command imports the rest
it needs. ``corb sms`` finds the server of its data directory (``bot.server_info``), posts as Twilio
would, and returns as soon as the functions working on that message have finished: the runtime's
invocations carry the message's ``MessageSid`` in their payload (destinations repeat the request).
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import click

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
DEFAULT_CORB_NUMBER = "+15550001000"
POLL_S = 0.1


def e164(_ctx: Any, _param: Any, value: str) -> str:
    """Phone numbers are stored as Twilio sends them (E.164), or a user would never be recognised."""
    compact = re.sub(r"[\s().-]", "", value or "")
    if not E164.match(compact):
        raise click.BadParameter(
            f"{value!r} is not an E.164 phone number. Write it as + then the country code and number, "
            f"with no spaces, e.g. +15551234567.")
    return compact


def register(main: click.Group) -> None:
    for command in (sms, outbox):
        main.add_command(command)


def signed_form(url: str, sender: str, text: str, *, to: str, token: str) -> tuple[dict[str, str], str]:
    """The form and X-Twilio-Signature of an inbound message, exactly as Twilio builds them."""
    from twilio.request_validator import RequestValidator

    sid = "SM" + uuid.uuid4().hex
    form = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": "AC" + "0" * 32,
            "MessagingServiceSid": "", "From": sender, "To": to, "Body": text, "NumMedia": "0",
            "NumSegments": str(max(1, -(-len(text) // 160))), "SmsStatus": "received",
            "ApiVersion": "2010-04-01"}
    return form, RequestValidator(token).compute_signature(url, form)


def twiml_text(xml: bytes) -> list[str]:
    try:
        return [m.text or "" for m in ET.fromstring(xml).iter("Message")]
    except ET.ParseError:
        return [xml.decode(errors="replace")]


def no_server(config: Any) -> str:
    return (f"No Corb server is running for the data directory {config.data_dir}. Start it with "
            f"scripts/demo.sh (or corb serve), or set CORB_DATA_DIR to the directory the running server "
            f"uses.")


def _targets(config: Any, url: str | None) -> tuple[str, str]:
    """(URL to post to, URL Twilio would have signed): the data directory's live server, or ``--url``."""
    if url:
        return url, url
    from bot.server_info import find_server

    server = find_server(config)
    if server is None:
        raise click.ClickException(no_server(config))
    return server.url + "/sms", server.public_url + "/sms"


@click.command()
@click.argument("sender", metavar="FROM", callback=e164)
@click.argument("text")
@click.option("--url", help="Post to this webhook instead of the running server of CORB_DATA_DIR.")
@click.option("--to", default=None, help=f"Corb's number (default: TWILIO_FROM or {DEFAULT_CORB_NUMBER}).")
@click.option("--wait", type=float, default=20.0, show_default=True,
              help="At most this many seconds for Corb's functions to answer.")
def sms(sender: str, text: str, url: str | None, to: str | None, wait: float) -> None:
    """Text Corb from FROM, as Twilio would deliver it, and print Corb's answers.

    Returns at once when the webhook answered itself (help, refusals), else once every function
    working on the message has finished.
    """
    from cloud.config import load_config

    config = load_config()
    post_url, signed_url = _targets(config, url)
    corb_number = to or config.twilio_from or DEFAULT_CORB_NUMBER
    form, signature = signed_form(signed_url, sender, text, to=corb_number, token=config.twilio_auth_token)
    req = urllib.request.Request(post_url, data=urlencode(form).encode(), method="POST", headers={
        "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            answer = twiml_text(resp.read())
    except urllib.error.HTTPError as exc:
        hint = (" (the signature did not match: is that server using this data directory?)"
                if exc.code == 403 else "")
        raise click.ClickException(f"{post_url} answered {exc.code} {exc.reason}{hint}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {post_url} ({exc.reason}). Is `corb serve` running?"
                                   ) from None
    click.echo(f"> {text}")
    for line in answer:
        click.echo(f"< {line}")
    if answer or url:  # answered at once (no function runs), or another server's outbox
        return
    outcome = _wait_for_functions(form["MessageSid"], wait)
    replies = _outbound(_inbound_id(form["MessageSid"]), to=sender)
    for msg in replies:
        click.echo(_reply_line(msg))
    if outcome == "working":
        click.echo(f"  (Corb is still working on it after {wait:g} s: "
                   "`corb outbox --follow` shows what comes)")
    elif outcome == "failed":
        click.echo("  (a function failed on this message and gave up after its retries: "
                   "`corb replay` lists it)")
    elif not replies:
        click.echo("  (Corb sent no answer to this message)")


def _wait_for_functions(sid: str, wait: float) -> str:
    """Wait until no function is working on message ``sid``: "done", "failed" or (timed out) "working"."""
    from sqlalchemy import select

    from cloud.models import Invocation

    unfinished = ("pending", "running", "retrying")
    deadline = time.monotonic() + wait
    while True:
        with _services().sessions() as s:
            statuses = set(s.scalars(select(Invocation.status).where(Invocation.payload.contains(sid))))
        if not statuses & set(unfinished):
            return "failed" if "dead_letter" in statuses else "done"
        if time.monotonic() >= deadline:
            return "working"
        time.sleep(POLL_S)


def _services() -> Any:
    from bot.services import services

    return services()


def _inbound_id(sid: str) -> int:
    """The stored row of the message just sent: Corb's answers to it come after it."""
    from sqlalchemy import select

    from bot.models import Message

    with _services().sessions() as s:
        return s.scalar(select(Message.id).where(Message.sid == sid)) or 0


def _outbound(after_id: int = 0, *, to: str | None = None, limit: int | None = None) -> list[Any]:
    from sqlalchemy import select

    from bot.models import Message

    with _services().sessions() as s:
        q = select(Message).where(Message.direction == "out", Message.id > after_id)
        if to:
            q = q.where(Message.to_number == to)
        if limit:
            return list(reversed(s.scalars(q.order_by(Message.id.desc()).limit(limit)).all()))
        return list(s.scalars(q.order_by(Message.id)))


def _picture(msg: Any) -> str:
    return f"\n  picture: {msg.media_url}" if msg.media_url else ""


def _reply_line(msg: Any) -> str:
    """One answer as the phone shows it: the text (an MMS adds its picture link)."""
    kind = "MMS: " if msg.media_key else ""
    return f"< {kind}{msg.body}".replace("\n", "\n  ") + _picture(msg)


def _format(msg: Any) -> str:
    kind = "MMS" if msg.media_key else "SMS"
    head = f"[{kind} to {msg.to_number} {msg.created_at:%H:%M:%S} UTC, {msg.status}] "
    return head + msg.body.replace("\n", "\n  ") + _picture(msg)


def _as_json(msg: Any) -> dict:
    return {"id": msg.id, "sid": msg.sid, "to": msg.to_number, "from": msg.from_number, "body": msg.body,
            "media_key": msg.media_key, "media_url": msg.media_url, "status": msg.status, "error": msg.error,
            "created_at": msg.created_at.isoformat() + "Z"}


@click.command()
@click.option("--to", "phone", callback=lambda c, p, v: e164(c, p, v) if v else None,
              help="Only to this number.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new messages (Ctrl-C to stop).")
@click.option("--limit", type=int, default=20, show_default=True, help="How many recent messages first.")
def outbox(phone: str | None, as_json: bool, follow: bool, limit: int) -> None:
    """Show the texts Corb sent (the outbox messenger's queue)."""
    from bot.server_info import find
    from cloud.config import load_config

    config = load_config()
    if find(config) is None:
        click.echo(f"({no_server(config)} Showing what it sent before.)", err=True)
        if follow:
            raise click.ClickException("nothing new can arrive: --follow needs a running server")
    last = 0
    batch = _outbound(to=phone, limit=limit)
    try:
        while True:
            for msg in batch:
                click.echo(json.dumps(_as_json(msg)) if as_json else _format(msg))
                last = max(last, msg.id)
            if not follow:
                break
            sys.stdout.flush()
            time.sleep(0.5)
            batch = _outbound(last, to=phone)
    except KeyboardInterrupt:
        pass
    if not last and not as_json:
        click.echo("The outbox is empty.")
