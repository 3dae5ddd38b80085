"""Streaming video decoding with PyAV: a segment in, sampled BGR frames out, decoding as little as it can.

Decoding is most of the detection function's cost (a full decode of a 1080p minute is ~9 CPU-s), so:

- **the sub-stream is analysed when the segment has one** (track 1, titled ``sub``, see the segment layout
  in ``docs/segments.md``); the main track is decoded only for the snapshot frame (:func:`decode_frame_at`);
- **static stretches cost one keyframe per GOP**: every keyframe is decoded on its own (an intra frame
  needs no other) and compared with its neighbours on a small grey copy; a GOP whose keyframe or the next
  one shows a change is decoded in full at the analysis rate, the others contribute their keyframe only;
- frames that the analysis rate skips are decoded (later frames depend on them) but never converted to BGR.

Hard caps on frame count, duration and pixels keep a hostile object from hanging the function or exhausting
its memory; frames larger than ``Limits.max_side`` are downscaled before anyone sees them. A file that ends
before the duration its container declares (a truncated upload) is an error, not a shorter success.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple, TypeVar

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from detection.motion import MotionConfig, changed_fraction, small_gray

log = logging.getLogger(__name__)
logging.getLogger("libav").setLevel(logging.ERROR)  # FFmpeg's warnings on damaged input become our errors

DEFAULT_ANALYSIS_FPS = 2.0
"""Frames analysed per second of video by default: people walk, so 2 a second sees every one of them."""

_FALLBACK_FPS = 25.0  # when the container declares no usable rate and gives no timestamps
_TS_EPS_S = 1e-3  # container timestamps are rounded to milliseconds (143.00000000000003 ms)
_MOTION = MotionConfig()
# FFmpeg's probe decodes the first frames of every track (a 1080p keyframe: ~20 CPU-ms per open, ~50 with its
# default probe size). A segment whose header says all (see _header_suffices) is opened with this one, which
# decodes nothing (only FFmpeg's throwaway probe decoders get ``skip_frame``; ours decode as usual).
_HEADER_PROBE = {"analyzeduration": "0", "probesize": "65536", "skip_frame": "all"}
# Otherwise these, in turn, until every video track's size is known: a short decoding probe, then FFmpeg's.
_PROBES: tuple[dict[str, str], ...] = ({"analyzeduration": "0", "probesize": "65536"}, {})
_IN_ORDER_PACKETS = 8  # per video track: enough to see B-frames (reordered) right after the first keyframe
# PyAV 18 (Python 3.11) decodes container metadata strictly unless told to ignore bad bytes; PyAV 19 (the
# Lambdas' Python 3.12) no longer has the option and refuses it (a TypeError on every segment). A metadata
# decoding error left is still a VideoError (see open_video).
_OPEN_OPTIONS = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
_TRUNCATION_SLACK_S = 1.0  # a file whose frames end this much before its declared duration was cut short


class VideoError(ValueError):
    """The object is not a decodable video (empty, truncated, not video, or over the limits)."""


class Frame(NamedTuple):
    index: int
    """0-based position among all frames of the analysed track (MOT frame number = index + 1)."""
    timestamp_s: float
    """Presentation time from the container, in seconds from the container's start."""
    image: np.ndarray
    """uint8 BGR, at most ``Limits.max_side`` pixels on its longer side."""


@dataclass(frozen=True)
class Limits:
    """What a segment may cost at most. Beyond frames/duration, decoding stops (and says so); beyond pixels,
    the object is refused, because FFmpeg would allocate the frame before we could look at it."""

    max_frames: int = 200_000  # frames of the analysed track: ~1.9 h at 30 fps
    max_duration_s: float = 3600.0  # of container time
    max_pixels: int = 4096 * 4096  # per frame, as declared or as decoded (DCI 4K is 8.8 MP)
    max_side: int = 1920  # analysed frames are downscaled to this longer side (the detector sees ~416)
    io_timeout_ms: int = 10_000  # kept for callers; PyAV reads local files, which cannot stall
    # time.monotonic() by which decoding must stop: the function's timeout less what the snapshot and the
    # uploads need (``detection.handler.time_budget``), so a segment too long for the timeout is analysed
    # as far as time allows and says so (``capped``), instead of being killed and retried in vain.
    deadline: float | None = None


@dataclass(frozen=True)
class VideoInfo:
    name: str
    width: int
    height: int
    fps: float  # as the container declares it (may be wrong: vtest.avi says 10, was recorded at 7)
    frame_count: int  # as the container declares it; 0 when unknown (streams, MKV without counts)
    codec: str
    bitrate: int = 0  # bits per second of this track, as declared or estimated from its packets; 0 unknown


def iso_utc(when: datetime) -> str:
    """ISO 8601 UTC with a Z, to the millisecond: how a segment's ``CORB_START`` tag, the bus and the bot
    write a time."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pts_seconds(pts: int, time_base: Fraction) -> float:
    """``float(pts * time_base)``, bit for bit (both round the same rational once), without building a
    Fraction per packet: a 60-s segment has ~1,800 packets and this runs for every one."""
    return pts * time_base.numerator / time_base.denominator


def _fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    value = float(rate) if rate else 0.0
    return value if math.isfinite(value) and 0 < value <= 1000 else 0.0


def _info(name: str, stream: av.video.stream.VideoStream, duration_s: float) -> VideoInfo:
    """A track's declared properties; Matroska declares no frame count, so it is duration x rate."""
    ctx = stream.codec_context
    fps = _fps(stream)
    count = int(stream.frames or 0) or round(duration_s * fps)
    return VideoInfo(name=name, width=int(ctx.width or 0), height=int(ctx.height or 0), fps=fps,
                     frame_count=count if 0 < count < 1e9 else 0, codec=ctx.name or "",
                     bitrate=int(ctx.bit_rate or 0))


def video_tracks(container: av.container.InputContainer) -> tuple[av.video.stream.VideoStream,
                                                                  av.video.stream.VideoStream | None]:
    """(main, sub) video tracks per the segment layout: the sub-stream is the track titled ``sub``, else a
    second, smaller video track; None when there is only one."""
    videos = list(container.streams.video)
    if not videos:
        raise ValueError("no video track")
    titled = {str(s.metadata.get("title", s.metadata.get("TITLE", ""))).lower(): s for s in videos}
    main = titled.get("main", videos[0])
    sub = titled.get("sub")
    if sub is None and len(videos) > 1:
        other = next(s for s in videos if s is not main)
        area = (other.codec_context.width or 0) * (other.codec_context.height or 0)
        if area < (main.codec_context.width or 0) * (main.codec_context.height or 0):
            sub = other
    return main, (sub if sub is not main else None)


def _holds(stream: av.video.stream.VideoStream, size: tuple[int, int]) -> bool:
    """True if ``stream``'s frames fill a ``size`` (w, h) input without being enlarged (the letterbox's
    scale, as the detector will use it, is at most 1)."""
    from detection.detectors.base import letterbox_params

    w, h = stream.codec_context.width or 0, stream.codec_context.height or 0
    return w > 0 and h > 0 and letterbox_params((w, h), size).scale <= 1


def open_video(path: str | Path, name: str | None = None, *,
               stream_copy: bool = False) -> av.container.InputContainer:
    """Open a video file for reading, probing it as little as it needs (see ``_HEADER_PROBE``).
    ``name``: how errors name it. ``stream_copy``: the packets will be muxed again, which needs every
    packet's decoding time: the file is then checked to the end for reordered frames, not only its start.
    Raises :class:`VideoError` for a missing, empty or unreadable file."""
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise VideoError(f"{name}: not found or not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{name}: empty object (0 bytes)")
    try:
        if _header_suffices(path, None if stream_copy else _IN_ORDER_PACKETS):
            return av.open(str(path), "r", **_OPEN_OPTIONS, options=_HEADER_PROBE)
        for probe in _PROBES[:-1]:
            container = av.open(str(path), "r", **_OPEN_OPTIONS, options=probe)
            if all(s.codec_context.width and s.codec_context.height for s in container.streams.video):
                return container
            container.close()
        return av.open(str(path), "r", **_OPEN_OPTIONS, options=_PROBES[-1])
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise VideoError(f"{name}: not a video FFmpeg can open (corrupt or unknown format: {exc})") from None


def _header_suffices(path: Path, packets: int | None) -> bool:
    """Whether a probe that decodes nothing describes ``path`` as well as one that decodes: a container that
    stores each frame's presentation time (Matroska, MP4) and declares its video tracks' sizes, whose first
    ``packets`` packets per video track (None: all) come in presentation order. Reordered frames (B-frames)
    need the decoding delay only a decoding probe measures: the decoder starts from it, and without it
    FFmpeg cannot give a Matroska packet its decoding time, which a stream copy needs."""
    try:
        with av.open(str(path), "r", **_OPEN_OPTIONS, options=_HEADER_PROBE) as container:
            videos = list(container.streams.video)
            if not videos or not any(f in container.format.name.split(",") for f in ("matroska", "mov")) \
                    or not all(s.codec_context.width and s.codec_context.height for s in videos):
                return False
            last: dict[int, int] = {}  # per track: the latest presentation time
            seen: dict[int, int] = {}  # per track: packets
            for n, packet in enumerate(container.demux(*videos)):
                if not packet.size:
                    continue  # the demuxer's end-of-stream marker
                track = packet.stream.index
                if packet.pts is None or (track in last and packet.pts <= last[track]):
                    return False
                last[track] = packet.pts
                seen[track] = seen.get(track, 0) + 1
                if packets is not None and (n >= 4 * packets * len(videos) or
                                            (len(seen) == len(videos) and min(seen.values()) >= packets)):
                    break
            return True
    except (av.FFmpegError, UnicodeDecodeError):
        return False  # the probes that follow say what is wrong


class VideoReader:
    """Open a segment and iterate over its analysed frames; counters say what it cost.

    ``fps``: analysis rate in frames per second of container time; ``every_frame`` analyses all of them.
    ``skip_static``: decode only keyframes where nothing changes (default: on when sampling).
    ``track``: ``"auto"`` analyses the sub-stream when there is one, ``"main"`` always the main track.
    ``sub_min``: the detector's input (w, h): a sub-stream smaller than it on both sides is not analysed,
    since the detector would enlarge it and see less than the main stream gives it (a 320x180 or CIF
    sub-stream on a 1080p camera would cost people far away their detection).
    ``name``: how errors name the object (the bucket key, not a temp file).
    """

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_ANALYSIS_FPS, every_frame: bool = False,
                 limits: Limits = Limits(), name: str | None = None, skip_static: bool | None = None,
                 track: str = "auto", motion: MotionConfig = _MOTION,
                 sub_min: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        if not every_frame and not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"analysis fps must be a positive number, got {fps}")
        if track not in ("auto", "main"):
            raise ValueError(f"track must be 'auto' or 'main', got {track!r}")
        self.every_frame = every_frame
        self.fps = fps
        self.limits = limits
        self.skip_static = (not every_frame) if skip_static is None else skip_static
        self.motion = motion
        self.frames_seen = 0  # frames of the analysed track in the file (its packets)
        self.frames_decoded = 0  # of those, how many were actually decoded
        self.frames_yielded = 0
        self.gops = 0
        self.gops_decoded = 0  # GOPs decoded in full (the others: their keyframe only)
        self.decode_s = 0.0
        self.first_timestamp_s: float | None = None
        self.last_timestamp_s: float | None = None
        self.capped: str | None = None  # why decoding stopped early, if it did
        self._container = open_video(self.path, self.name)
        self._reformatter = VideoReformatter()
        try:
            main, sub = video_tracks(self._container)
        except ValueError:
            self.close()
            raise VideoError(f"{self.name}: no video track (not a video, or an audio-only file)") from None
        self._main = main
        if sub is not None and sub_min is not None and not _holds(sub, sub_min):
            sub = None
        self._stream = sub if (sub is not None and track == "auto") else main
        declared_s = (self._container.duration or 0) / 1e6
        self.info = _info(self.name, main, declared_s)  # the camera's main stream: what the payload reports
        self.analysed = _info(self.name, self._stream, declared_s)  # the track whose frames are yielded
        self.uses_substream = self._stream is not main
        for what in {self.info, self.analysed}:
            if what.width * what.height > limits.max_pixels:
                self.close()
                raise VideoError(f"{self.name}: frames of {what.width}x{what.height} exceed the limit of "
                                 f"{limits.max_pixels} pixels")
        self._time_base = self._stream.time_base or Fraction(1, 1000)
        start = self._container.start_time  # microseconds, common to all tracks (keeps them aligned)
        self._origin_s = start / 1e6 if start is not None and start > 0 else 0.0
        self._packet_bytes = 0
        self._declared_s = declared_s

    # -- frames ----------------------------------------------------------------------------------------
    def _prepare(self, frame: av.VideoFrame) -> np.ndarray:
        if frame.width * frame.height > self.limits.max_pixels:
            raise VideoError(f"{self.name}: a frame is {frame.width}x{frame.height}, over the pixel limit")
        side = max(frame.width, frame.height)
        # One reformatter per reader: swscale's context is reused (a new one per frame costs ~40% more).
        if side > self.limits.max_side:  # swscale shrinks while converting: one pass, no full-size copy
            scale = self.limits.max_side / side
            return self._reformatter.reformat(frame, width=max(1, round(frame.width * scale)),
                                              height=max(1, round(frame.height * scale)),
                                              format="bgr24", interpolation="AREA").to_ndarray()
        return self._reformatter.reformat(frame, format="bgr24").to_ndarray()

    def _time(self, pts: int | None, previous: float | None) -> float:
        step = 1.0 / (self.analysed.fps or _FALLBACK_FPS)
        ts = pts_seconds(pts, self._time_base) - self._origin_s if pts is not None else math.nan
        if previous is None:
            return ts if math.isfinite(ts) and ts >= 0 else 0.0
        if not math.isfinite(ts) or ts <= previous:
            return previous + step
        return ts

    def _decode_packet(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """The frames one packet completes (None: the decoder's last ones); a damaged packet gives none."""
        t0 = time.perf_counter()
        try:
            out = list(self._stream.codec_context.decode(packet))
        except av.FFmpegError as exc:
            log.debug("%s: undecodable packet skipped (%s)", self.name, exc)
            out = []
        self.frames_decoded += len(out)
        self.decode_s += time.perf_counter() - t0
        return out

    def _decode(self, packets: list[av.Packet]) -> Iterator[av.VideoFrame]:
        """Decode a run of packets that starts at a keyframe (or the file's start) and drain the decoder,
        so the next run starts clean; frames come out one by one (a stream with rare keyframes makes a
        long run: never hold its frames). Damaged packets are skipped, as a player would."""
        for packet in packets:
            yield from self._decode_packet(packet)
        yield from self._decode_packet(None)
        self._stream.codec_context.flush_buffers()

    def _packets(self) -> Iterator[tuple[list[av.Packet], bool]]:
        """GOPs in file order: (packets, starts with a keyframe); stops at the limits."""
        lim = self.limits
        gop: list[av.Packet] = []
        keyed = False
        t0 = time.perf_counter()
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 or packet.dts is None and packet.pts is None:
                    continue  # the demuxer's end-of-stream marker
                if self.frames_seen >= lim.max_frames:
                    self.capped = f"frame limit ({lim.max_frames})"
                    break
                if lim.deadline is not None and time.monotonic() >= lim.deadline:
                    self.capped = "time limit (the function's timeout)"
                    break
                pts = packet.pts if packet.pts is not None else packet.dts
                ts = pts_seconds(pts, self._time_base) - self._origin_s
                if self.first_timestamp_s is None:
                    self.first_timestamp_s = ts
                if ts - self.first_timestamp_s > lim.max_duration_s + _TS_EPS_S:
                    self.capped = f"duration limit ({lim.max_duration_s:g} s)"
                    break
                self.frames_seen += 1
                self._packet_bytes += packet.size
                if self.last_timestamp_s is None or ts > self.last_timestamp_s:
                    self.last_timestamp_s = ts
                if packet.is_keyframe and gop:
                    self.decode_s += time.perf_counter() - t0
                    yield gop, keyed
                    t0 = time.perf_counter()
                    gop = []
                if not gop:
                    keyed = packet.is_keyframe
                gop.append(packet)
        except av.FFmpegError as exc:
            self.decode_s += time.perf_counter() - t0
            raise VideoError(f"{self.name}: damaged after {self.frames_seen} frames (truncated or corrupt: "
                             f"{exc})") from None
        self.decode_s += time.perf_counter() - t0
        if gop:
            yield gop, keyed

    def __iter__(self) -> Iterator[Frame]:
        period = 0.0 if self.every_frame else 1.0 / self.fps
        state = _Sampler(period)
        index = 0  # frames of the analysed track before the current GOP
        try:
            if self.skip_static:
                yield from self._iter_skipping(state)
            else:  # every frame is decoded: one continuous run, no drain between GOPs
                for packets, _ in self._packets():
                    for packet in packets:
                        frames = self._decode_packet(packet)
                        yield from self._sample(frames, index, state)
                        index += len(frames)
                yield from self._sample(self._decode_packet(None), index, state)
        finally:
            self.close()
        self._check_complete()

    def _iter_skipping(self, state: _Sampler) -> Iterator[Frame]:
        """One GOP behind the demuxer: a GOP is decoded in full when its keyframe differs from the one
        before or the one after (so a change anywhere inside it is seen), else only its keyframe is."""
        cfg = self.motion
        held: tuple[list[av.Packet], bool, int, av.VideoFrame | None, np.ndarray | None] | None = None
        before: np.ndarray | None = None  # small copy of the held GOP's previous keyframe
        index = 0
        for packets, keyed in self._packets():
            key = small = None
            if keyed:
                alone = list(self._decode(packets[:1]))  # consumed whole: the decoder is drained and reset
                key = alone[0] if alone else None
                small = small_gray(key.to_ndarray(format="gray"), cfg.width) if key is not None else None
            if held is not None:
                yield from self._emit(held, before, small, state, self._packet_time(packets[0]))
                before = held[4]
            held = (packets, keyed, index, key, small)
            index += len(packets)
            self.gops += 1
        if held is not None:
            yield from self._emit(held, before, None, state, None)

    def _packet_time(self, packet: av.Packet) -> float:
        pts = packet.pts if packet.pts is not None else packet.dts
        return pts_seconds(pts, self._time_base) - self._origin_s

    def _needed(self, packets: list[av.Packet], state: _Sampler, end_s: float | None) -> list[av.Packet]:
        """The packets up to the GOP's last frame the analysis rate takes (the rest would be decoded for
        nothing: no later frame of this GOP is analysed, and the next GOP starts afresh at its keyframe)."""
        if end_s is None or state.next_due is None or state.period <= 0:
            return packets
        if state.next_due >= end_s - _TS_EPS_S:
            return []
        steps = math.floor((end_s - _TS_EPS_S - state.next_due) / state.period)
        last_due = state.next_due + steps * state.period
        for n, packet in enumerate(packets):
            if self._packet_time(packet) + _TS_EPS_S >= last_due:
                return packets[:n + 1]
        return packets

    def _emit(self, held: tuple, before: np.ndarray | None, after: np.ndarray | None,
              state: _Sampler, end_s: float | None) -> Iterator[Frame]:
        packets, keyed, index, key, small = held
        cfg = self.motion

        def moved(a: np.ndarray | None, b: np.ndarray | None) -> bool:
            return a is not None and b is not None and \
                changed_fraction(a, b, cfg.pixel_threshold) >= cfg.min_changed_fraction

        if key is not None and len(packets) == 1:  # an intra-only stream (MJPEG): already decoded
            yield from self._sample([key], index, state)
        elif not keyed or key is None or moved(before, small) or moved(small, after) \
                or (before is None and after is None):
            self.gops_decoded += 1
            yield from self._sample(self._decode(self._needed(packets, state, end_s)), index, state)
        else:  # static: the keyframe stands for its GOP (with 1-4 s GOPs it is always due at <= 1 fps)
            yield from self._sample([key], index, state)

    def _sample(self, frames: Iterable[av.VideoFrame], index: int, state: _Sampler) -> Iterator[Frame]:
        for offset, frame in enumerate(frames):
            ts = self._time(frame.pts, state.last)
            state.last = ts
            if not state.due(ts):
                continue
            t0 = time.perf_counter()
            image = self._prepare(frame)
            self.decode_s += time.perf_counter() - t0
            state.taken(ts)
            self.frames_yielded += 1
            yield Frame(index + offset, ts, image)

    def _check_complete(self) -> None:
        if self.capped:
            log.warning("%s: stopped decoding at the %s", self.name, self.capped)
        if self.frames_yielded == 0:
            what = "no decodable frames" if self.frames_seen == 0 else \
                f"{self.frames_seen} frames, none decodable"
            raise VideoError(f"{self.name}: {what} (truncated, corrupt or not a video)")
        end = (self.last_timestamp_s or 0.0) + 1.0 / (self.analysed.fps or _FALLBACK_FPS)
        # FFmpeg's segment muxer without -reset_timestamps declares a segment's END time as its duration
        # (a segment starting at 2 s "lasts" 4 s): such a file is complete when its frames reach that end.
        end = max(end, end + self._origin_s)
        if not self.capped and self._declared_s > 0 and end < self._declared_s - _TRUNCATION_SLACK_S:
            raise VideoError(f"{self.name}: truncated: frames end at {end:.1f} s of a declared "
                             f"{self._declared_s:.1f} s")

    @property
    def duration_s(self) -> float:
        """Container time covered by the analysed track (first to last frame, plus one frame interval)."""
        if self.first_timestamp_s is None or self.last_timestamp_s is None:
            return 0.0
        span = self.last_timestamp_s - self.first_timestamp_s
        if self.frames_seen > 1 and span > 0:
            return span * self.frames_seen / (self.frames_seen - 1)
        return 1.0 / (self.analysed.fps or _FALLBACK_FPS)

    @property
    def bitrate(self) -> int:
        """The main track's bits per second: as declared, else measured when the main track was read."""
        if self.info.bitrate or self.uses_substream:
            return self.info.bitrate
        return round(self._packet_bytes * 8 / self.duration_s) if self.duration_s > 0 else 0

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Sampler:
    """Which frames the analysis rate takes: the first at or after each multiple of the period."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.next_due: float | None = None
        self.last: float | None = None

    def due(self, ts: float) -> bool:
        return self.next_due is None or ts + _TS_EPS_S >= self.next_due

    def taken(self, ts: float) -> None:
        # One period on, unless the stream jumped past it (then from here).
        nd = self.next_due
        self.next_due = ts + self.period if nd is None or ts - nd >= self.period else nd + self.period


def decode_frame_at(path: str | Path, timestamp_s: float, *, limits: Limits = Limits(),
                    name: str | None = None) -> np.ndarray:
    """The main track's frame shown at ``timestamp_s`` (container time), BGR, at most ``max_side``: the
    snapshot when the sub-stream was analysed. Seeks to the keyframe before it and decodes up to it."""
    reader = VideoReader(path, every_frame=True, track="main", limits=limits, name=name)
    container, stream = reader._container, reader._main
    try:
        target = round((timestamp_s + reader._origin_s) / stream.time_base) if stream.time_base else 0
        try:
            container.seek(target, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            container.seek(0)
        best: av.VideoFrame | None = None
        for packet in container.demux(stream):
            for frame in stream.codec_context.decode(packet if packet.size else None):
                if frame.pts is None:
                    continue
                if best is not None and frame.pts > target:
                    return reader._prepare(best if target - best.pts < frame.pts - target else frame)
                best = frame
        if best is None:
            raise VideoError(f"{reader.name}: no main-stream frame at {timestamp_s:.3f} s")
        return reader._prepare(best)
    except av.FFmpegError as exc:
        raise VideoError(f"{reader.name}: main stream undecodable at {timestamp_s:.3f} s ({exc})") from None
    finally:
        reader.close()


T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` ahead: decoding overlaps inference.

    FFmpeg and LiteRT release the GIL, so the two really run side by side; the bounded queue keeps memory
    flat. Exceptions from the producer are re-raised here; stopping early stops the producer.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    error: list[BaseException] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put(item):
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            error.append(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
            put(_DONE)

    thread = threading.Thread(target=produce, name="video-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
    if error:
        raise error[0]
