"""The offline splitter: a recorded feed cut as the camera agent would, per the segment layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from agent.offline import split
from agent.segmenter import SegmentPolicy, SegmentSettings
from detection.pipeline import analyse, start_time_from_name
from scripts.camera_feed import make_feed

DAY0 = datetime(2026, 11, 30, 10, 15, 2, 123000, tzinfo=UTC)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("feed") / "feed.mkv"
    make_feed(out, [("empty", 8.0), ("people", 4.0), ("empty", 6.0)], size="640x480", fps=10, gop=20,
              bitrate="600k", sub_size="448x336", sub_bitrate="150k")
    return out


@pytest.fixture(scope="module")
def segments(feed: Path, tmp_path_factory: pytest.TempPathFactory) -> list:
    policy = SegmentPolicy(SegmentSettings(segment_s=60, quick_s=4))
    return split(feed, feed.with_suffix(".sub.mkv"), policy, tmp_path_factory.mktemp("segs"), camera="lobby",
                 start=DAY0)


def packets(path: Path, track: int) -> list[av.Packet]:
    with av.open(str(path)) as c:
        stream = c.streams.video[track]
        return [p for p in c.demux(stream) if p.size]


def test_cuts_fall_where_the_agents_policy_puts_them(segments: list) -> None:
    # Static until the people walk in at 8 s (a keyframe every 2 s): cut there, then at every keyframe
    # for quick_s (4 s), then one long segment to the end although people keep walking.
    assert [s.start_s for s in segments] == [0.0, 8.0, 10.0]
    assert [s.end_s for s in segments[:2]] == [8.0, 10.0]
    assert segments[-1].end_s == pytest.approx(18.0, abs=0.15)


def test_each_file_follows_the_segment_layout(segments: list) -> None:
    for seg in segments:
        when = DAY0 + timedelta(seconds=seg.start_s)
        assert start_time_from_name(seg.path.name) == when
        assert seg.path.name == when.strftime("%Y-%m-%dT%H-%M-%S.") + f"{when.microsecond // 1000:03d}Z.mkv"
        with av.open(str(seg.path)) as c:
            assert [s.metadata.get("title") for s in c.streams.video] == ["main", "sub"]
            assert c.metadata["CORB_CAMERA"] == "lobby"
            assert c.metadata["CORB_START"] == when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        main, sub = packets(seg.path, 0), packets(seg.path, 1)
        assert main[0].is_keyframe and sub[0].is_keyframe
        assert sub[0].pts * sub[0].time_base <= main[0].pts * main[0].time_base
        assert min(main[0].pts * main[0].time_base, sub[0].pts * sub[0].time_base) == 0
    assert not list(segments[0].path.parent.glob(".*.part"))  # written under a temporary name, renamed


def test_every_main_frame_is_in_exactly_one_segment(feed: Path, segments: list) -> None:
    with av.open(str(feed)) as c:
        total = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    assert sum(len(packets(s.path, 0)) for s in segments) == total == 180


def test_detection_analyses_the_sub_stream_and_draws_on_the_main_one(segments: list) -> None:
    from detection.pipeline import default_detector

    detector = default_detector()
    people = segments[1]
    result = analyse(people.path, camera="lobby", detector=detector)
    assert result.extra["video"]["analysed_track"] == "sub"
    assert (result.width, result.height) == (640, 480) and result.extra["video"]["codec"] == "h264"
    assert result.peak >= 2
    picture = cv2.imdecode(np.frombuffer(result.snapshot_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] == 640  # the main stream's frame (plus a caption bar), not the 448-wide sub
    people_rows = result.mot[result.mot[:, 5] >= 0.5]
    assert people_rows[:, 1].max() > 448  # boxes in main-stream pixels
    static = analyse(segments[0].path, camera="lobby", detector=detector)
    assert static.peak == 0 and static.extra["video"]["gops_decoded"] <= 1


def test_a_sub_stream_smaller_than_the_detector_input_leaves_it_the_main_stream(segments: list) -> None:
    """A 320x180 or CIF sub-stream would be enlarged for the detector: the main stream shows it more."""
    from detection.video import VideoReader

    path = segments[1].path  # main 640x480, sub 448x336
    for sub_min, uses_sub in ((None, True), ((448, 352), True), ((449, 337), False), ((1000, 300), True)):
        with VideoReader(path, sub_min=sub_min) as reader:
            assert reader.uses_substream is uses_sub, sub_min
            assert reader.analysed.width == (448 if uses_sub else 640)
