"""Write one segment: a Matroska file by stream copy (never re-encoded), laid out as detection expects.

Track 0 is the main stream, from a keyframe; track 1, when the camera has a sub-stream, starts at the
sub-stream keyframe at or before the main track's first frame (its GOP is carried over as pre-roll so every
sub frame of the segment decodes). The file's PTS 0 is its earliest packet, whose capture time names the
file (``cameras/<slug>/<YYYY-MM-DDTHH-MM-SS.mmmZ>.mkv``) and is in its ``CORB_START`` tag. The file is
written under a temporary name and only becomes a segment when ``Spool.commit`` renames it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import av

from agent.source import TimedPacket


def segment_key(slug: str, wall: float) -> str:
    """``cameras/<slug>/<UTC time to the millisecond>.mkv``, the name detection reads the start from."""
    ms = int(round(wall * 1000))
    t = datetime.fromtimestamp(ms // 1000, UTC)
    return f"cameras/{slug}/{t:%Y-%m-%dT%H-%M-%S}.{ms % 1000:03d}Z.mkv"


def iso_time(wall: float) -> str:
    """The same instant as ``segment_key`` in ISO 8601 (``2026-11-30T10:15:02.123Z``)."""
    ms = int(round(wall * 1000))
    return f"{datetime.fromtimestamp(ms // 1000, UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


@dataclass
class SegmentStats:
    key: str
    start: float  # capture time of PTS 0 (the sub-stream's pre-roll may start before the main track)
    main_start: float  # capture time of the main track's first frame
    end: float  # capture time just after the last main frame
    frames: int
    size: int
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return max(self.end - self.start, 1e-3)

    @property
    def fps(self) -> float:
        return round(self.frames / max(self.end - self.main_start, 1e-3), 2)

    @property
    def bitrate_bps(self) -> int:
        return int(self.size * 8 / self.duration_s)


class _Track:
    """One output track: its stream and the PTS offset that puts the segment's start at 0."""

    def __init__(self, out: Any, template: Any, title: str, base: float, first: TimedPacket) -> None:
        self.stream = out.add_stream_from_template(template)
        self.stream.metadata["title"] = title
        self.offset = first.pts - round((first.wall - base) / first.time_base)
        self.last_dts: int | None = None

    def mux(self, out: Any, tp: TimedPacket) -> bool:
        pts, dts = tp.pts - self.offset, tp.dts - self.offset
        if dts < 0 or (self.last_dts is not None and dts <= self.last_dts):
            return False  # out of order or before the segment: Matroska needs rising timestamps
        packet = tp.packet
        packet.time_base, packet.pts, packet.dts, packet.stream = tp.time_base, pts, dts, self.stream
        out.mux(packet)
        self.last_dts = dts
        return True


class SegmentWriter:
    """Open at a main keyframe (with the sub-stream's pre-roll), mux packets, ``close()``."""

    def __init__(self, path: Path, slug: str, main_template: Any, first: TimedPacket,
                 sub_template: Any | None = None, sub_preroll: list[TimedPacket] | None = None) -> None:
        preroll = [p for p in (sub_preroll or []) if p.wall <= first.wall] if sub_template else []
        self.start = min([first.wall] + [p.wall for p in preroll[:1]])
        self.key = segment_key(slug, self.start)
        self.path = path
        self.out = av.open(str(path), "w", format="matroska")
        self.out.metadata["CORB_CAMERA"] = slug
        self.out.metadata["CORB_START"] = iso_time(self.start)
        self.main = _Track(self.out, main_template, "main", self.start, first)
        self.sub = _Track(self.out, sub_template, "sub", self.start, preroll[0]) if preroll else None
        self.frames, self.main_start, self.end = 0, first.wall, first.wall
        self._width = int(main_template.codec_context.width)
        self._height = int(main_template.codec_context.height)
        self._frame_s = 0.0
        self.add_main(first)
        for p in preroll:
            self.add_sub(p)

    def add_main(self, tp: TimedPacket) -> None:
        if self.main.mux(self.out, tp):
            if self.frames:
                self._frame_s = (tp.wall - self.end) if self._frame_s == 0 else self._frame_s
            self.frames += 1
            self.end = tp.wall

    def add_sub(self, tp: TimedPacket) -> None:
        """Sub-stream packets are kept for the next segment's pre-roll: a copy is written."""
        if self.sub is not None and tp.wall >= self.start:
            self.sub.mux(self.out, tp.copy())

    def close(self) -> SegmentStats:
        self.out.close()
        return SegmentStats(key=self.key, start=self.start, main_start=self.main_start,
                            end=self.end + self._frame_s, frames=self.frames,
                            size=self.path.stat().st_size, width=self._width, height=self._height)

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the file is deleted anyway
            self.out.close()
        self.path.unlink(missing_ok=True)
