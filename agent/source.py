"""Read one camera stream with PyAV (FFmpeg): packets as the camera sent them, each with the wall-clock time
it was captured.

Capture time comes from the stream where it can: an RTSP camera's RTCP sender reports map its RTP clock to the
camera's wall clock (FFmpeg exposes the mapping as ``start_time_realtime``, the wall-clock time of PTS 0); a
connection's first packets wait for the first sender report (up to ``RTCP_WAIT_S``), so that one connection is
timed by one clock. The camera's clock is trusted for the spacing of frames, not for where they sit in time: a
camera without NTP is often off by minutes, and a capture time after the packet's arrival is impossible, so
the camera's clock is shifted (once per connection, then tightened) whenever it runs ahead of this machine's,
or behind it by more than ``MAX_CAMERA_LAG_S`` (no live stream lags that much); a shift of more than a second
is logged, since the camera's clock wants setting. Sources without RTCP (HTTP MJPEG or HLS, an RTSP camera
that sends no sender report) use the earliest arrival: a packet cannot arrive before it was captured, so the
smallest ``arrival - media time`` seen so far, less the source's known buffering delay (``jitter_s``), bounds
the capture clock from above and tightens as packets arrive, by at most ``ARRIVAL_SLACK_S`` (a source that
keeps arriving faster than real time, such as a recorded HLS playlist, is played at its own rate instead). A
file (``file://`` or a path) is played at its own frame rate, its first frame captured when opened.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.error

from agent.redact import redact_url

log = logging.getLogger(__name__)

RTCP_WAIT_S = 3.0  # media seconds an RTSP stream may take to send its first RTCP sender report
ARRIVAL_SLACK_S = 1.0  # how far the earliest-arrival clock may move back from the first packet's
MAX_CAMERA_LAG_S = 30.0  # a camera clock further behind than this is wrong, not a slow network


class StreamError(Exception):
    """The stream could not be opened or read; the message is for people (password redacted)."""


@dataclass
class TimedPacket:
    """A packet and its capture time. Muxing empties an ``av.Packet``, so the timing is kept beside it and
    ``copy()`` makes a fresh packet for data written more than once (the sub-stream's pre-roll)."""

    packet: Any  # av.Packet
    wall: float  # capture time, Unix seconds
    keyframe: bool
    pts: int
    dts: int
    time_base: Fraction

    def copy(self) -> TimedPacket:
        packet = av.Packet(bytes(self.packet))
        packet.time_base, packet.is_keyframe = self.time_base, self.keyframe
        return TimedPacket(packet, self.wall, self.keyframe, self.pts, self.dts, self.time_base)


def _options(url: str, stall_s: float) -> dict[str, str]:
    if url.startswith(("rtsp://", "rtsps://")):
        # TCP interleaved: the reliable transport through NATs and firewalls; no probing delay at connect.
        return {"rtsp_transport": "tcp", "timeout": str(int(stall_s * 1e6)), "analyzeduration": "0",
                "probesize": "32768", "fflags": "nobuffer"}
    if url.startswith(("http://", "https://")):
        return {"rw_timeout": str(int(stall_s * 1e6)), "reconnect": "0"}
    return {}


def _timed_out(exc: BaseException) -> bool:
    code = getattr(exc, "errno", None)
    return code in (errno.ETIMEDOUT, errno.EAGAIN) or isinstance(exc, TimeoutError | av.error.ExitError)


def describe_error(url: str, exc: BaseException) -> str:
    """A clear sentence for an open or read failure, naming the stream without its password."""
    shown = redact_url(url)
    if isinstance(exc, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return f"wrong user name or password for {shown} (the camera answered {exc.strerror})"
    if isinstance(exc, av.error.HTTPNotFoundError):
        return f"no such stream {shown} (the camera answered 404 Not Found): check the path"
    code = getattr(exc, "errno", None)
    if code == errno.ECONNREFUSED:
        return f"cannot connect to {shown}: connection refused (is the camera on, and the port right?)"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"cannot reach {shown}: no route to the host"
    if _timed_out(exc):
        return f"no answer from {shown} in time (host down or unreachable?)"
    if code == errno.ENOENT:
        return f"no such file {shown}"
    return f"cannot read {shown}: {redact_url(str(getattr(exc, 'strerror', None) or exc))}"


def _path(url: str) -> str | None:
    if url.startswith("file://"):
        return url[len("file://"):]
    return None if "://" in url else url


class StreamReader:
    """One open stream's video track: ``packets()`` yields them with capture times until the stream ends."""

    def __init__(self, url: str, *, stall_s: float = 10.0, open_timeout_s: float = 10.0,
                 jitter_s: float = 0.0) -> None:
        self.url = url
        self.jitter_s = jitter_s
        self.stall_s = stall_s
        self.file = _path(url)
        try:
            self.container = av.open(self.file or url, options=_options(url, stall_s),
                                     timeout=(open_timeout_s, stall_s))
        except (av.error.FFmpegError, OSError) as exc:
            raise StreamError(describe_error(url, exc)) from exc
        if not self.container.streams.video:
            self.container.close()
            raise StreamError(f"{redact_url(url)} has no video track")
        self.stream = self.container.streams.video[0]
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        self._offset: float | None = None  # capture = media time + offset (arrival-based sources)
        self._first_offset = 0.0
        self._skew: float | None = None  # camera clock - this machine's (RTCP), once corrected
        self._opened = time.time()
        self.clock = "rtcp" if url.startswith(("rtsp://", "rtsps://")) else "file" if self.file else "arrival"

    @property
    def codec(self) -> str:
        return self.stream.codec_context.name

    @property
    def width(self) -> int:
        return int(self.stream.codec_context.width)

    @property
    def height(self) -> int:
        return int(self.stream.codec_context.height)

    def _wall(self, media_s: float, arrival: float) -> float:
        realtime = self.container.start_time_realtime if self.clock == "rtcp" else None
        if self.clock == "rtcp" and not realtime:  # no sender report within RTCP_WAIT_S: arrival from now on
            self.clock = "arrival"
        if realtime:  # RTCP: the camera's own clock, kept no later than arrival
            start = self.stream.start_time or 0
            camera = realtime / 1e6 + media_s - float(start * self.time_base)
            return camera - self._correct(camera - arrival)
        if self.clock == "file":
            if self._offset is None:
                self._offset = self._opened - media_s
            wall = media_s + self._offset
            if wall > time.time():
                time.sleep(wall - time.time())  # play at the file's own rate
            return wall
        candidate = arrival - self.jitter_s - media_s
        if self._offset is None:
            self._first_offset = self._offset = candidate
        # The earliest arrival bounds the capture clock, but a source that keeps arriving ahead of real
        # time (a recorded HLS playlist) is not live: past ARRIVAL_SLACK_S it is played at its own rate.
        self._offset = max(min(self._offset, candidate), self._first_offset - ARRIVAL_SLACK_S)
        wall = media_s + self._offset
        if wall > time.time():
            time.sleep(wall - time.time())
        return wall

    def _correct(self, ahead: float) -> float:
        """The shift for a camera clock ``ahead`` s of this packet's arrival (negative: behind)."""
        if self._skew is None:
            self._skew = ahead if ahead > 0 or ahead < -MAX_CAMERA_LAG_S else 0.0
            if abs(self._skew) > 1.0:
                log.warning("%s: the camera's clock is %.1f s %s this machine's; capture times follow this "
                            "machine's clock (set the camera's time server)", redact_url(self.url),
                            abs(self._skew), "ahead of" if self._skew > 0 else "behind")
        elif ahead > self._skew:  # still after arrival: the camera's clock gained, or this one was set back
            self._skew = ahead
        return self._skew

    def packets(self) -> Iterator[TimedPacket]:
        """Packets of the video track; ends when the stream does; ``StreamError`` if reading fails."""
        synthetic = self.codec == "mjpeg"
        held: list[tuple[Any, float, float]] = []  # packets waiting for the RTCP clock
        try:
            for packet in self.container.demux(self.stream):
                arrival = time.time()
                if packet.size == 0:
                    continue
                if synthetic:
                    # MJPEG over HTTP carries no timestamps (FFmpeg assumes 25 fps): arrival is the time.
                    packet.time_base = Fraction(1, 1000)
                    packet.pts = packet.dts = int(round((arrival - self._opened) * 1000))
                elif packet.pts is None:
                    continue  # no timestamp (the first RTSP packet before timing is known): unusable
                if packet.dts is None:
                    packet.dts = packet.pts
                media_s = float(packet.pts * packet.time_base)
                batch = [(packet, media_s, arrival)]
                if self.clock == "rtcp" and not self.container.start_time_realtime:
                    # One clock per connection: wait (briefly) for the first sender report rather than
                    # timing the first packets by arrival and the rest by the camera.
                    held += batch
                    if media_s - held[0][1] < RTCP_WAIT_S:
                        continue
                    batch, held = held, []
                elif held:
                    batch, held = held + batch, []
                for p, m, a in batch:
                    yield TimedPacket(p, self._wall(m, a), bool(p.is_keyframe) or synthetic, p.pts, p.dts,
                                      p.time_base)
        except (av.error.FFmpegError, OSError) as exc:
            if _timed_out(exc):
                raise StreamError(f"the stream {redact_url(self.url)} stalled: no video for "
                                  f"{self.stall_s:.0f} s") from exc
            raise StreamError(describe_error(self.url, exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(av.error.FFmpegError, OSError):  # closing a broken connection
            self.container.close()
