"""scripts/camera_feed.py: scene lists and the ground truth written beside a real encoded feed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from camera_feed import make_feed, parse_scenes  # noqa: E402


def test_parse_scenes() -> None:
    assert parse_scenes("empty:2 people:1.5", repeat=2) == [("empty", 2.0), ("people", 1.5)] * 2
    for bad in ("", "crowd:3", "people", "empty:0"):
        with pytest.raises(ValueError):
            parse_scenes(bad)


def test_feed_is_encoded_as_a_camera_sends_it(tmp_path: Path) -> None:
    truth = make_feed(tmp_path / "f.mkv", [("empty", 2), ("people", 2)], size="320x240", fps=10, gop=10,
                      bitrate="300k", sub_size="160x120")
    scenes = [(s["kind"], s["start_s"], s["end_s"]) for s in truth["scenes"]]
    assert scenes == [("empty", 0, 2), ("people", 2, 4)]
    assert json.loads((tmp_path / "f.json").read_text()) == truth
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
                            "stream=codec_name,width,height:frame=key_frame", "-of", "json",
                            str(tmp_path / "f.mkv")],
                           capture_output=True, text=True, check=True)
    info = json.loads(probe.stdout)
    assert info["streams"][0] == {"codec_name": "h264", "width": 320, "height": 240}
    keys = [i for i, f in enumerate(info["frames"]) if f["key_frame"]]
    assert len(info["frames"]) == 40 and keys == [0, 10, 20, 30]  # 4 s at 10 fps, a keyframe every 10 frames
    assert (tmp_path / "f.sub.mkv").stat().st_size > 0
