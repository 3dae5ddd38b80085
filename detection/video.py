"""Streaming video decoding: a segment in, sampled BGR frames out, with memory flat however long it is.

Frames are pulled one at a time from OpenCV's FFmpeg backend. Frames that the analysis rate skips are only
``grab()``-ed (demuxed and decoded, never converted to BGR), which is what makes sampling cheap. Hard caps on
frame count, duration and pixels keep a hostile object from hanging the function or exhausting its memory;
frames larger than ``Limits.max_side`` are downscaled before anyone sees them.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

import cv2
import numpy as np

from detection.detectors import to_bgr

log = logging.getLogger(__name__)

DEFAULT_ANALYSIS_FPS = 2.0
"""Frames analysed per second of video by default: people walk, so 2 a second sees every one of them."""

_FALLBACK_FPS = 25.0  # when the container declares no usable rate and gives no timestamps
_TS_EPS_S = 1e-3  # container timestamps are rounded to milliseconds (143.00000000000003 ms)


class VideoError(ValueError):
    """The object is not a decodable video (empty, truncated, not video, or over the limits)."""


class Frame(NamedTuple):
    index: int
    """0-based position among all decoded frames of the segment (MOT frame number = index + 1)."""
    timestamp_s: float
    """Presentation time from the container (``CAP_PROP_POS_MSEC``), in seconds."""
    image: np.ndarray
    """uint8 BGR, at most ``Limits.max_side`` pixels on its longer side."""


@dataclass(frozen=True)
class Limits:
    """What a segment may cost at most. Beyond frames/duration, decoding stops (and says so); beyond pixels,
    the object is refused, because FFmpeg would allocate the frame before we could look at it."""

    max_frames: int = 200_000  # decoded frames: ~1.9 h at 30 fps
    max_duration_s: float = 3600.0  # of container time
    max_pixels: int = 4096 * 4096  # per frame, as declared or as decoded (DCI 4K is 8.8 MP)
    max_side: int = 1920  # analysed frames are downscaled to this longer side (the detector sees ~416)
    io_timeout_ms: int = 10_000  # FFmpeg's interrupt callback: a stalled read fails instead of hanging


@dataclass(frozen=True)
class VideoInfo:
    name: str
    width: int
    height: int
    fps: float  # as the container declares it (may be wrong: vtest.avi says 10, was recorded at 7)
    frame_count: int  # as the container declares it; 0 when unknown (streams, MKV without cues)
    codec: str


def _fourcc(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    return text if text.isprintable() and text.strip() else ""


class VideoReader:
    """Open a segment and iterate over its analysed frames; counters say what it cost.

    ``fps``: analysis rate in frames per second of container time; ``every_frame`` analyses all of them.
    ``name``: how errors name the object (the bucket key, not a temp file).
    """

    def __init__(self, path: str | Path, *, fps: float = DEFAULT_ANALYSIS_FPS, every_frame: bool = False,
                 limits: Limits = Limits(), name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        if not every_frame and not (fps > 0 and math.isfinite(fps)):
            raise ValueError(f"analysis fps must be a positive number, got {fps}")
        self.every_frame = every_frame
        self.fps = fps
        self.limits = limits
        self.frames_decoded = 0
        self.frames_yielded = 0
        self.decode_s = 0.0
        self.first_timestamp_s: float | None = None
        self.last_timestamp_s: float | None = None
        self.capped: str | None = None  # why decoding stopped early, if it did
        self.last_pts: float | None = None  # the last decoded frame's time in frames at the declared fps
        self._cap = self._open()
        self.info = self._probe()

    # -- opening ---------------------------------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture:
        if not self.path.is_file():
            raise VideoError(f"{self.name}: not found or not a file")
        if self.path.stat().st_size == 0:
            raise VideoError(f"{self.name}: empty object (0 bytes)")
        t = self.limits.io_timeout_ms
        # FFmpeg only: the image-sequence backend would read printf patterns ("%d") in names as sequences.
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG,
                               [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, t, cv2.CAP_PROP_READ_TIMEOUT_MSEC, t])
        if not cap.isOpened():
            cap.release()
            raise VideoError(f"{self.name}: not a video OpenCV/FFmpeg can open (corrupt or unknown format)")
        return cap

    def _probe(self) -> VideoInfo:
        cap = self._cap
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > self.limits.max_pixels:
            self.close()
            raise VideoError(f"{self.name}: frames of {width}x{height} exceed the limit of "
                             f"{self.limits.max_pixels} pixels")
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return VideoInfo(
            name=self.name, width=width, height=height,
            fps=float(fps) if math.isfinite(fps) and 0 < fps <= 1000 else 0.0,
            frame_count=int(count) if math.isfinite(count) and 0 < count < 1e9 else 0,
            codec=_fourcc(cap.get(cv2.CAP_PROP_FOURCC)),
        )

    # -- iterating -------------------------------------------------------------------------------------
    def _prepare(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if h * w > self.limits.max_pixels:
            raise VideoError(f"{self.name}: frame {self.frames_decoded - 1} is {w}x{h}, over the pixel limit")
        if image.dtype != np.uint8:  # 16-bit sources: keep the high byte
            image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
        image = to_bgr(image)
        side = max(h, w)
        if side > self.limits.max_side:
            scale = self.limits.max_side / side
            image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        return image

    def _timestamp(self, previous: float | None) -> float:
        """The container's time for the frame just grabbed; extrapolated when missing or going backwards."""
        ts = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        step = 1.0 / (self.info.fps or _FALLBACK_FPS)
        if previous is None:
            return ts if math.isfinite(ts) and ts >= 0 else 0.0
        if not math.isfinite(ts) or ts <= previous:
            return previous + step
        return ts

    def __iter__(self) -> Iterator[Frame]:
        cap = self._cap
        lim = self.limits
        period = 0.0 if self.every_frame else 1.0 / self.fps
        next_due: float | None = None
        ts: float | None = None
        failed_retrieves = 0
        try:
            while True:
                if self.frames_decoded >= lim.max_frames:
                    self.capped = f"frame limit ({lim.max_frames})"
                    break
                t0 = time.perf_counter()
                if not cap.grab():
                    self.decode_s += time.perf_counter() - t0
                    break
                self.frames_decoded += 1
                pts = cap.get(cv2.CAP_PROP_PTS)
                self.last_pts = pts if math.isfinite(pts) and pts >= 0 else None
                ts = self._timestamp(ts)
                if self.first_timestamp_s is None:
                    self.first_timestamp_s = ts
                if ts - self.first_timestamp_s > lim.max_duration_s:
                    self.decode_s += time.perf_counter() - t0
                    self.frames_decoded -= 1
                    self.capped = f"duration limit ({lim.max_duration_s:g} s)"
                    break
                self.last_timestamp_s = ts
                if next_due is not None and ts + _TS_EPS_S < next_due:
                    self.decode_s += time.perf_counter() - t0
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None or image.size == 0:
                    self.decode_s += time.perf_counter() - t0
                    failed_retrieves += 1
                    continue
                image = self._prepare(image)
                self.decode_s += time.perf_counter() - t0
                # Next analysis time: one period on, unless the stream jumped past it (then from here).
                next_due = ts + period if next_due is None or ts - next_due >= period else next_due + period
                self.frames_yielded += 1
                yield Frame(self.frames_decoded - 1, ts, image)
        finally:
            self.close()
        if self.capped:
            log.warning("%s: stopped decoding at the %s", self.name, self.capped)
        if self.frames_yielded == 0:
            what = "no decodable frames" if self.frames_decoded == 0 else \
                f"{self.frames_decoded} frames, none decodable ({failed_retrieves} failed)"
            raise VideoError(f"{self.name}: {what} (truncated, corrupt or not a video)")
        if not self.capped:
            self._check_complete()

    def _check_complete(self) -> None:
        """Raise if the frames ran out well before the end the container declares: a truncated object
        (cut in transit, or copied while still being written) must fail, not pass as a shorter clip.

        OpenCV gives the declared end as a frame count at the declared rate (FFmpeg's duration x fps) and
        each frame's presentation time in the same unit (``CAP_PROP_PTS``), counted from the stream's own
        origin as the duration is: a segment cut from a longer recording without resetting its
        timestamps declares its end, not its length, and still passes; a variable frame rate moves the
        times, not the end. One and a half frames of slack absorb the rounding of both."""
        declared = self.info.frame_count
        if not self.info.fps or not declared or self.last_pts is None:
            return  # no declared length (a live stream's file, a 0 fps header): nothing to compare
        if declared - (self.last_pts + 1) > 1.5:
            fps = self.info.fps
            raise VideoError(
                f"{self.name}: truncated: the container declares {declared / fps:.2f} s ({declared} frames) "
                f"but decoding stopped at {(self.last_pts + 1) / fps:.2f} s ({self.frames_decoded} frames)")

    @property
    def duration_s(self) -> float:
        """Container time covered by the decoded frames (first to last, plus one frame interval)."""
        if self.first_timestamp_s is None or self.last_timestamp_s is None:
            return 0.0
        span = self.last_timestamp_s - self.first_timestamp_s
        if self.frames_decoded > 1 and span > 0:
            return span * self.frames_decoded / (self.frames_decoded - 1)
        return 1.0 / (self.info.fps or _FALLBACK_FPS)

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` ahead: decoding overlaps inference.

    OpenCV and LiteRT release the GIL, so the two really run side by side; the bounded queue keeps memory
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
