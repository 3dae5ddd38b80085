"""The agent's person check on a real feed: a lighting change is neither cut nor analysed, people are.

The same feed is split as the agent would, with and without the check (``agent.offline.split`` shares the
live agent's policy and check), and the segments it sends for analysis go through the real detection
function's pipeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.offline import Segment, split
from agent.people import PersonCheck, load_person_check
from agent.segmenter import SegmentPolicy, SegmentSettings
from detection.pipeline import analyse
from scripts.camera_feed import light_clip, make_feed

DAY0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
# Still, the light dims and comes back (no one there), still, people walk in, still again.
SCENES = [("empty", 8.0), ("light", 16.0), ("empty", 8.0), ("people", 8.0), ("empty", 8.0)]
LIGHT, PEOPLE = (8.0, 24.0), (32.0, 40.0)
SETTINGS = SegmentSettings(segment_s=12, quick_s=4, recheck_s=300)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("feed")
    out = work / "feed.mkv"
    make_feed(out, SCENES, size="640x480", fps=10, gop=20, bitrate="600k", sub_size="448x336",
              sub_bitrate="150k", sources={"light": light_clip(work / "light.mkv", 16.0)})
    return out


@pytest.fixture(scope="module")
def check() -> PersonCheck:
    loaded = load_person_check()
    assert loaded is not None
    return loaded


def cut(feed: Path, out: Path, people: PersonCheck | None) -> list[Segment]:
    return split(feed, feed.with_suffix(".sub.mkv"), SegmentPolicy(SETTINGS), out, camera="lobby", start=DAY0,
                 people=people)


def overlaps(seg: Segment, span: tuple[float, float]) -> bool:
    return seg.start_s < span[1] and seg.end_s > span[0]


def test_the_lighting_change_is_analysed_on_change_alone_but_not_with_the_check(
        feed: Path, check: PersonCheck, tmp_path: Path) -> None:
    plain = cut(feed, tmp_path / "plain", None)
    checked = cut(feed, tmp_path / "checked", check)
    # Change alone: the dimming cuts a quick segment and the segments it spans are analysed.
    assert any(s.start_s == pytest.approx(10.0) for s in plain)
    assert any(overlaps(s, LIGHT) and not s.quiet for s in plain[1:])
    # With the check: no cut for the light, and every segment that only holds it (or nobody) is quiet.
    lit = [s for s in checked[1:] if overlaps(s, LIGHT) and not overlaps(s, PEOPLE)
           and s.end_s < PEOPLE[0]]
    assert lit and all(s.quiet for s in lit)
    assert not any(LIGHT[0] < s.start_s < LIGHT[1] and s.start_s % SETTINGS.segment_s for s in checked)
    assert check.calls >= 5  # it looked at the changed keyframes


def test_people_are_cut_at_once_and_analysed_with_the_check(feed: Path, check: PersonCheck,
                                                             tmp_path: Path) -> None:
    segments = cut(feed, tmp_path / "checked", check)
    starts = [s.start_s for s in segments]
    assert PEOPLE[0] in starts and PEOPLE[0] + 2 in starts  # the appearance and the quick one after it
    sent = [s for s in segments if not s.quiet]
    with_people = [s for s in sent if overlaps(s, PEOPLE)]
    assert with_people and not any(s.quiet for s in segments if overlaps(s, PEOPLE))
    peaks = [analyse(s.path, camera="lobby").peak for s in with_people]
    assert max(peaks) >= 2
    # Nobody in the analysed segments before the people: detection agrees with what was left unanalysed.
    for s in segments:
        if s.quiet:
            assert analyse(s.path, camera="lobby").peak == 0, s.path.name


def test_the_quiet_stretch_before_an_appearance_is_one_object_and_only_its_last_gop_is_analysed(
        feed: Path, check: PersonCheck, tmp_path: Path) -> None:
    import av

    from agent.offline import segment_name

    segments = cut(feed, tmp_path / "checked", check)
    # Quiet from the first segment's end through the light change: one quiet segment (up to
    # quiet_segment_s), not one per segment_s; the GOP before the people is a segment of its own.
    quiet = [s for s in segments if s.quiet]
    assert len(quiet) == 1 and quiet[0].start_s == SETTINGS.segment_s and quiet[0].end_s == PEOPLE[0] - 2
    (gop,) = [s for s in segments if s.start_s == PEOPLE[0] - 2]
    assert not gop.quiet and gop.end_s == PEOPLE[0]
    with av.open(str(gop.path)) as c:
        start = c.metadata["CORB_START"]
        assert gop.path.name == segment_name(gop.start)
        assert start.startswith(gop.start.strftime("%Y-%m-%dT%H:%M:%S"))
        firsts = {}
        for p in c.demux(*c.streams.video):
            if p.pts is not None:
                firsts.setdefault(p.stream.index, (float(p.pts * p.time_base), p.is_keyframe))
        assert len(firsts) == 2 and min(t for t, _ in firsts.values()) == 0.0
        assert all(key for _, key in firsts.values())  # each track starts at a keyframe
    with av.open(str(gop.path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 20  # the main GOP: 2 s at 10 fps
