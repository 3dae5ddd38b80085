"""bench/latency.py's parts that need no camera: ground truth from the RTSP server's lines and the feed's
JSON, matching appearances to segments, results and alerts, percentiles, and CPU accounting."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from bench import latency
from bench.latency import Alert, Segment, Span, match, parse_playing, percentile, played_scenes

TRUTH = {"scenes": [{"kind": kind, "start_s": a, "end_s": b} for kind, a, b in [
    ("empty", 0, 30), ("people", 30, 40), ("empty", 40, 70), ("people", 70, 80), ("empty", 80, 110)]],
         "duration_s": 110}


def test_playing_lines_give_each_play_of_the_path() -> None:
    lines = ["serving rtsp://127.0.0.1:8554/lobby", "playing /lobby 1764478800.250000",
             "playing /lobby_sub 1764478800.300000", "noise", "playing /lobby 1764478950.5"]
    assert parse_playing(lines, "/lobby") == [1764478800.25, 1764478950.5]
    assert parse_playing(lines, "/kitchen") == []


def test_scenes_are_placed_in_wall_clock_time_and_a_replay_restarts_them() -> None:
    people, empty = played_scenes(TRUTH, [1000.0], until=1110.0)
    assert people == [Span(1030, 1040), Span(1070, 1080)]
    assert empty[0] == Span(1000, 1030) and len(empty) == 3
    # The feed restarted at 1075 (the agent reconnected): the second appearance was cut, then all replay.
    people, _ = played_scenes(TRUTH, [1000.0, 1075.0], until=1185.0)
    assert people == [Span(1030, 1040), Span(1070, 1075), Span(1105, 1115), Span(1145, 1155)]


def test_segment_keys_give_their_capture_start() -> None:
    assert latency.segment_start("cameras/lobby/2026-11-30T10-15-02.123Z.mkv") == pytest.approx(
        1796033702.123)
    assert latency.segment_start("cameras/lobby/2026-11-30T10-15-02Z.mkv") == 1796033702.0
    assert latency.segment_start("cameras/lobby/clip.mkv") is None


def test_each_appearance_is_matched_to_its_first_segment_result_and_alert() -> None:
    people, empty = played_scenes(TRUTH, [1000.0], until=1110.0)
    segments = [
        Segment(Span(1010, 1030), arrived=1030.4, result_at=1031.0, peak=0),  # empty, before
        Segment(Span(1030, 1032), arrived=1032.3, result_at=1033.1, peak=4),  # the first to see them
        Segment(Span(1032, 1034), arrived=1034.3, result_at=1035.0, peak=5),
        Segment(Span(1050, 1070), arrived=1070.2, result_at=1071.0, peak=0),
        Segment(Span(1072, 1074), arrived=1074.4, result_at=1075.6, peak=3),  # a keyframe late: 2 s more
    ]
    alerts = [Alert(1033.2, Span(1030, 1032)), Alert(1035.1, Span(1032, 1034)),  # a second, same scene
              Alert(1090.0, Span(1088, 1090))]  # about an empty stretch: false
    found, false = match(people, empty, segments, alerts)
    assert [(a.segment_s, a.result_s, a.alert_s) for a in found] == [
        pytest.approx((2.3, 3.1, 3.2)), (pytest.approx(4.4), pytest.approx(5.6), None)]
    assert found[1].notes == ["missed: no alert"]
    assert false == [Alert(1090.0, Span(1088, 1090))]


def test_a_segment_that_ends_where_people_walk_in_is_not_theirs() -> None:
    """The long segment before the cut saw the previous scene's people and ends on the keyframe where the
    next people appear: it shares no frame with them, so it neither times nor alerts for them."""
    people = [Span(1000, 1010), Span(1040, 1050)]
    segments = [Segment(Span(1006, 1040.004), arrived=1040.1, result_at=1041.0, peak=3),
                Segment(Span(1040.004, 1042), arrived=1042.1, result_at=1042.3, peak=4)]
    alerts = [Alert(queued=1041.1, span=Span(1006, 1040.004)),
              Alert(queued=1042.4, span=Span(1040.004, 1042))]
    [_, second], false = match(people, [Span(1010, 1040)], segments, alerts)
    assert (second.segment_s, second.result_s, second.alert_s) == pytest.approx((2.1, 2.3, 2.4))
    assert false == []


def test_an_appearance_no_segment_saw_is_missed() -> None:
    people, empty = played_scenes(TRUTH, [0.0], until=110.0)
    found, false = match(people, empty, [Segment(Span(28, 42), 42.5, 43.0, 0)], [])
    assert [a.notes for a in found] == [["no segment saw anyone", "missed: no alert"]] * 2 and false == []
    summary = latency.summary(found)
    assert summary["alert_s"] == {"p50": None, "p95": None, "n": 0}


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [2.9, 1.2, 3.3, 2.4, 5.1, 2.2, 1.9, 2.8, 3.0, 4.4],
                                    list(np.random.default_rng(7).exponential(2.0, 37))])
def test_percentiles_match_numpys_linear_method(values: list[float]) -> None:
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_cpu_seconds_counts_the_process_tree() -> None:
    """A child that burns half a second of CPU shows up in its parent's figure while it still runs."""
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.5: pass\ntime.sleep(30)"])
    try:
        before = latency.cpu_seconds(os.getpid())
        deadline = time.monotonic() + 20
        while latency.cpu_seconds(child.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert latency.cpu_seconds(child.pid) >= 0.5
        assert latency.cpu_seconds(os.getpid()) - before >= 0.4  # the child's time is the parent's tree's
    finally:
        child.kill()
        child.wait()
