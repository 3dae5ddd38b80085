"""``python -m detection`` as a user runs it: outputs, exit codes, and a light ``import detection``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CLIP = ROOT / "tests" / "data" / "vtest-clip.mkv"


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "detection", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_json_with_snapshot_and_mot_rows(tmp_path: Path) -> None:
    snap, mot = tmp_path / "best.jpg", tmp_path / "mot.txt"
    proc = cli(str(CLIP), "--every-frame", "--json", "--snapshot", str(snap), "--mot-out", str(mot),
               "--camera", "plaza", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["camera"] == "plaza" and out["frames_decoded"] == out["frames_analysed"] == 50
    assert out["analysis_fps"] is None and 6 <= out["peak"] <= 8
    assert snap.read_bytes()[:2] == b"\xff\xd8"
    rows = [line.split(",") for line in mot.read_text().splitlines()]
    assert {int(r[0]) for r in rows} == set(range(1, 51))
    assert all(len(r) == 10 and r[1] == "-1" and r[7:] == ["-1", "-1", "-1"] for r in rows)
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_human_summary_at_a_chosen_rate() -> None:
    proc = cli(str(CLIP), "--fps", "1")
    assert proc.returncode == 0, proc.stderr
    assert "analysed 8 (1 fps)" in proc.stdout and "people: peak" in proc.stdout


@pytest.mark.parametrize("content, message", [
    (b"", "empty object"),
    (b"RIFF" + bytes(4000), "not a video"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(content)
    proc = cli(str(bad), timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "bad.mkv" in errors[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["missing.mkv"], "not found"),
    ([str(CLIP), "--model", "no-such-model"], "no-such-model"),
    ([str(CLIP), "--fps", "0"], "--fps"),
    ([str(CLIP), "--every-frame", "--fps", "3"], "not allowed"),
    ([str(CLIP), "--zone", "100,100 300,100 300,400"], "--zone: corner 100,100 is outside the frame"),
    ([str(CLIP), "--zone", "0.1,0.1 0.9,0.9"], "--zone: a zone needs at least 3 corners"),
])
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    proc = cli(*args, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_importing_detection_and_its_handler_stays_light() -> None:
    heavy = "('cv2', 'av', 'numpy', 'PIL', 'ai_edge_litert', 'flask', 'sqlalchemy')"
    code = f"import sys, detection, detection.handler; print(sorted(m for m in {heavy} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_the_detection_path_never_imports_opencv() -> None:
    """OpenCV is a development tool only (it would not fit the detection Lambda beside PyAV): the handler,
    the pipeline, the snapshot, the motion gate and the detectors import and run without it."""
    code = f"""
import importlib.abc, json, sys

class NoOpenCV(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "cv2" or name.startswith("cv2."):
            raise ImportError("OpenCV is not part of the product")

sys.meta_path.insert(0, NoOpenCV())
import detection.handler, detection.pipeline, detection.annotate, detection.motion, detection.detectors
from detection.pipeline import analyse
r = analyse({str(CLIP)!r}, camera="no-opencv")
print(json.dumps({{"cv2": sorted(m for m in sys.modules if m == "cv2" or m.startswith("cv2.")),
                  "snapshot": len(r.snapshot_jpeg), "peak": r.peak}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["cv2"] == [] and out["snapshot"] > 0 and out["peak"] > 0
