"""What is kept of a segment: the sub-stream alone, or the part with people, stream-copied."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from detection.footage import sub_only, trim

EMPTY = Path(__file__).resolve().parent.parent / "data" / "empty-scene.mkv"  # 21 frames at 7 fps


@pytest.fixture(scope="module", params=[0, 2], ids=["no-b-frames", "b-frames"])
def segment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-s two-track segment as the camera agent writes it: main, and a 320-wide sub-stream; with or
    without B-frames (the file is then probed differently, see ``detection.video.open_video``). The main
    track's keyframes are large, as a camera's are: a probe of the file's first 64 KiB sees no sub-stream
    packet."""
    out = tmp_path_factory.mktemp("footage") / "segment.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-t", "6", "-i", str(EMPTY),
                    "-filter_complex", "[0:v]split[m][s];[s]scale=320:-2[t]", "-map", "[m]", "-map", "[t]",
                    "-c:v", "libx264", "-g", "7", "-qp:v:0", "0", "-bf", str(request.param),
                    "-metadata:s:v:0", "title=main", "-metadata:s:v:1", "title=sub", str(out)], check=True)
    return out


def _tracks(path: Path) -> list[tuple[str, object, int]]:
    """(title, declared frame rate, packets) per video track."""
    with av.open(str(path)) as c:
        counts = {s.index: 0 for s in c.streams.video}
        for p in c.demux(*c.streams.video):
            counts[p.stream.index] += bool(p.size)
        return [(s.metadata.get("title"), s.average_rate, counts[s.index]) for s in c.streams.video]


def test_the_sub_stream_copy_keeps_every_packet_and_the_declared_frame_rate(segment: Path,
                                                                           tmp_path: Path) -> None:
    kept = tmp_path / "quiet.mkv"
    assert sub_only(segment, kept)
    assert _tracks(kept) == [_tracks(segment)[1]] == [("sub", 7, 42)]


def test_the_footage_cut_keeps_the_declared_frame_rate(segment: Path, tmp_path: Path) -> None:
    part = tmp_path / "footage.mkv"
    assert trim(segment, part, 4.5, 5.0, margin_s=0.1, duration_s=6.0)
    tracks = _tracks(part)
    assert [(title, rate) for title, rate, _ in tracks] == [("main", 7), ("sub", 7)]
    assert all(0 < n < 42 for _, _, n in tracks)
