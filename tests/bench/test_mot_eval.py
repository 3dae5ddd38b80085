"""The MOTChallenge scorer on hand-built cases whose figures can be worked out on paper."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "mot_eval.py"
_spec = importlib.util.spec_from_file_location("mot_eval_under_test", _PATH)
assert _spec and _spec.loader
mot_eval = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mot_eval  # dataclasses need the module registered
_spec.loader.exec_module(mot_eval)

FrameGT, FrameDet = mot_eval.FrameGT, mot_eval.FrameDet


def gt_frame(*boxes: tuple[float, float, float, float], ignore: tuple[bool, ...] = ()) -> FrameGT:
    arr = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    flags = np.array(ignore or (False,) * len(arr), dtype=bool)
    return FrameGT(arr, flags)


def det_frame(*rows: tuple[float, float, float, float, float]) -> FrameDet:
    arr = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return FrameDet(arr[:, :4], arr[:, 4])


A = (0.0, 0.0, 10.0, 20.0)
B = (100.0, 0.0, 110.0, 20.0)
C = (200.0, 0.0, 210.0, 20.0)


def test_perfect_detections_score_one() -> None:
    gt = {1: gt_frame(A, B), 2: gt_frame(C)}
    det = {1: det_frame((*A, 0.9), (*B, 0.8)), 2: det_frame((*C, 0.7))}
    r = mot_eval.evaluate(gt, det)
    assert r.ap50 == pytest.approx(1.0)
    assert (r.recall, r.precision, r.f1, r.best_f1) == (1.0, 1.0, 1.0, 1.0)
    assert (r.tp, r.fp, r.ignored, r.gt_boxes, r.frames) == (3, 0, 0, 3, 2)
    assert r.count_error == 0.0


def test_no_detections_scores_zero_and_counts_every_gt_frame() -> None:
    gt = {1: gt_frame(A, B), 2: gt_frame(C)}
    r = mot_eval.evaluate(gt, {})
    assert (r.ap50, r.recall, r.precision, r.best_f1) == (0.0, 0.0, 0.0, 0.0)
    assert r.count_error == pytest.approx((2 + 1) / 2)


def test_duplicate_detection_is_a_false_positive() -> None:
    gt = {1: gt_frame(A)}
    det = {1: det_frame((*A, 0.9), (0.0, 0.0, 10.0, 19.0, 0.8))}
    labels = mot_eval.match_frame(gt[1], det[1])
    assert labels.tolist() == [mot_eval.TP, mot_eval.FP]
    r = mot_eval.evaluate(gt, det)
    assert (r.tp, r.fp) == (1, 1)
    assert r.precision == 0.5
    assert r.ap50 == pytest.approx(1.0)  # the duplicate ranks below the hit: full recall at precision 1
    assert r.count_error == 1.0


def test_ignore_region_counts_neither_way() -> None:
    gt = {1: gt_frame(A, B, ignore=(False, True))}
    on_ignore = det_frame((*A, 0.9), (*B, 0.95))
    r = mot_eval.evaluate(gt, {1: on_ignore})
    assert (r.tp, r.fp, r.ignored, r.gt_boxes) == (1, 0, 1, 1)
    assert (r.recall, r.precision, r.ap50) == (1.0, 1.0, 1.0)
    # The distant person on the ignore region is counted, unless the count is ignore-aware.
    assert (r.count_error, r.count_error_ignore_aware) == (1.0, 0.0)
    # Missing the ignore box is no miss either.
    r2 = mot_eval.evaluate(gt, {1: det_frame((*A, 0.9))})
    assert (r2.recall, r2.precision, r2.count_error) == (1.0, 1.0, 0.0)


def test_ignore_region_absorbs_several_detections_but_a_real_box_wins() -> None:
    gt = {1: gt_frame(A, A, ignore=(True, False))}  # a real person standing on an ignore region
    det = {1: det_frame((*A, 0.9), (*A, 0.8), (*C, 0.7))}
    labels = mot_eval.match_frame(gt[1], det[1])
    assert labels.tolist() == [mot_eval.TP, mot_eval.IGNORED, mot_eval.FP]


def test_greedy_matching_goes_by_score_not_by_iou() -> None:
    gt = {1: gt_frame(A)}
    # The higher-scored box overlaps less (IoU 0.75) but is matched first; the exact box is then a duplicate.
    det = {1: det_frame((0.0, 0.0, 10.0, 15.0, 0.9), (*A, 0.5))}
    assert mot_eval.match_frame(gt[1], det[1]).tolist() == [mot_eval.TP, mot_eval.FP]


def test_each_detection_takes_the_best_free_gt_box() -> None:
    gt = {1: gt_frame((0.0, 0.0, 10.0, 20.0), (2.0, 0.0, 12.0, 20.0))}
    det = {1: det_frame((2.0, 0.0, 12.0, 20.0, 0.9), (0.0, 0.0, 10.0, 20.0, 0.8))}
    assert mot_eval.match_frame(gt[1], det[1]).tolist() == [mot_eval.TP, mot_eval.TP]


def test_iou_below_half_is_no_match() -> None:
    gt = {1: gt_frame(A)}
    det = {1: det_frame((0.0, 0.0, 10.0, 9.0, 0.9))}  # IoU 0.45
    r = mot_eval.evaluate(gt, det)
    assert (r.tp, r.fp) == (0, 1)


def test_ap_all_point_interpolation_on_a_known_curve() -> None:
    # 3 GT boxes; ranked detections TP, FP, TP, FP. PR points: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2).
    # Envelope: precision 1 up to recall 1/3, 2/3 up to recall 2/3, nothing beyond: AP = 1/3 + 2/9 = 5/9.
    gt = {1: gt_frame(A, B, C)}
    far = (500.0, 500.0, 510.0, 520.0)
    det = {1: det_frame((*A, 0.9), (*far, 0.8), (*B, 0.7), (600.0, 500.0, 610.0, 520.0, 0.6))}
    r = mot_eval.evaluate(gt, det)
    assert r.ap50 == pytest.approx(5 / 9)
    assert r.best_f1 == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert r.best_f1_threshold == pytest.approx(0.7)
    assert mot_eval.average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 0.75])) == pytest.approx(
        0.5 * 1.0 + 0.5 * 0.75
    )


def test_threshold_splits_recall_precision_and_counts() -> None:
    gt = {1: gt_frame(A, B), 2: gt_frame(C)}
    det = {1: det_frame((*A, 0.9), (*B, 0.3), (*C, 0.6)), 2: det_frame()}
    r = mot_eval.evaluate(gt, det, threshold=0.5)
    assert (r.tp, r.fp) == (1, 1)  # A hit; C in frame 1 is a false positive; B is below threshold
    assert r.recall == pytest.approx(1 / 3)
    assert r.precision == pytest.approx(1 / 2)
    assert r.count_error == pytest.approx((abs(2 - 2) + abs(0 - 1)) / 2)
    counts = mot_eval.count_error_by_threshold(gt, det, [0.0, 0.95])
    assert counts == {0.0: pytest.approx((1 + 1) / 2), 0.95: pytest.approx((2 + 1) / 2)}


def test_detections_on_frames_without_gt_are_false_positives() -> None:
    gt = {1: gt_frame(A)}
    det = {1: det_frame((*A, 0.9)), 7: det_frame((*A, 0.95))}
    r = mot_eval.evaluate(gt, det)
    assert (r.tp, r.fp, r.frames) == (1, 1, 1)
    assert r.ap50 == pytest.approx(0.5)  # the FP ranks first: precision 1/2 at full recall


def test_equal_scores_form_one_operating_point() -> None:
    gt = {1: gt_frame(A)}
    det = {1: det_frame((*C, 0.5), (*A, 0.5))}
    r = mot_eval.evaluate(gt, det)
    assert r.ap50 == pytest.approx(0.5)  # not 1.0 or 0.5 depending on input order
    det_rev = {1: det_frame((*A, 0.5), (*C, 0.5))}
    assert mot_eval.evaluate(gt, det_rev).ap50 == pytest.approx(0.5)


def test_files_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt_file = tmp_path / "gt.txt"
    det_file = tmp_path / "det.txt"
    gt_file.write_text("1,1,0,0,10,20,1,-1,-1,0\n1,2,100,0,10,20,0,-1,-1,0\n2,1,200,0,10,20,1,-1,-1,0\n")
    rows = mot_eval.format_mot_rows(1, np.array([[0, 0, 10, 20, 0.9], [100, 0, 110, 20, 0.8]]))
    rows += mot_eval.format_mot_rows(2, np.array([[200, 0, 210, 20, 0.4]]))
    det_file.write_text("\n".join(rows) + "\n")
    assert rows[0] == "1,-1,0.00,0.00,10.00,20.00,0.90000,-1,-1,-1"

    gt = mot_eval.load_gt(gt_file)
    assert gt[1].boxes.tolist() == [[0, 0, 10, 20], [100, 0, 110, 20]]
    assert gt[1].ignore.tolist() == [False, True]

    assert mot_eval.main([str(gt_file), str(det_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ap50"] == pytest.approx(1.0)
    assert (out["tp"], out["fp"], out["ignored"], out["gt_boxes"]) == (1, 0, 1, 2)
    assert out["recall"] == pytest.approx(0.5)  # frame 2's detection is below the 0.5 threshold
    assert mot_eval.main([str(gt_file), str(det_file), "--threshold", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "AP50 1.000" in text and "recall 1.000" in text


def test_malformed_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="columns"):
        mot_eval.load_det(bad)
