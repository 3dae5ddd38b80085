"""``corb`` commands for running Corb on one machine: serve, db, users, ingest, sms, outbox, replay.

Configuration comes from the environment only (the names are in ``cloud/config.py``).
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
from sqlalchemy import func, select

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _services() -> Any:
    from bot.services import services

    return services()


def e164(_ctx: Any, _param: Any, value: str) -> str:
    """Phone numbers are stored as Twilio sends them (E.164), or a user would never be recognised."""
    compact = re.sub(r"[\s().-]", "", value or "")
    if not E164.match(compact):
        raise click.BadParameter(
            f"{value!r} is not an E.164 phone number. Write it as + then the country code and number, "
            f"with no spaces, e.g. +15551234567.")
    return compact


def register(main: click.Group) -> None:
    for command in (serve, db, users, ingest, sms, outbox, replay):
        main.add_command(command)


# -- serve ------------------------------------------------------------------------------------------
class _LateApp:
    """The WSGI app, filled in once the socket is bound (so ``--port 0`` can pick a free port first)."""

    app: Callable | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=None, help="Port (default: CORB_PORT or 8000; 0 picks a free one).")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Worker threads running functions (handlers, detection).")
def serve(host: str, port: int | None, workers: int) -> None:
    """Run everything on this machine: the web app, the local runtime and the bucket watcher."""
    import os

    from werkzeug.serving import make_server

    late = _LateApp()
    server = make_server(host, port if port is not None else int(os.environ.get("CORB_PORT", "8000")), late,
                         threaded=True)
    os.environ["CORB_PORT"] = str(server.server_port)  # media links and signatures use the real port

    from bot import create_app
    from bot.services import Services, use_services
    from cloud.config import load_config
    from cloud.runtime import start_embedded

    config = load_config()
    if config.bus != "local":
        raise click.UsageError("corb serve runs the local bus only: unset CORB_BUS (it is "
                               f"{config.bus!r}); on AWS the functions run in Lambda.")
    svc = Services(config)
    use_services(svc)
    late.app = create_app(svc)
    embedded = start_embedded(config, sessions=svc.sessions, bucket=svc.bucket, workers=workers)

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"Corb is running at http://{host}:{server.server_port} (public URL {config.base_url}); "
               f"data in {config.data_dir}. Press Ctrl-C to stop.", err=False)
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        click.echo("Stopping: letting running functions finish...")
        server.server_close()
        embedded.stop(timeout=30)
        svc.close()
        click.echo("Stopped.")


# -- db ---------------------------------------------------------------------------------------------
@click.group()
def db() -> None:
    """Create or change the database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Migrate the database (DATABASE_URL, else SQLite under CORB_DATA_DIR) up to REVISION."""
    from cloud.config import load_config
    from cloud.migrate import upgrade

    url = load_config().database_url
    upgrade(url, revision)
    click.echo(f"Database at {_redact(url)} is at {revision}.")


@db.command("downgrade")
@click.option("--revision", default="-1", show_default=True, help="Target; 'base' removes every table.")
@click.confirmation_option(prompt="Downgrading can delete data. Continue?")
def db_downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (one step by default)."""
    from cloud.config import load_config
    from cloud.migrate import downgrade

    url = load_config().database_url
    downgrade(url, revision)
    click.echo(f"Database at {_redact(url)} downgraded to {revision}.")


def _redact(url: str) -> str:
    from agent.redact import redact_url

    return redact_url(url)


# -- users and cameras --------------------------------------------------------------------------------
@click.group()
def users() -> None:
    """People who may text Corb."""


@users.command("add")
@click.argument("phone", callback=e164)
@click.option("--name", required=True, help="How Corb names them to others (e.g. in reports).")
@click.option("--role", type=click.Choice(["admin", "member", "cleaner"]), default="member",
              show_default=True)
def users_add(phone: str, name: str, role: str) -> None:
    """Register PHONE (E.164, e.g. +15551234567), or update its name and role."""
    from bot.models import Role, User

    with _services().session() as s:
        user = s.scalars(select(User).where(User.phone == phone)).first()
        verb = "Updated" if user else "Added"
        if user is None:
            user = User(phone=phone)
            s.add(user)
        user.name, user.role = name, Role(role)
    click.echo(f"{verb} {role} {name} ({phone}).")


@users.command("list")
def users_list() -> None:
    """List registered people."""
    from bot.models import User

    with _services().sessions() as s:
        rows = s.scalars(select(User).order_by(User.id)).all()
    if not rows:
        click.echo("No users yet: corb users add +15551234567 --name NAME --role member")
    for u in rows:
        click.echo(f"{u.phone:<16} {u.role.value:<8} {u.name}{'  (opted out)' if u.opted_out else ''}")


# -- ingest -----------------------------------------------------------------------------------------
@click.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--camera", "slug", required=True, help="The registered camera it comes from.")
def ingest(video: Path, slug: str) -> None:
    """Put VIDEO (Matroska, .mkv) into the bucket as camera SLUG would upload a segment.

    Other containers are refused rather than converted: OpenCV can only re-encode, not remux, which is
    slow and lossy. Convert first, e.g. ``ffmpeg -i in.mp4 -c copy out.mkv``.
    """
    from bot.models import Camera

    if video.suffix.lower() != ".mkv":
        raise click.BadParameter(f"{video.name} is not a .mkv file; cameras upload Matroska segments. "
                                 f"Convert it first: ffmpeg -i {video.name} -c copy {video.stem}.mkv",
                                 param_hint="VIDEO")
    svc = _services()
    with svc.sessions() as s:
        if s.scalar(select(Camera.id).where(Camera.slug == slug)) is None:
            raise click.BadParameter(f"no camera {slug!r}; add it with: corb cameras add {slug} --area AREA",
                                     param_hint="--camera")
    key = f"cameras/{slug}/{datetime.now(UTC):%Y-%m-%dT%H-%M-%SZ}.mkv"
    info = svc.bucket.upload(video, key, "video/x-matroska")
    click.echo(f"Stored {video} as {key} ({info.size} bytes, eTag {info.etag}).")


# -- sms (a phone in the terminal) ------------------------------------------------------------------------
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


@click.command()
@click.argument("sender", metavar="FROM", callback=e164)
@click.argument("text")
@click.option("--url", help="The webhook (default: the configured public URL + /sms).")
@click.option("--to", default=None, help="Corb's number (default: TWILIO_FROM or +15550001000).")
@click.option("--wait", type=float, default=8.0, show_default=True, help="Seconds to wait for replies.")
def sms(sender: str, text: str, url: str | None, to: str | None, wait: float) -> None:
    """Text Corb from FROM, as Twilio would deliver it, and print what comes back."""
    from cloud.config import load_config

    config = load_config()
    url = url or config.base_url + "/sms"
    form, signature = signed_form(url, sender, text, to=to or config.twilio_from or "+15550001000",
                                  token=config.twilio_auth_token)
    try:
        since: int | None = _last_outbound_id()
    except Exception as exc:  # noqa: BLE001 - the outbox is a nicety; the webhook answer is the point
        click.echo(f"  (cannot read the outbox here: {type(exc).__name__}; showing the webhook answer only)")
        since = None
    req = urllib.request.Request(url, data=urlencode(form).encode(), method="POST", headers={
        "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            answer = twiml_text(resp.read())
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{url} answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {url} ({exc.reason}). Is `corb serve` running?") from None
    click.echo(f"> {text}")
    for line in answer:
        click.echo(f"< {line}")
    if not answer:
        click.echo("  (no immediate reply)")
    if since is None:
        return
    seen = 0
    pending_answers = list(answer)
    # An immediate answer (help, unknown, refusal) means no handler is working on it: wait only briefly.
    deadline, quiet_until = time.monotonic() + (min(wait, 1.5) if answer else wait), None
    while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
        for msg in _outbound(since, to=sender):
            since = max(since, msg.id)
            if msg.body in pending_answers:  # the webhook's own answer, stored as sent: shown above
                pending_answers.remove(msg.body)
                continue
            seen += 1
            quiet_until = time.monotonic() + 1.5
            click.echo(_format(msg))
        time.sleep(0.2)
    if not seen and not answer:
        click.echo(f"  (nothing in the outbox for {sender} after {wait:g} s)")


def _last_outbound_id() -> int:
    from bot.models import Message

    with _services().sessions() as s:
        return s.scalar(select(func.max(Message.id))) or 0


def _outbound(after_id: int = 0, *, to: str | None = None, limit: int | None = None) -> list[Any]:
    from bot.models import Message

    with _services().sessions() as s:
        q = select(Message).where(Message.direction == "out", Message.id > after_id)
        if to:
            q = q.where(Message.to_number == to)
        if limit:
            return list(reversed(s.scalars(q.order_by(Message.id.desc()).limit(limit)).all()))
        return list(s.scalars(q.order_by(Message.id)))


def _format(msg: Any) -> str:
    kind = "MMS" if msg.media_key else "SMS"
    head = f"< [{kind} to {msg.to_number} {msg.created_at:%H:%M:%S} {msg.status}] "
    body = msg.body.replace("\n", "\n  ")
    return head + body + (f"\n  picture: {msg.media_url}" if msg.media_url else "")


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
    last = 0
    batch = _outbound(to=phone, limit=limit)
    try:
        while True:
            for msg in batch:
                click.echo(json.dumps(_as_json(msg)) if as_json else _format(msg))
                last = max(last, msg.id)
            if not follow:
                break
            time.sleep(0.5)
            batch = _outbound(last, to=phone)
    except KeyboardInterrupt:
        pass
    if not last and not as_json:
        click.echo("The outbox is empty.")


# -- replay -----------------------------------------------------------------------------------------
@click.command()
@click.option("--id", "ids", type=int, multiple=True, help="A dead letter to replay (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter not replayed yet.")
def replay(ids: tuple[int, ...], all_: bool) -> None:
    """Invoke failed functions again with their original event (dead letters)."""
    from cloud.dead_letters import list_dead_letters, open_invoker
    from cloud.dead_letters import replay as replay_letters

    svc = _services()
    if not ids and not all_:
        with svc.sessions() as s:
            letters = list_dead_letters(s)
        if not letters:
            click.echo("No dead letters.")
        for dl in letters:
            click.echo(f"{dl.id:>5}  {dl.created_at:%Y-%m-%d %H:%M:%S}  {dl.function}  {dl.error[:80]}")
        if letters:
            click.echo("Replay with --id N or --all.")
        return
    try:
        done = replay_letters(svc.sessions, open_invoker(svc.config, svc.sessions),
                              list(ids) if ids else None)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from None
    if not done:
        click.echo("No dead letters to replay.")
    for r in done:
        click.echo(f"Replayed dead letter {r.dead_letter_id} ({r.function}) as invocation {r.request_id}.")
