"""The part of a segment worth keeping: where people were, cut by stream copy (never re-encoded).

Footage with people is kept for days (``CORB_FOOTAGE_DAYS``) and at 4 Mbit/s it is the largest line of a
camera's storage bill. A 60-s segment in which someone walks past for 10 s need not be kept whole: each
track is cut from its last keyframe at or before ``margin_s`` ahead of the first person to ``margin_s`` after
the last one. Timestamps are not rebased, so the file's ``CORB_START`` tag and the time in its name still
give the capture time of PTS 0, as for the segment it came from.
"""

from __future__ import annotations

from pathlib import Path

import av

MARGIN_S = 2.0  # before the first person and after the last: someone walking in is seen arriving
MIN_SAVING = 0.25  # keep the whole segment unless the cut saves at least this share of its span


def _seconds(packet: av.Packet) -> float | None:
    t = packet.pts if packet.pts is not None else packet.dts
    return None if t is None or packet.time_base is None else float(t * packet.time_base)


def cut_points(src: Path, start_s: float) -> dict[int, float]:
    """Per video track, the time of its last keyframe at or before ``start_s`` (its first one if none)."""
    points: dict[int, float] = {}
    with av.open(str(src)) as container:
        for packet in container.demux(*container.streams.video):
            t = _seconds(packet)
            if t is None or not packet.is_keyframe:
                continue
            index = packet.stream.index
            if t <= start_s or index not in points:
                points[index] = t
    return points


def trim(src: Path, dst: Path, first_s: float, last_s: float, *, margin_s: float = MARGIN_S,
         duration_s: float | None = None) -> bool:
    """Write to ``dst`` the span of ``src`` from ``first_s - margin_s`` (at each track's keyframe) to
    ``last_s + margin_s`` (container seconds). False, and nothing written, when the cut would save less
    than :data:`MIN_SAVING` of ``duration_s`` (or cannot be made): the whole segment is the footage then."""
    start, end = first_s - margin_s, last_s + margin_s
    points = cut_points(src, start)
    if not points:
        return False
    begin = min(points.values())
    if duration_s is not None and duration_s > 0:
        kept = min(end, duration_s) - max(begin, 0.0)
        if kept > duration_s * (1 - MIN_SAVING):
            return False
    with av.open(str(src)) as container, av.open(str(dst), "w", format="matroska") as out:
        out.metadata.update(container.metadata)
        streams = {}
        for stream in container.streams.video:
            if stream.index in points:
                streams[stream.index] = out.add_stream_from_template(stream)
                streams[stream.index].metadata.update(stream.metadata)
        for packet in container.demux(*container.streams.video):
            t = _seconds(packet)
            index = packet.stream.index
            if t is None or index not in streams or t < points[index] or t > end:
                continue
            packet.stream = streams[index]
            out.mux(packet)
    return True
