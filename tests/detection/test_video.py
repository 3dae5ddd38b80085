"""Decoding: real MKV/MP4/AVI, sampling by container time, limits, and every kind of bad object."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import detection.video as video
from detection.video import Limits, VideoError, VideoReader, open_video, prefetch

CLIP = Path(__file__).resolve().parent.parent / "data" / "vtest-clip.mkv"


def test_every_frame_of_the_mkv_clip_in_order_with_container_timestamps() -> None:
    reader = VideoReader(CLIP, every_frame=True)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(50))
    assert reader.frames_decoded == 50 and reader.capped is None
    assert reader.info.width == 768 and reader.info.height == 576 and reader.info.fps == pytest.approx(7.0)
    times = np.array([f.timestamp_s for f in frames])
    assert times[0] == pytest.approx(0.0)
    assert np.allclose(np.diff(times), 1 / 7, atol=2e-3)
    assert reader.duration_s == pytest.approx(50 / 7, rel=1e-3)
    assert all(f.image.shape == (576, 768, 3) and f.image.dtype == np.uint8 for f in frames)


def test_sampling_follows_container_time_and_decodes_every_frame() -> None:
    reader = VideoReader(CLIP, fps=2.0)
    frames = list(reader)
    # People walk in every GOP: each is decoded (its keyframe twice: alone, to compare, then as the GOP's
    # first frame) up to its last sampled frame; indices count every frame of the track.
    assert reader.frames_seen == 50 and reader.gops_decoded == reader.gops == 5
    assert reader.frames_decoded == 50 + 5 - 3  # 3 frames after the last sampled frame of a GOP: skipped
    assert len(frames) == 15  # 7.1 s at 2 fps
    # Each analysed frame is the first at or after 0, 0.5, 1.0, ... s: the average rate is exact.
    for k, f in enumerate(frames):
        assert k * 0.5 - 1e-3 <= f.timestamp_s < k * 0.5 + 1 / 7


def test_prefetch_yields_the_same_frames_and_stops_its_thread_early() -> None:
    direct = [(f.index, f.timestamp_s) for f in VideoReader(CLIP, fps=3.0)]
    threaded = [(f.index, f.timestamp_s) for f in prefetch(VideoReader(CLIP, fps=3.0))]
    assert threaded == direct
    it = prefetch(VideoReader(CLIP, every_frame=True), depth=2)
    assert next(it).index == 0
    it.close()  # the producer must notice and finish, not block on a full queue


def test_prefetch_reraises_the_producers_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(CLIP.read_bytes()[:3000])
    with pytest.raises(VideoError, match="no decodable frames"):
        list(prefetch(VideoReader(bad)))


@pytest.mark.parametrize("suffix, fourcc", [(".mp4", "mp4v"), (".avi", "MJPG")])
def test_mp4_and_avi(tmp_path: Path, suffix: str, fourcc: str, clip_frames, write_video) -> None:
    path = write_video(tmp_path / f"clip{suffix}", clip_frames(6), fourcc=fourcc)
    assert [f.index for f in VideoReader(path, every_frame=True)] == list(range(6))


def test_frame_and_duration_caps_stop_decoding_and_say_so() -> None:
    reader = VideoReader(CLIP, every_frame=True, limits=Limits(max_frames=10))
    assert len(list(reader)) == 10 and "frame limit" in (reader.capped or "")
    reader = VideoReader(CLIP, every_frame=True, limits=Limits(max_duration_s=1.0))
    frames = list(reader)
    assert len(frames) == 8 and frames[-1].timestamp_s <= 1.0 + 1e-6 and "duration" in (reader.capped or "")
    reader = VideoReader(CLIP, every_frame=True, limits=Limits(deadline=time.monotonic() - 1))  # no time left
    with pytest.raises(VideoError):  # not a frame decoded: nothing to analyse, and it says why not
        list(reader)
    assert reader.capped == "time limit (the function's timeout)"


def test_the_time_budget_leaves_a_reserve_for_the_snapshot_and_uploads() -> None:
    from detection.handler import time_budget

    class Context:
        def __init__(self, left_ms: int) -> None:
            self.left_ms = left_ms

        def get_remaining_time_in_millis(self) -> int:
            return self.left_ms

    now = time.monotonic()
    assert time_budget(None) is None and time_budget(object()) is None
    assert 239 <= time_budget(Context(300_000)) - now <= 241  # 300 s left: 60 s kept back
    assert 39 <= time_budget(Context(50_000)) - now <= 41  # 50 s: 10 s kept back
    assert 4.9 <= time_budget(Context(10_000)) - now <= 5.1  # 10 s: half of it, never nothing


def test_4k_frames_are_downscaled_not_rejected(tmp_path: Path, clip_frames, write_video) -> None:
    import cv2

    big = [cv2.resize(f, (3840, 2880)) for f in clip_frames(2)]
    reader = VideoReader(write_video(tmp_path / "4k.mkv", big), every_frame=True)
    frames = list(reader)
    assert reader.info.width == 3840
    assert len(frames) == 2 and frames[0].image.shape == (1440, 1920, 3)


def test_frames_over_the_pixel_limit_are_refused_before_decoding(tmp_path: Path, write_video) -> None:
    path = write_video(tmp_path / "huge.mkv", [np.zeros((2048, 2048, 3), np.uint8)], fourcc="MJPG")
    with pytest.raises(VideoError, match="huge.mkv.*exceed"):
        VideoReader(path, limits=Limits(max_pixels=1024 * 1024))


def test_grayscale_video_comes_out_bgr(tmp_path: Path, clip_frames, write_video) -> None:
    import cv2

    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in clip_frames(3)]
    frames = list(VideoReader(write_video(tmp_path / "gray.mkv", gray), every_frame=True))
    assert len(frames) == 3 and frames[0].image.shape == (576, 768, 3)


def test_one_frame_video(tmp_path: Path, clip_frames, write_video) -> None:
    reader = VideoReader(write_video(tmp_path / "one.mkv", clip_frames(1)))
    assert [f.index for f in reader] == [0]
    assert reader.duration_s == pytest.approx(1 / 7, rel=1e-3)


@pytest.mark.parametrize("every_frame", [True, False])
def test_a_truncated_video_is_an_error_not_a_shorter_success(tmp_path: Path, every_frame: bool) -> None:
    path = tmp_path / "half.mkv"
    path.write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"half.mkv: truncated: frames end at 3\.\d s of a declared 7\.1 s"):
        list(VideoReader(path, every_frame=every_frame))


def test_segments_cut_without_resetting_timestamps_are_complete(tmp_path: Path) -> None:
    """FFmpeg's segment muxer without ``-reset_timestamps`` writes each segment's end as its duration:
    a later segment starts at 2 s and "lasts" 4 s. That is not truncation."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(CLIP), "-c", "copy", "-f", "segment",
                    "-segment_time", "2", str(tmp_path / "part%02d.mkv")], check=True)
    parts = sorted(tmp_path.glob("part*.mkv"))
    assert len(parts) >= 3
    assert sum(len(list(VideoReader(p, every_frame=True))) for p in parts) == 50


@pytest.mark.parametrize("content, message", [
    (b"", "empty object"),
    (os.urandom(200_000), "not a video"),
    (CLIP.read_bytes()[:3000], "no decodable frames"),
    (b"\x1aE\xdf\xa3" + bytes(5000), "not a video|no decodable frames"),  # an EBML (MKV) header, then zeros
])
def test_bad_objects_raise_a_clear_video_error_naming_the_object(tmp_path: Path, content: bytes,
                                                                  message: str) -> None:
    path = tmp_path / "segment.mkv"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=message) as err:
        list(VideoReader(path, name="s3://b/cameras/lobby/x.mkv"))
    assert "s3://b/cameras/lobby/x.mkv" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_missing_file_and_bad_rate(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not found"):
        VideoReader(tmp_path / "nope.mkv")
    with pytest.raises(ValueError, match="fps"):
        VideoReader(CLIP, fps=0)


def _probes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The probe options of every ``av.open`` that :func:`open_video` makes from now on."""
    opened: list[dict[str, str]] = []
    real = video.av.open

    def spy(*args, **kwargs):
        opened.append(dict(kwargs.get("options") or {}))
        return real(*args, **kwargs)

    monkeypatch.setattr(video.av, "open", spy)
    return opened


def test_a_matroska_segment_is_opened_from_its_header_without_decoding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _probes(monkeypatch)
    with open_video(CLIP) as container:
        (track,) = container.streams.video
        assert (track.codec_context.width, track.codec_context.height) == (768, 576)
    assert opened and all(o.get("skip_frame") == "all" for o in opened)  # FFmpeg's probe decoded nothing
    # ... and decoding is not affected: every frame, as before
    assert len(list(VideoReader(CLIP, every_frame=True))) == 50


@pytest.mark.parametrize("kind", ["b-frames", "avi"])
def test_b_frames_or_a_container_without_presentation_times_are_probed_by_decoding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, clip_frames, write_video) -> None:
    if kind == "avi":  # AVI stores decoding order only: presentation times come from the probe's decoding
        path = write_video(tmp_path / "clip.avi", clip_frames(10))
    else:  # reordered frames (B-frames, two after each P-frame): the decoder starts from the probe's delay
        path = tmp_path / "clip.mkv"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(CLIP), "-frames:v", "10", "-c:v", "libx264",
                        "-bf", "2", "-x264-params", "b-adapt=0", str(path)], check=True)
    opened = _probes(monkeypatch)
    frames = list(VideoReader(path, every_frame=True))
    assert "skip_frame" not in opened[-1]
    assert len(frames) == 10 and frames[0].image.shape == (576, 768, 3)


def test_packet_times_are_exact() -> None:
    from fractions import Fraction

    for base in (Fraction(1, 1000), Fraction(1, 90000), Fraction(1001, 30000), Fraction(66667, 1000000)):
        for pts in (0, 1, 143, 3003, 10**10 + 7, -5):
            assert video.pts_seconds(pts, base) == float(pts * base)
