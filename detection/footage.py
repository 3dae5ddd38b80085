"""The part of a segment worth keeping, cut by stream copy (never re-encoded): where people were, and the
sub-stream alone of a segment in which nobody was.

Footage with people is kept for days (``CORB_FOOTAGE_DAYS``) and at 4 Mbit/s it is the largest line of a
camera's storage bill. A 60-s segment in which someone walks past for 10 s need not be kept whole: each
track is cut from its last keyframe at or before ``margin_s`` ahead of the first person to ``margin_s`` after
the last one. Timestamps are not rebased, so the file's ``CORB_START`` tag and the time in its name still
give the capture time of PTS 0, as for the segment it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import chain
from pathlib import Path

import av

from detection.video import iso_utc, open_video, pts_seconds, video_tracks

MARGIN_S = 2.0  # before the first person and after the last: someone walking in is seen arriving
MIN_SAVING = 0.25  # keep the whole segment unless the cut saves at least this share of its span


def _seconds(packet: av.Packet) -> float | None:
    t = packet.pts if packet.pts is not None else packet.dts
    return None if t is None or packet.time_base is None else pts_seconds(t, packet.time_base)


def trim(src: Path, dst: Path, first_s: float, last_s: float, *, margin_s: float = MARGIN_S,
         duration_s: float | None = None) -> bool:
    """Write to ``dst`` the span of ``src`` from ``first_s - margin_s`` (at each track's keyframe) to
    ``last_s + margin_s`` (container seconds). False, and nothing written, when the cut would save less
    than :data:`MIN_SAVING` of ``duration_s`` (or cannot be made): the whole segment is the footage then.

    One pass over the file: each track's packets since its latest keyframe are held until the first
    packet past the start, then written in file order with the rest of the span."""
    start, end = first_s - margin_s, last_s + margin_s
    held: dict[int, list[tuple[int, float, av.Packet]]] = {}  # per track: its GOP at the start, in file order
    with open_video(src, stream_copy=True) as container:
        tracks = len(container.streams.video)
        packets = ((n, t, p) for n, p in enumerate(container.demux(*container.streams.video))
                   if (t := _seconds(p)) is not None and t <= end)
        for n, t, packet in packets:
            index = packet.stream.index
            if packet.is_keyframe and (t <= start or index not in held):
                held[index] = []  # a keyframe before the start begins the track's kept part afresh
            if index in held:
                held[index].append((n, t, packet))
            if t > start and len(held) == tracks:
                break
        else:
            return False  # a track with no keyframe up to the end of the span: keep the whole segment
        first = sorted(item for gop in held.values() for item in gop)  # file order, as demuxed
        begin = min(t for _, t, _ in first)
        if duration_s is not None and duration_s > 0 and \
                min(end, duration_s) - max(begin, 0.0) > duration_s * (1 - MIN_SAVING):
            return False
        _write(container, dst, list(container.streams.video), (p for _, _, p in chain(first, packets)))
    return True


def sub_only(src: Path, dst: Path) -> bool:
    """Write to ``dst`` the sub-stream track of ``src`` alone (the one detection analyses, see
    :func:`detection.video.video_tracks`), with the file's tags and timestamps: what is kept of a segment in
    which nobody was detected, about a tenth of its bytes. False, and nothing written, when the segment has
    no sub-stream track."""
    with open_video(src, stream_copy=True) as container:
        sub = video_tracks(container)[1]
        if sub is None:
            return False
        # a packet with neither timestamp is the demuxer's end-of-stream marker
        packets = (p for p in container.demux(sub) if p.dts is not None or p.pts is not None)
        _write(container, dst, [sub], packets)
    return True


def tail(src: Path, dst: Path, at_s: float) -> float | None:
    """Write to ``dst`` the part of the segment ``src`` from ``at_s`` (container seconds, a keyframe of its
    main track) to its end, as a segment of its own: each track from its last keyframe at or before
    ``at_s``, PTS 0 at the earliest packet kept and ``CORB_START`` moved by as much. Returns that shift in
    seconds (the new segment starts this long after ``src``), or None, and nothing written, when a track
    has no keyframe at or before ``at_s`` or the part would be the whole segment."""
    with open_video(src, stream_copy=True) as container:
        begin: dict[int, float] = {}  # per track: its last keyframe at or before at_s
        for packet in container.demux(*container.streams.video):
            t = _seconds(packet)
            if t is not None and packet.is_keyframe and t <= at_s + 1e-6:
                begin[packet.stream.index] = t
        if len(begin) != len(container.streams.video) or min(begin.values()) <= 0:
            return None
        shift = min(begin.values())
        tags = {}
        if start := dict(container.metadata).get("CORB_START"):
            tags["CORB_START"] = iso_utc(datetime.fromisoformat(start.replace("Z", "+00:00"))
                                         + timedelta(seconds=shift))
        container.seek(0)

        def kept() -> Iterable[av.Packet]:
            for packet in container.demux(*container.streams.video):
                t = _seconds(packet)
                if t is None or t < begin[packet.stream.index] - 1e-6:
                    continue
                offset = round(shift / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts - offset
                packet.dts = None if packet.dts is None else packet.dts - offset
                yield packet

        _write(container, dst, list(container.streams.video), kept(), tags)
    return shift


def _write(container: av.container.InputContainer, dst: Path, tracks: list,
           packets: Iterable[av.Packet], tags: dict[str, str] | None = None) -> None:
    """Stream-copy ``packets`` of ``tracks`` into a new Matroska file, with the file's and tracks' tags
    (``tags`` replacing some of the file's)."""
    with av.open(str(dst), "w", format="matroska") as out:
        out.metadata.update(container.metadata)
        out.metadata.update(tags or {})
        streams = {}
        for track in tracks:
            copy = streams[track.index] = out.add_stream_from_template(track)
            copy.metadata.update(track.metadata)
            # The frame rate the template carries is the one a decoding probe measured; the header-only
            # probe (detection.video.open_video) leaves it to the container's own: keep that one.
            if copy.codec_context.framerate is None and track.average_rate:
                copy.codec_context.framerate = track.average_rate
        for packet in packets:
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
