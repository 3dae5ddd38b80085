"""One camera: connect, cut the main stream into segments where the policy says, reconnect with backoff.

The main stream is read on the camera's thread; its keyframes alone are decoded, to the small grayscale
copy the segment policy compares (``agent.segmenter``). A sub-stream, when configured, is read on a second
thread that keeps its current GOP: a new segment starts its sub track from there (pre-roll). A stream that
ends, stalls (no packet for ``stall_s``) or fails closes the segment being written (it is complete up to
its last frame), sets the status and reconnects after a backoff that doubles up to its maximum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import av
import av.error

from agent.offline import keyframe_small
from agent.people import PersonCheck
from agent.segmenter import SegmentPolicy
from agent.settings import AgentSettings, CameraSource
from agent.source import StreamError, StreamReader, TimedPacket
from agent.spool import PART, Spool
from agent.status import StatusBoard
from agent.writer import SegmentStats, SegmentWriter, segment_key
from cloud.lifecycle import quiet_key
from detection.footage import sub_only, tail

log = logging.getLogger("corb.agent")
SUB_QUEUE = 2000  # sub-stream packets waiting for the main stream (over a minute at 25 fps)


def open_reader(url: str, settings: AgentSettings) -> StreamReader:
    return StreamReader(url, stall_s=settings.stall_s, open_timeout_s=settings.open_timeout_s,
                        jitter_s=settings.jitter_s)


class Thumbnailer:
    """Decode keyframes only (None when one does not decode): the policy's small grayscale copy and the
    person check are made from them."""

    def __init__(self, template: object) -> None:
        ctx = template.codec_context  # type: ignore[attr-defined]
        self.ctx = av.CodecContext.create(ctx.name, "r")
        if ctx.extradata:
            self.ctx.extradata = ctx.extradata
        self.ctx.thread_count = 1
        self.ctx.flags |= av.codec.context.Flags.low_delay

    def frame(self, tp: TimedPacket) -> av.VideoFrame | None:
        try:
            packet = av.Packet(bytes(tp.packet))
            packet.pts, packet.dts, packet.time_base = tp.pts, tp.dts, tp.time_base
            frames = self.ctx.decode(packet)
        except (av.error.FFmpegError, ValueError):
            return None
        return frames[-1] if frames else None


class SubStream:
    """Reads the sub-stream on its own thread; hands its packets over in capture order."""

    def __init__(self, url: str, settings: AgentSettings, stop: threading.Event, slug: str) -> None:
        self.url, self.settings, self.stop, self.slug = url, settings, stop, slug
        self._lock = threading.Lock()
        # Bounded: while the main stream is down nothing takes from it, and only the latest GOP matters.
        self._queue: deque[TimedPacket] = deque(maxlen=SUB_QUEUE)
        self.template: object | None = None
        self.generation = 0  # bumped at every (re)connection: a new template
        self.thread = threading.Thread(target=self._run, name=f"agent-{slug}-sub", daemon=True)

    def _run(self) -> None:
        delay = self.settings.backoff_s[0]
        while not self.stop.is_set():
            try:
                reader = open_reader(self.url, self.settings)
            except StreamError as exc:
                log.warning("camera %s sub-stream: %s", self.slug, exc)
                self.stop.wait(delay)
                delay = min(delay * 2, self.settings.backoff_s[1])
                continue
            with self._lock:
                self._queue.clear()
                self.template, self.generation = reader.stream, self.generation + 1
            try:
                for tp in reader.packets():
                    delay = self.settings.backoff_s[0]
                    with self._lock:
                        self._queue.append(tp)
                    if self.stop.is_set():
                        break
            except StreamError as exc:
                log.warning("camera %s sub-stream: %s", self.slug, exc)
            finally:
                with self._lock:
                    self.template = None
                reader.close()
            self.stop.wait(delay)

    def take_until(self, wall: float) -> tuple[int, object | None, list[TimedPacket]]:
        """The packets captured up to ``wall``, with the generation and template they belong to."""
        out = []
        with self._lock:
            while self._queue and self._queue[0].wall <= wall:
                out.append(self._queue.popleft())
            return self.generation, self.template, out


class Camera:
    """Records one camera until ``stop`` is set."""

    def __init__(self, source: CameraSource, settings: AgentSettings, spool: Spool, board: StatusBoard,
                 stop: threading.Event, on_segment: Callable[[SegmentStats], None],
                 people: PersonCheck | None = None) -> None:
        self.source, self.settings, self.spool, self.board = source, settings, spool, board
        self.stop, self.on_segment, self.people = stop, on_segment, people
        self.sub = SubStream(source.substream, settings, stop, source.slug) if source.substream else None
        self.thread = threading.Thread(target=self.run, name=f"agent-{source.slug}", daemon=True)
        self.segments: list[SegmentStats] = []
        # The sub-stream's current GOP (from its latest keyframe): the next segment's pre-roll.
        self._sub_gop: list[TimedPacket] = []
        self._sub_generation = -1

    @property
    def slug(self) -> str:
        return self.source.slug

    def start(self) -> None:
        if self.sub:
            self.sub.thread.start()
        self.thread.start()

    def run(self) -> None:
        delay = self.settings.backoff_s[0]
        while not self.stop.is_set():
            try:
                reader = open_reader(self.source.stream, self.settings)
            except StreamError as exc:
                self._failed(str(exc), delay)
                delay = min(delay * 2, self.settings.backoff_s[1])
                continue
            try:
                log.info("camera %s: connected (%s %dx%d, timestamps from %s)", self.slug, reader.codec,
                         reader.width, reader.height, "RTCP" if reader.clock == "rtcp" else reader.clock)
                if self._record(reader):
                    delay = self.settings.backoff_s[0]
                if not self.stop.is_set():
                    log.warning("camera %s: the stream ended; reconnecting", self.slug)
                    self.board.set_state("connecting", "the stream ended", time.time())
            except StreamError as exc:
                self._failed(str(exc), 0)
            finally:
                reader.close()
            self.stop.wait(delay)

    def _failed(self, error: str, delay: float) -> None:
        log.error("camera %s: %s", self.slug, error)
        self.board.set_state("error", error, time.time())
        if delay:
            log.info("camera %s: retrying in %.0f s", self.slug, delay)
            self.stop.wait(delay)

    def _sub_packets(self, wall: float) -> tuple[object | None, list[TimedPacket]]:
        """Sub packets up to ``wall``; the GOP buffer follows them (reset when the sub-stream reconnects)."""
        if self.sub is None:
            return None, []
        generation, template, packets = self.sub.take_until(wall)
        if generation != self._sub_generation:
            self._sub_gop, self._sub_generation = [], generation
        for tp in packets:
            if tp.keyframe:
                self._sub_gop = []
            if tp.keyframe or self._sub_gop:
                self._sub_gop.append(tp)
        return template, packets

    def _record(self, reader: StreamReader) -> bool:
        """Segment the stream until it ends or ``stop``; True if at least one segment was made."""
        policy = SegmentPolicy(self.settings.segment)
        thumbs = Thumbnailer(reader.stream)
        writer: SegmentWriter | None = None
        writer_sub_template: object | None = None
        first_wall: float | None = None
        last_candidate = float("-inf")
        made = False
        try:
            for tp in reader.packets():
                if self.stop.is_set():
                    break
                if first_wall is None:
                    first_wall = tp.wall
                    # Frame rate and bitrate are measured over the first segment, then written too.
                    self.board.set_state("online", None, time.time(), width=reader.width,
                                         height=reader.height)
                sub_template, sub_new = self._sub_packets(tp.wall)
                cut = False
                if tp.keyframe and tp.wall - last_candidate >= self.settings.min_cut_s - 1e-6:
                    last_candidate = tp.wall
                    # A segment begun without the sub-stream (it connects beside the main one, or it
                    # reconnected) ends at the first keyframe where the sub's GOP is there to start the
                    # next: detection reads the sub track, a segment without it costs a main-stream decode.
                    sub_ready = (writer is not None and sub_template is not None
                                 and sub_template is not writer_sub_template and bool(self._sub_gop))
                    frame = thumbs.frame(tp)
                    check = None if self.people is None else partial(self.people, frame)
                    cut = policy.on_keyframe(tp.wall - first_wall, keyframe_small(frame) if frame else None,
                                             force=sub_ready, people=check)
                if writer is not None and sub_template is writer_sub_template:
                    for sp in sub_new:
                        writer.add_sub(sp)
                if cut:
                    if writer is not None:
                        until = policy.closed_quiet_until
                        self._finish(writer, first_of_connection=not made, quiet=policy.closed_quiet,
                                     quiet_until=None if until is None else first_wall + until)
                        made = True
                    preroll = self._sub_gop if sub_template is not None else []
                    # The part file is named by the keyframe; the key may be earlier, by the pre-roll.
                    part = self.spool.part_path(segment_key(self.slug, tp.wall))
                    writer = SegmentWriter(part, self.slug, reader.stream, tp,
                                           sub_template if preroll else None, preroll)
                    writer_sub_template = sub_template if preroll else object()
                elif writer is not None:
                    writer.add_main(tp)
                if tp.keyframe and policy.quiet:  # nothing reaches the cloud while it records: say video does
                    self.board.recorded(tp.wall, every=self.settings.segment.segment_s)
            if writer is not None:
                self._finish(writer, first_of_connection=not made)
                made = True
                writer = None
        finally:
            if writer is not None:  # a read error mid-segment: what was written is still a complete file
                self._finish(writer, first_of_connection=not made)
                made = True
        return made

    def _finish(self, writer: SegmentWriter, first_of_connection: bool, quiet: bool = False,
                quiet_until: float | None = None) -> None:
        """Close ``writer`` and commit its segment: under ``quiet/`` when ``quiet``; when ``quiet_until``
        (capture time of a main keyframe) is given, split there: the part before goes to ``quiet/`` and only
        the rest is analysed."""
        try:
            stats = writer.close()
        except (av.error.FFmpegError, OSError) as exc:
            log.error("camera %s: could not finish segment %s: %s", self.slug, writer.key, exc)
            writer.abort()
            return
        if stats.frames == 0:
            writer.path.unlink(missing_ok=True)
            return
        rest = self._tail(writer.path, stats, quiet_until) if quiet_until is not None and not quiet else None
        if rest is not None:
            self._commit(writer.path, stats, quiet=True, first_of_connection=first_of_connection, told=True)
            self._commit(rest[0], rest[1], quiet=False, first_of_connection=False)
        else:
            self._commit(writer.path, stats, quiet=quiet, first_of_connection=first_of_connection)

    def _tail(self, part: Path, stats: SegmentStats, at_wall: float) -> tuple[Path, SegmentStats] | None:
        """The part from the keyframe at ``at_wall`` on, as a segment of its own (None: not made)."""
        key = segment_key(self.slug, at_wall)
        path = self.spool.part_path(key)
        try:
            shift = tail(part, path, at_wall - stats.start)
        except (OSError, ValueError) as exc:  # av.error.FFmpegError is both
            log.warning("camera %s: could not split %s at %s (%s): analysed whole", self.slug, stats.key, key,
                        exc)
            shift = None
        if shift is None:
            path.unlink(missing_ok=True)
            return None
        start = stats.start + shift
        share = (stats.end - at_wall) / max(stats.end - stats.main_start, 1e-3)
        return path, replace(stats, key=segment_key(self.slug, start), start=start, main_start=at_wall,
                             frames=max(1, round(stats.frames * share)), size=path.stat().st_size)

    def _commit(self, path: Path, stats: SegmentStats, quiet: bool, first_of_connection: bool,
                told: bool = False) -> None:
        path, key = (self._quiet(path, stats.key) if quiet else None) or (path, stats.key)
        stats = replace(stats, key=key, size=path.stat().st_size)
        self.spool.commit(path, key)
        self.segments.append(stats)
        self.board.segment(stats.key, stats.start, stats.end, told)
        if first_of_connection:  # now the bitrate and the measured frame rate are known
            self.board.set_state("online", None, time.time(), width=stats.width, height=stats.height,
                                 fps=stats.fps, bitrate_bps=stats.bitrate_bps)
        log.info("camera %s: segment %s (%.1f s, %d frames, %d bytes)", self.slug, stats.key,
                 stats.duration_s, stats.frames, stats.size)
        self.on_segment(stats)

    def _quiet(self, part: Path, key: str) -> tuple[Path, str] | None:
        """A quiet segment's upload (still, or nobody at its keyframes): its sub-stream alone (what
        detection keeps of a segment without people), or the whole segment when it has none, under
        ``quiet/``; None (analyse it after all) when the sub-stream cannot be taken out."""
        sub = part.with_name(part.name.removesuffix(PART) + ".sub" + PART)
        try:
            if sub_only(part, sub):
                part.unlink()
                part = sub
        except (OSError, ValueError) as exc:  # av.error.FFmpegError is both
            log.warning("camera %s: could not take the sub-stream of %s (%s): it will be analysed", self.slug,
                        key, exc)
            sub.unlink(missing_ok=True)
            return None
        return part, quiet_key(key)

