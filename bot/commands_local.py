"""``corb`` commands for running Corb on one machine: serve, runtime, db, users, ingest, replay.

Configuration comes from the environment only (the names are in ``cloud/config.py``).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bot import server_info
from bot.commands_phone import e164

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def _services() -> Any:
    from bot.services import services

    return services()


def register(main: click.Group) -> None:
    for command in (serve, runtime, db, users, ingest, replay):
        main.add_command(command)


# -- serve ------------------------------------------------------------------------------------------
def _cpus() -> int:
    return os.cpu_count() or 1


def default_detection_workers(cpus: int) -> int:
    """Half the cores, but two at least: a camera's 2-s segment with someone walking in (the alert) must not
    queue behind the analysis of the long segment the agent closed 2 s before it (on a slow 2-core host that
    took 2 - 3 s and put 0.2 - 1 s on the alert). Lambda runs them side by side too; the alerts handler
    takes results in any order (``bot.handlers.alerts``)."""
    return max(2, cpus // 2)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=None, help="Port (default: CORB_PORT or 8000; 0 picks a free one).")
@click.option("--web-workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes answering web requests (default: one per core).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Concurrent invocations of the bot's functions (handlers), each in its own process "
                   "(default: one per core, at least 2).")
@click.option("--detection-workers", type=click.IntRange(1, 64), default=None,
              help="Concurrent detection invocations (default: half the cores, at least 2), at low priority.")
@click.option("--runtime-nice", type=click.IntRange(0, 19), default=15, show_default=True,
              help="How much lower the runtime's CPU priority is than the web server's (detection: lower "
                   "still, down to 19), so webhooks are answered first when the machine is busy; replies "
                   "queue meanwhile and go out as soon as it is less busy.")
def serve(host: str, port: int | None, web_workers: int | None, workers: int | None,
          detection_workers: int | None, runtime_nice: int) -> None:
    """Run all of Corb on this machine: web app, functions and camera agent.

    Each in its own processes (see bot/serve.py): gunicorn for the web app; the local runtime and the
    bucket watcher; the camera agent for the cameras that have a stream."""
    from bot.serve import Supervisor, bind, default_children
    from cloud.config import load_config

    wanted = port if port is not None else int(os.environ.get("CORB_PORT", "8000"))
    try:
        sock = bind(host, wanted)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{wanted}: {exc.strerror or exc}. Is another "
                                   f"corb serve running? Use --port 0 for any free port.") from exc
    os.environ["CORB_PORT"] = str(sock.getsockname()[1])  # media links and signatures use the real port
    config = load_config()  # also generates the secrets once, before any child could race for them
    if config.bus != "local":
        raise click.UsageError("corb serve runs the local bus only: unset CORB_BUS (it is "
                               f"{config.bus!r}); on AWS the functions run in Lambda.")
    children = default_children(sock, web_workers=web_workers or _cpus(), workers=workers or max(2, _cpus()),
                                detection_workers=detection_workers or default_detection_workers(_cpus()),
                                runtime_nice=runtime_nice)
    supervisor = Supervisor(children, echo=click.echo)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    supervisor.start()
    sock.close()  # gunicorn holds it now
    url = f"http://{host}:{os.environ['CORB_PORT']}"
    server_info.record(config, url, os.getpid())
    click.echo(f"Corb is running at {url} (public URL {config.base_url}); data in {config.data_dir}. "
               f"Press Ctrl-C to stop.")
    sys.stdout.flush()
    code = 0
    try:
        code = supervisor.watch()
    finally:
        click.echo("Stopping: running functions are handed back to the queue...")
        supervisor.stop()
        server_info.clear(config)
        click.echo("Stopped.")
    if code:
        raise SystemExit(code)


@click.command()
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Concurrent invocations of the main stage's functions (the bot's handlers).")
@click.option("--detection-workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Concurrent invocations of each other stage's functions (detection), at low priority.")
@click.option("--grace", type=float, default=3.0, show_default=True,
              help="Seconds running functions get at SIGTERM before they are stopped and handed back.")
@click.option("--nice", type=click.IntRange(0, 19), default=0, show_default=True,
              help="Lower this process's CPU priority (and its sandboxes') so web requests come first.")
def runtime(workers: int, detection_workers: int, grace: float, nice: int) -> None:
    """Run the local runtime and the bucket watcher (``corb serve`` starts this beside the web server).

    Every invocation runs in a sandbox process that is killed at the function's timeout; each Lambda
    function (Zappa stage) has its own pool, so SMS replies never queue behind video analysis."""
    from bot.services import Services, use_services
    from cloud.config import load_config
    from cloud.db import make_engine, make_sessionmaker
    from cloud.declaration import load_declaration
    from cloud.runtime import start_embedded

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s [runtime] %(name)s: %(message)s")
    if nice:
        os.nice(nice)
    config = load_config()
    svc = Services(config)
    use_services(svc)
    declaration = load_declaration(config.stage)
    others = [stage for stage in declaration.stages if stage != declaration.stage]
    # The runtime's claims and outcomes need not wait for the disk (see make_engine): one lost in a power
    # cut is run again. The handlers (in sandboxes) and the watcher commit durably.
    bookkeeping = make_sessionmaker(make_engine(config.database_url, durable=False))
    embedded = start_embedded(config, sessions=svc.sessions, bucket=svc.bucket, isolation="process",
                              runtime_sessions=bookkeeping,
                              tmp_root=config.data_dir / "tmp", poll_interval=0.1,
                              concurrency={declaration.stage: workers,
                                           **dict.fromkeys(others, detection_workers)},
                              nice=dict.fromkeys(others, 10))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.wait(0.5):
        pass
    embedded.stop(timeout=grace)
    svc.close()


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
    """Register PHONE (in E.164 form: +15551234567), or update its name and role."""
    from sqlalchemy import select

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
    from sqlalchemy import select

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

    Other containers are refused rather than converted here: ffmpeg remuxes them without re-encoding,
    e.g. ``ffmpeg -i in.mp4 -c copy out.mkv``.
    """
    from sqlalchemy import select

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


# -- replay -----------------------------------------------------------------------------------------
@click.command()
@click.option("--id", "ids", type=int, multiple=True, help="A dead letter to replay (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter not replayed yet.")
def replay(ids: tuple[int, ...], all_: bool) -> None:
    """Invoke failed functions again with their original event (dead letters)."""
    from cloud.adapters import open_invoker
    from cloud.dead_letters import list_dead_letters
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
