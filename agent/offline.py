"""Cut a recorded feed into the segments the camera agent would write, offline: the benches' camera.

The live agent and this splitter share :class:`agent.segmenter.SegmentPolicy`: each keyframe of the main
stream is decoded alone, shrunk to a small grey copy (``small_copy``) and the policy says whether a new
segment starts there. Packets are stream-copied (never re-encoded) into Matroska files per the segment
layout (``docs/segments.md``): track 0 ``main``, track 1 ``sub`` when a sub-stream is given, the sub-stream
starting at its last keyframe at or before the cut (its GOP pre-roll), PTS 0 at the file's first packet,
tags ``CORB_CAMERA`` and ``CORB_START``, named ``<UTC time of PTS 0>.mkv``; each file is written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from agent.segmenter import SegmentPolicy, small_copy
from detection.footage import tail
from detection.video import iso_utc

if TYPE_CHECKING:
    from agent.people import PersonCheck


@dataclass(frozen=True)
class Segment:
    path: Path
    start: datetime  # UTC capture time of the file's PTS 0
    start_s: float  # the same, in seconds of the feed
    end_s: float  # the main track's end in the feed (the next cut)
    quiet: bool = False  # the policy's ``closed_quiet``: the agent would put it under quiet/, unanalysed
    split: bool = False  # quiet, cut from an analysed segment that follows it at once (``_split``)


def segment_name(start: datetime) -> str:
    """``2026-11-30T10-15-02.123Z.mkv``: the layout's key name for a segment whose PTS 0 is ``start``."""
    utc = start.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H-%M-%S.") + f"{utc.microsecond // 1000:03d}Z.mkv"


def keyframe_small(frame: av.VideoFrame) -> np.ndarray:
    """The policy's view of a keyframe (:func:`agent.segmenter.small_copy`)."""
    return small_copy(frame.to_ndarray(format="gray"))


def _seconds(packet: av.Packet) -> float:
    pts = packet.pts if packet.pts is not None else packet.dts
    return float(pts * packet.time_base)


def _packets(container: av.container.InputContainer, track: int) -> Iterator[tuple[float, int, av.Packet]]:
    stream = container.streams.video[0]
    for packet in container.demux(stream):
        if packet.size and (packet.pts is not None or packet.dts is not None):
            yield _seconds(packet), track, packet


class _Writer:
    """One segment file being written (under a temporary name until :meth:`close`)."""

    def __init__(self, out_dir: Path, start: datetime, start_s: float, camera: str,
                 templates: list[av.video.stream.VideoStream]) -> None:
        self.final = out_dir / segment_name(start)
        self.tmp = out_dir / f".{self.final.name}.part"
        self.start, self.start_s = start, start_s

        self.out = av.open(str(self.tmp), "w", format="matroska",
                           options={"write_crc32": "0"})
        self.out.metadata.update({"CORB_CAMERA": camera, "CORB_START": iso_utc(start)})
        self.streams = []
        for template, title in zip(templates, ("main", "sub"), strict=False):
            stream = self.out.add_stream_from_template(template)
            stream.metadata["title"] = title
            self.streams.append(stream)

    def write(self, track: int, packet: av.Packet) -> None:
        offset = round(self.start_s / packet.time_base)
        packet.pts = None if packet.pts is None else packet.pts - offset
        packet.dts = None if packet.dts is None else packet.dts - offset
        packet.stream = self.streams[track]
        self.out.mux(packet)

    def close(self) -> Path:
        self.out.close()
        self.tmp.replace(self.final)
        return self.final


def split(feed: str | Path, sub_feed: str | Path | None, policy: SegmentPolicy, out_dir: str | Path, *,
          camera: str, start: datetime, people: PersonCheck | None = None) -> list[Segment]:
    """Cut ``feed`` (and its sub-stream file, if any) into segment files in ``out_dir``; ``start`` is the
    UTC capture time of the feed's time 0; ``people``: the agent's person check, if it runs one. Returns
    the segments in order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    inputs = [av.open(str(feed))] + ([av.open(str(sub_feed))] if sub_feed is not None else [])
    templates = [c.streams.video[0] for c in inputs]
    main_ctx = templates[0].codec_context
    segments: list[Segment] = []
    writer: _Writer | None = None
    preroll: list[av.Packet] = []  # the sub-stream's packets since its last keyframe
    try:
        for t, track, packet in heapq.merge(*(_packets(c, i) for i, c in enumerate(inputs)),
                                            key=lambda item: (item[0], -item[1])):  # sub first at a tie
            if track == 1:
                if packet.is_keyframe:
                    preroll = []
                preroll.append(packet)
                if writer is not None:
                    writer.write(1, _copy(packet))
                continue
            if packet.is_keyframe:
                frames = list(main_ctx.decode(packet)) + list(main_ctx.decode(None))
                main_ctx.flush_buffers()
                frame = frames[0] if frames else None
                check = None if people is None else partial(people, frame)
                if policy.on_keyframe(t, keyframe_small(frame) if frame else None, people=check):
                    if writer is not None:
                        closed = Segment(writer.close(), writer.start, writer.start_s, t, policy.closed_quiet)
                        segments.extend(_split(closed, policy.closed_quiet_until))
                    lead = [p for p in preroll if _seconds(p) <= t] if preroll else []
                    first = min([t] + [_seconds(p) for p in lead[:1]])
                    writer = _Writer(out, start + timedelta(seconds=first), first, camera, templates)
                    for p in lead:
                        writer.write(1, _copy(p))
            if writer is not None:
                writer.write(0, packet)
        if writer is not None:
            end = float(templates[0].duration * templates[0].time_base) if templates[0].duration else t
            segments.append(Segment(writer.close(), writer.start, writer.start_s, end))
    finally:
        for c in inputs:
            c.close()
    return segments


def _split(segment: Segment, quiet_until: float | None) -> list[Segment]:
    """``segment``, or as the agent splits it (``agent.camera.Camera._finish``): its part before the
    keyframe at ``quiet_until`` (feed seconds) quiet, the rest a segment of its own."""
    if quiet_until is None or segment.quiet:
        return [segment]
    part = segment.path.with_name(f".tail-{segment.path.name}.part")
    shift = tail(segment.path, part, quiet_until - segment.start_s)
    if shift is None:
        part.unlink(missing_ok=True)
        return [segment]
    start = segment.start + timedelta(seconds=shift)
    rest = part.replace(segment.path.with_name(segment_name(start)))
    return [replace(segment, end_s=quiet_until, quiet=True, split=True),
            Segment(rest, start, segment.start_s + shift, segment.end_s)]


def _copy(packet: av.Packet) -> av.Packet:
    """A packet muxed twice (pre-roll of the next segment too) must not carry the first file's rebasing."""
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.time_base = packet.pts, packet.dts, packet.time_base or Fraction(1, 1000)
    clone.is_keyframe = packet.is_keyframe
    if packet.duration is not None:
        clone.duration = packet.duration
    return clone
