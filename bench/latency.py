#!/usr/bin/env python3
"""Person-to-alert latency on a live RTSP camera, embedded mode (issue 9's "Done means").

    python bench/latency.py [--appearances 10] [--empty 30] [--people 10] [--size 1280x720] [--fps 15]
        [--gop 30] [--cpu-seconds 60] [--json OUT.json]

A feed of real footage (``scripts/camera_feed.py``: empty plaza, then people walking in, repeated; cached
under ``var/bench/``) is served in real time by ``scripts/rtsp_camera.py`` (GStreamer's RTSP server). A fresh
Corb (SQLite and the folder bucket in a temporary data directory) gets the camera with
``corb cameras add lobby --stream URL`` and a subscriber, then ``corb serve`` runs it all: the camera agent,
the bucket watcher, detection and the alerts handler, default settings but one: **the alert cooldown is 0**
(``CORB_ALERT_COOLDOWN=0``, the documented setting), so the subscriber is alerted at every appearance
rather than once per 10 minutes; the cooldown is a per-person courtesy that would otherwise hide every
appearance after the first, and it is reported with the figures.

Ground truth: the wall-clock time of the first frame with a person = the RTSP server's ``playing`` time
(the feed's first frame) + the scene's start in the feed's JSON. Per appearance it reports the time from
that frame to (a) the segment that shows the person being in the bucket, (b) its detection result, (c) the
alert MMS queued for the subscriber (the outbox row), then p50 / p95 of each; appearances with no alert
(missed) and alerts on segments that lie wholly in an empty stretch (false). Then the agent's CPU: the whole
``corb serve`` process tree during the run, and ``corb cameras run lobby`` alone on the same stream for
``--cpu-seconds`` (percent of one core).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench"
SLUG, PHONE = "lobby", "+15550009001"
PLAYING = re.compile(r"^playing (\S+) (\d+(?:\.\d+)?)$")
SHOWS_S = 0.5  # a segment shows a scene if they share more than this (a frame or two is timing noise)
SEGMENT_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})(?:\.(\d+))?Z")


# -- the pure parts (tests/bench/test_latency.py) ----------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """A stretch of wall-clock time, Unix seconds: a scene as played, or a segment."""

    start: float
    end: float

    def overlaps(self, other: Span, at_least: float = 0.0) -> bool:
        """True if the spans share more than ``at_least`` seconds (a segment that ends on the very frame
        where a scene starts does not show that scene)."""
        return min(self.end, other.end) - max(self.start, other.start) > at_least


@dataclass(frozen=True)
class Segment:
    """One analysed segment: its span, when it landed in the bucket, when its result did, and its peak."""

    span: Span
    arrived: float
    result_at: float
    peak: int


@dataclass(frozen=True)
class Alert:
    """An alert MMS to the subscriber: when it was queued, and the span of the segment it is about."""

    queued: float
    span: Span


@dataclass
class Appearance:
    index: int
    scene: Span  # the people scene as played; ``scene.start`` is the ground truth
    segment_s: float | None = None  # (a)
    result_s: float | None = None  # (b)
    alert_s: float | None = None  # (c)
    notes: list[str] = field(default_factory=list)


def parse_playing(lines: Iterable[str], path: str) -> list[float]:
    """The wall-clock start of each play of ``path`` (the server restarts a feed for a new connection)."""
    out = []
    for line in lines:
        m = PLAYING.match(line.strip())
        if m and m.group(1) == path:
            out.append(float(m.group(2)))
    return out


def played_scenes(truth: dict, plays: Sequence[float], until: float) -> tuple[list[Span], list[Span]]:
    """(people scenes, empty scenes) as played in wall-clock time, each play cut at the next one's start
    (or ``until``); a scene cut short still counts from its start."""
    people: list[Span] = []
    empty: list[Span] = []
    for i, start in enumerate(plays):
        stop = plays[i + 1] if i + 1 < len(plays) else until
        for scene in truth["scenes"]:
            span = Span(start + float(scene["start_s"]), min(start + float(scene["end_s"]), stop))
            if span.start >= stop:
                break
            (people if scene["kind"] == "people" else empty).append(span)
    return people, empty


def segment_start(key: str) -> float | None:
    """Unix time of a segment key's capture start (``cameras/<slug>/2026-11-30T10-15-02.123Z.mkv``)."""
    m = SEGMENT_TIME.search(key)
    if not m:
        return None
    day, hh, mm, ss, frac = m.groups()
    t = datetime.fromisoformat(f"{day}T{hh}:{mm}:{ss}").replace(tzinfo=UTC).timestamp()
    return t + (float(f"0.{frac}") if frac else 0.0)


def match(people: Sequence[Span], empty: Sequence[Span], segments: Sequence[Segment],
          alerts: Sequence[Alert]) -> tuple[list[Appearance], list[Alert]]:
    """Each appearance's latencies, and the alerts about segments wholly inside an empty stretch.

    (a) and (b) come from the first segment that shows the people scene (shares more than ``SHOWS_S`` with
    it) and saw someone; (c) from the first alert about such a segment queued after the person appeared and
    before the next appearance. A long segment that ends on the keyframe where people walk in, and saw
    the people of the scene before, is not this appearance's.
    """
    found = []
    for i, scene in enumerate(people):
        app = Appearance(index=i + 1, scene=scene)
        seen = sorted((s for s in segments if s.span.overlaps(scene, SHOWS_S) and s.peak > 0),
                      key=lambda s: s.span.start)
        if seen:
            app.segment_s, app.result_s = seen[0].arrived - scene.start, seen[0].result_at - scene.start
        else:
            app.notes.append("no segment saw anyone")
        horizon = people[i + 1].start if i + 1 < len(people) else float("inf")
        mine = sorted(a.queued for a in alerts
                      if scene.start <= a.queued < horizon and a.span.overlaps(scene, SHOWS_S))
        if mine:
            app.alert_s = mine[0] - scene.start
        else:
            app.notes.append("missed: no alert")
        found.append(app)
    false = [a for a in alerts if not any(a.span.overlaps(p) for p in people)
             and any(a.span.start >= e.start and a.span.end <= e.end for e in empty)]
    return found, false


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in 0-100, got {q}")
    xs = sorted(values)
    rank = (len(xs) - 1) * q / 100
    lo = int(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def summary(appearances: Sequence[Appearance]) -> dict[str, dict[str, float | None]]:
    out = {}
    for name in ("segment_s", "result_s", "alert_s"):
        values = [getattr(a, name) for a in appearances if getattr(a, name) is not None]
        out[name] = {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a live process and its live descendants, plus children it reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            f = stats[p]  # after the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
            total += sum(int(x) for x in f[11:15]) / tick
        todo.extend(children.get(p, []))
    return total


# -- the run -----------------------------------------------------------------------------------------------

def _load_script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_feed(args: argparse.Namespace) -> tuple[Path, dict]:
    """The feed and its ground truth, made once per set of parameters."""
    name = (f"latency-{args.appearances}x-e{args.empty:g}-p{args.people:g}-{args.size}-{args.fps:g}fps"
            f"-g{args.gop}-{args.bitrate}")
    feed = CACHE / f"{name}.mkv"
    if not (feed.is_file() and feed.with_suffix(".json").is_file()):
        camera_feed = _load_script("camera_feed")
        scenes = camera_feed.parse_scenes(f"empty:{args.empty} people:{args.people}", args.appearances)
        scenes.append(("empty", float(args.empty)))  # the last appearance ends too, as a person leaves
        print(f"==> making the feed {feed} (once)", flush=True)
        camera_feed.make_feed(feed, scenes, size=args.size, fps=args.fps, gop=args.gop, bitrate=args.bitrate)
    return feed, json.loads(feed.with_suffix(".json").read_text())


class Lines:
    """A subprocess's stdout, collected by a thread (with the time each line arrived)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc, self.lines = proc, []  # type: ignore[var-annotated]
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"no line matching {pattern!r}; got: {self.lines[-20:]}")


def _corb(env: dict[str, str], *args: str) -> str:
    corb = Path(sys.executable).with_name("corb")
    done = subprocess.run([str(corb), *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"corb {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _start(cmd: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = log.open("w") if log else subprocess.PIPE
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def collect(data_dir: Path) -> tuple[list[Segment], list[Alert]]:
    """What the detection function analysed (the runtime's invocations) and what reached the outbox."""
    from sqlalchemy import select

    from bot.models import Detection, Message
    from bot.services import Services
    from cloud.config import load_config
    from cloud.models import Invocation

    svc = Services(load_config({"CORB_DATA_DIR": str(data_dir), "CORB_SECRET_KEY": "bench",
                                "TWILIO_AUTH_TOKEN": "bench"}))
    try:
        # The runtime's record of each detection invocation: the S3 record it was notified with (eventTime:
        # when the segment landed in the bucket), its result, and when it finished. (A segment with people
        # no longer stays under cameras/: it is moved to footage/ once analysed.)
        segments = []
        with svc.sessions() as s:
            rows = s.execute(select(Invocation.payload, Invocation.result, Invocation.updated_at).where(
                Invocation.function == "detection.handler.handle", Invocation.status == "succeeded")).all()
        for payload, result, finished in rows:
            record = json.loads(payload)["Records"][0]
            r = json.loads(result or "{}")
            key = unquote_plus(record["s3"]["object"]["key"])
            start = segment_start(key)
            if start is None or r.get("kind") != "segment_analysed" or r.get("duplicate"):
                continue
            arrived = datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")).timestamp()
            span = Span(start, start + float(r.get("duration_s") or 0))
            segments.append(Segment(span, arrived, _unix(finished), int(r.get("peak") or 0)))
        with svc.sessions() as s:
            rows = s.execute(select(Message.created_at, Detection.start_time, Detection.end_time)
                             .join(Detection, Detection.snapshot_key == Message.media_key)
                             .where(Message.direction == "out", Message.to_number == PHONE)).all()
        alerts = [Alert(_unix(q), Span(_unix(a), _unix(b))) for q, a, b in rows]
        return segments, alerts
    finally:
        svc.close()


def _unix(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


def run(args: argparse.Namespace) -> dict:
    feed, truth = build_feed(args)
    work = Path(tempfile.mkdtemp(prefix="corb-latency-"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CORB_", "TWILIO_")) and k != "DATABASE_URL"}
    env.update(CORB_DATA_DIR=str(work / "data"), CORB_PORT="0", CORB_ALERT_COOLDOWN="0",
               CORB_SECRET_KEY="bench", TWILIO_AUTH_TOKEN="bench")
    camera = serve = agent = None
    try:
        camera = _start(["/usr/bin/python3", "scripts/rtsp_camera.py", str(feed), "--path", "/" + SLUG], env)
        camera_out = Lines(camera)
        url = camera_out.wait_for(r"^serving (rtsp://\S+)$", 30).group(1)
        _corb(env, "db", "upgrade")
        _corb(env, "users", "add", PHONE, "--name", "Bench", "--role", "member")
        _corb(env, "cameras", "add", SLUG, "--name", "Lobby", "--stream", url)
        _subscribe(work / "data")
        serve = _start([str(Path(sys.executable).with_name("corb")), "serve", "--port", "0"], env,
                       work / "serve.log")
        first = _first_play(camera_out, 90)
        cpu0, t0 = cpu_seconds(serve.pid), time.monotonic()
        print(f"==> the agent connected; the feed plays for {truth['duration_s']:.0f} s", flush=True)
        end = first + float(truth["duration_s"])
        while time.time() < end + args.drain:
            if serve.poll() is not None:
                raise RuntimeError(f"corb serve exited: see {work / 'serve.log'}")
            time.sleep(1)
        serve_cpu = (cpu_seconds(serve.pid) - cpu0) / (time.monotonic() - t0) * 100
        plays = parse_playing(camera_out.lines, "/" + SLUG)
        _stop(serve)
        people, empty = played_scenes(truth, plays, end)
        segments, alerts = collect(work / "data")
        appearances, false = match(people, empty, segments, alerts)
        agent_cpu = None
        if args.cpu_seconds > 0:
            agent = _start([str(Path(sys.executable).with_name("corb")), "cameras", "run", SLUG], env,
                           work / "agent.log")
            time.sleep(5)  # connected and past its first keyframe
            c0, a0 = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(args.cpu_seconds)
            agent_cpu = (cpu_seconds(agent.pid) - c0) / (time.monotonic() - a0) * 100
        return {"feed": {k: truth[k] for k in ("size", "fps", "gop", "bitrate", "duration_s")},
                "plays": len(plays), "alert_cooldown_s": 0, "appearances": [asdict(a) for a in appearances],
                "summary": summary(appearances), "missed": sum(a.alert_s is None for a in appearances),
                "false_alerts": len(false), "segments": len(segments),
                "serve_cpu_percent": round(serve_cpu, 1),
                "agent_cpu_percent": None if agent_cpu is None else round(agent_cpu, 2), "work": str(work)}
    finally:
        for proc in (agent, serve, camera):
            _stop(proc)


def _first_play(lines: Lines, timeout: float) -> float:
    m = lines.wait_for(rf"^playing /{SLUG} (\d+(?:\.\d+)?)$", timeout)
    return float(m.group(1))


def _subscribe(data_dir: Path) -> None:
    """The bench's subscriber follows the camera (what ``subscribe lobby`` by SMS stores)."""
    from sqlalchemy import select

    from bot.models import Camera, Subscription, User
    from bot.services import Services
    from cloud.config import load_config

    svc = Services(load_config({"CORB_DATA_DIR": str(data_dir), "CORB_SECRET_KEY": "bench",
                                "TWILIO_AUTH_TOKEN": "bench"}))
    try:
        with svc.session() as s:
            user = s.scalars(select(User).where(User.phone == PHONE)).one()
            camera = s.scalars(select(Camera).where(Camera.slug == SLUG)).one()
            s.add(Subscription(user_id=user.id, camera_id=camera.id))
    finally:
        svc.close()


def report(result: dict) -> str:
    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines = ["appearance  to segment (s)  to result (s)  to alert queued (s)  notes"]
    for a in result["appearances"]:
        lines.append(f"{a['index']:>10}  {fmt(a['segment_s']):>13}  {fmt(a['result_s']):>13}  "
                     f"{fmt(a['alert_s']):>19}  {'; '.join(a['notes'])}")
    s = result["summary"]
    for q in ("p50", "p95"):
        lines.append(f"{q:>10}  {fmt(s['segment_s'][q]):>13}  {fmt(s['result_s'][q]):>13}  "
                     f"{fmt(s['alert_s'][q]):>19}")
    lines.append(f"missed: {result['missed']} of {len(result['appearances'])}; alerts in empty stretches: "
                 f"{result['false_alerts']}; segments analysed: {result['segments']}; feed plays: "
                 f"{result['plays']}; alert cooldown: {result['alert_cooldown_s']} s (CORB_ALERT_COOLDOWN)")
    lines.append(f"CPU: corb serve (agent + detection + handlers) {result['serve_cpu_percent']}% of one core;"
                 f" the agent alone (corb cameras run): {result['agent_cpu_percent']}% of one core")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appearances", type=int, default=10)
    parser.add_argument("--empty", type=float, default=30.0, help="seconds of empty scene before each")
    parser.add_argument("--people", type=float, default=10.0, help="seconds of people per appearance")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--gop", type=int, default=30, help="frames between keyframes (30 at 15 fps: 2 s)")
    parser.add_argument("--bitrate", default="2M")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait after the feed ends")
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="the agent alone; 0 skips it")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None or not Path("/usr/bin/python3").exists():
        parser.error("needs Debian's ffmpeg and /usr/bin/python3 with GStreamer (see scripts/rtsp_camera.py)")
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["missed"] == 0 and result["false_alerts"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
