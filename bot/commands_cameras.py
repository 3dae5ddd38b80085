"""``corb cameras``: register cameras (with their stream URLs), list them, and run the camera agent.

Stream URLs hold camera passwords: they are stored in the database and never shown back in full
(``agent.redact.redact_url`` everywhere they are printed).
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from agent.redact import redact_url
from agent.settings import SLUG, ConfigError, check_stream_url

log = logging.getLogger("corb.agent")
FOLLOW_S = 5.0  # how often --follow looks at the cameras in the database


def _services() -> Any:
    from bot.services import services

    return services()


def register(main: click.Group) -> None:
    main.add_command(cameras)


def _stream_option(_ctx: Any, param: Any, value: str | None) -> str | None:
    if value is None or value == "":
        return value
    try:
        return check_stream_url(value.strip())
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{param.name}") from exc


@click.group()
def cameras() -> None:
    """Cameras that upload segments to the bucket under cameras/<slug>/."""


@cameras.command("add")
@click.argument("slug")
@click.option("--name", help="A human name (default: the slug).")
@click.option("--area", default="", help="The area it watches (used by cleaning reports).")
@click.option("--zone", default=None, metavar='"X,Y X,Y X,Y ..."',
              help="Counting zone: only people standing inside it count. Its corners as x,y fractions of the "
                   "picture (0,0 top left, 1,1 bottom right), separated by spaces, e.g. "
                   '"0,0.4 1,0.4 1,1 0,1"; "" counts the whole picture. Left out: unchanged.')
@click.option("--stream", default=None, callback=_stream_option, metavar="URL",
              help="The camera's main stream (rtsp://user:password@host/path, rtsps://, http(s):// MJPEG or "
                   "HLS, or file:// played at its frame rate), read by `corb cameras run`. "
                   '"" removes it. Left out: unchanged.')
@click.option("--substream", default=None, callback=_stream_option, metavar="URL",
              help='Its low-resolution sub-stream, added to segments as a second track. "" removes it.')
def cameras_add(slug: str, name: str | None, area: str, zone: str | None, stream: str | None,
                substream: str | None) -> None:
    """Register camera SLUG (lower case letters, digits, dashes), or update its name, area, zone, streams."""
    from sqlalchemy import select

    from bot.camera_config import SettingsNotSaved, camera_transaction
    from bot.models import Camera
    from cloud.camera_settings import CameraSettings, ZoneError, format_zone, parse_zone

    if not SLUG.match(slug):
        raise click.BadParameter(f"{slug!r}: use lower case letters, digits and dashes, e.g. front-door",
                                 param_hint="SLUG")
    try:
        settings = None if zone is None else CameraSettings(zone=parse_zone(zone))
    except ZoneError as exc:
        raise click.BadParameter(str(exc), param_hint="--zone") from exc
    try:
        # The zone goes to the bucket just before the database commits: both are saved, or neither.
        with camera_transaction(_services()) as (s, save_camera_settings):
            camera = s.scalars(select(Camera).where(Camera.slug == slug)).first()
            verb = "Updated" if camera else "Added"
            if camera is None:
                camera = Camera(slug=slug)
                s.add(camera)
            camera.name, camera.area = name or camera.name or slug, area or camera.area or ""
            if stream is not None:
                camera.stream_url = stream or None
            if substream is not None:
                camera.substream_url = substream or None
            if settings is not None:
                s.flush()
                save_camera_settings(slug, settings)
    except SettingsNotSaved as exc:
        raise click.ClickException(f"Nothing saved: {exc}") from exc
    click.echo(f"{verb} camera {slug} ({camera.name}, area {camera.area or '-'}).")
    if settings is not None:
        click.echo(f"Counting zone: {format_zone(settings.zone) or 'the whole picture'}.")
    if stream is not None or substream is not None:
        click.echo(f"Stream: {redact_url(camera.stream_url) or 'none'}; "
                   f"sub-stream: {redact_url(camera.substream_url) or 'none'}.")


@cameras.command("list")
def cameras_list() -> None:
    """List cameras, when each last sent a segment, its counting zone and its streams (passwords hidden)."""
    from sqlalchemy import select

    from bot.models import Camera
    from cloud.camera_settings import format_zone, load_settings

    svc = _services()
    with svc.sessions() as s:
        rows = s.scalars(select(Camera).order_by(Camera.slug)).all()
    if not rows:
        click.echo("No cameras yet: corb cameras add lobby --name Lobby --area lobby")
    for c in rows:
        last = f"{c.last_segment_at:%Y-%m-%d %H:%M:%S} UTC" if c.last_segment_at else "no segment yet"
        zone = format_zone(load_settings(svc.bucket, c.slug).zone)
        click.echo(f"{c.slug:<16} {c.name:<20} area {c.area or '-':<12} {last:<24} "
                   f"{'zone ' + zone if zone else 'whole picture'}")
        if c.stream_url or c.substream_url:
            sub = f"  sub-stream {redact_url(c.substream_url)}" if c.substream_url else ""
            click.echo(f"{'':<16} stream {redact_url(c.stream_url) or '-'}{sub}")


def _sources_from_db(slugs: tuple[str, ...]) -> list[Any]:
    from sqlalchemy import select

    from agent.settings import CameraSource
    from bot.models import Camera

    with _services().sessions() as s:
        rows = s.scalars(select(Camera).order_by(Camera.slug)).all()
    known = {c.slug: c for c in rows}
    missing = [slug for slug in slugs if slug not in known]
    if missing:
        raise click.ClickException(f"No such camera: {', '.join(missing)}. See `corb cameras list`.")
    chosen = [known[slug] for slug in slugs] if slugs else rows
    without = [c.slug for c in chosen if not c.stream_url]
    if slugs and without:
        raise click.ClickException(f"No stream set for {', '.join(without)}: "
                                   f"corb cameras add {without[0]} --stream rtsp://USER:PASSWORD@HOST/PATH")
    try:
        return [CameraSource(c.slug, c.stream_url, c.substream_url) for c in chosen if c.stream_url]
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@cameras.command("run")
@click.argument("slugs", nargs=-1, metavar="[SLUG ...]")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A JSON or TOML file with the cameras (slug, stream, substream) and settings: for the box "
                   "in the building, which has no database.")
@click.option("--follow", is_flag=True,
              help="Keep running and follow the database: recording starts, changes or stops as cameras' "
                   "streams are set, changed or cleared (corb serve runs the agent so).")
def cameras_run(slugs: tuple[str, ...], config_file: Path | None, follow: bool) -> None:
    """Run the camera agent: read each camera's stream and put segments into the bucket.

    Without --config, the cameras come from the database (every camera with a stream, or the SLUGs given).
    With --follow (database only), it keeps running and looks at the cameras every few seconds.
    Settings come from the environment (CORB_SEGMENT_SECONDS, CORB_QUICK_SECONDS, CORB_AGENT_SPOOL,
    CORB_AGENT_SPOOL_MB, CORB_AGENT_STALL_SECONDS) and the config file. Stops cleanly on SIGTERM or Ctrl-C.
    """
    from agent.runner import Agent
    from agent.settings import read_config_file, settings_from_env
    from cloud.adapters import open_bucket
    from cloud.config import load_config

    config = load_config()
    if follow and (config_file is not None or slugs):
        raise click.UsageError("--follow reads every camera from the database: give no SLUG and no --config")
    try:
        settings = settings_from_env(data_dir=config.data_dir)
        if config_file is not None:
            values, sources = read_config_file(config_file)
            settings = settings.with_values(values)
            if slugs:
                unknown = set(slugs) - {s.slug for s in sources}
                if unknown:
                    raise ConfigError(f"not in {config_file}: {', '.join(sorted(unknown))}")
                sources = [s for s in sources if s.slug in slugs]
        else:
            sources = _sources_from_db(slugs)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not sources and not follow:
        click.echo("No camera has a stream to read: set one with "
                   "corb cameras add SLUG --stream rtsp://USER:PASSWORD@HOST/PATH")
        return
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    bucket = open_bucket(config)
    agent: Agent | None = None
    running: list[Any] | None = None
    next_look = time.monotonic() + FOLLOW_S
    while not stopping:
        if follow and time.monotonic() >= next_look:
            next_look = time.monotonic() + FOLLOW_S
            found = _streams_in_db()
            sources = sources if found is None else found
        if sources != running:
            if agent is None:
                agent = Agent(sources, settings, bucket).start()
            else:  # only the cameras that changed restart: the others keep recording
                started, stopped = agent.update(sources)
                changes = [f"{verb} {', '.join(slugs)}" for verb, slugs in
                           (("(re)started", started), ("stopped", stopped)) if slugs]
                click.echo(f"Cameras changed: {'; '.join(changes)}.", err=True)
            running = sources
            click.echo(f"Recording {', '.join(s.slug for s in sources)} into bucket {config.bucket}; "
                       f"spool {settings.spool}. Stop with Ctrl-C." if sources else
                       "No camera has a stream yet: waiting for one (corb cameras add SLUG --stream URL).",
                       err=True)
        time.sleep(0.2)
    if agent is not None:
        click.echo("Stopping: closing the segments being recorded and uploading them.", err=True)
        agent.stop(timeout=5.0)


def _streams_in_db() -> list[Any] | None:
    """Every camera with a usable stream, as ``--follow`` reads them; a bad one is logged and left out.
    None when the database cannot be read (it may be restarting): the caller keeps what it records."""
    from sqlalchemy import select

    from agent.settings import CameraSource
    from bot.models import Camera

    try:
        with _services().sessions() as s:
            rows = s.scalars(select(Camera).where(Camera.stream_url.is_not(None)).order_by(Camera.slug)).all()
    except Exception as exc:  # noqa: BLE001 - keep recording through a database restart
        log.warning("could not read the cameras (%s); keeping the current ones", exc)
        return None
    sources = []
    for c in rows:
        try:
            sources.append(CameraSource(c.slug, c.stream_url, c.substream_url))
        except ConfigError as exc:
            log.warning("camera %s is not recorded: %s", c.slug, exc)
    return sources
