"""Score person detections against MOTChallenge ground truth.

Usage: ``python bench/mot_eval.py GT.txt DET.txt [--threshold 0.5] [--iou 0.5] [--json]``

GT rows are ``frame,id,x,y,w,h,flag,...`` (flag 0 marks an ignore region); detection rows are
``frame,-1,x,y,w,h,score,...``. Per frame, detections are matched greedily, highest score first, to the
unmatched GT box of highest IoU (>= ``iou``), each GT box at most once. A detection that matches no real box
but overlaps an ignore region with IoU >= ``iou`` counts neither as a true nor as a false positive. One
matching serves every score threshold: greedy matching in score order means the detections above any
threshold are matched exactly as if the lower ones did not exist.

Reported: recall and precision at ``threshold``; the best F1 over all thresholds and where it is; AP at the
given IoU with all-point interpolation (the PASCAL VOC 2010+ / COCO-style area under the precision
envelope); the mean absolute per-frame count error (detections >= threshold vs non-ignored GT boxes) over
all GT frames, and the same "ignore-aware" (not counting detections that matched only an ignore region:
those are real, distant people the GT chose not to annotate). Detections on frames absent from the GT
are false positives.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from detection.tracking import iou_matrix  # noqa: E402  (one IoU for the tracker and the scorer)

TP, FP, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class FrameGT:
    """Ground truth of one frame: (N, 4) x1, y1, x2, y2 boxes and which of them are ignore regions."""

    boxes: np.ndarray
    ignore: np.ndarray  # (N,) bool


@dataclass(frozen=True)
class FrameDet:
    """Detections of one frame: (N, 4) x1, y1, x2, y2 boxes and (N,) scores."""

    boxes: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class EvalResult:
    """All figures of one evaluation (see the module docstring for definitions)."""

    frames: int
    gt_boxes: int
    detections: int
    threshold: float
    tp: int
    fp: int
    ignored: int
    recall: float
    precision: float
    f1: float
    best_f1: float
    best_f1_threshold: float
    ap50: float
    count_error: float
    count_error_ignore_aware: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"AP50 {self.ap50:.3f}  recall {self.recall:.3f}  precision {self.precision:.3f}  "
            f"F1 {self.f1:.3f} @ {self.threshold:g}  "
            f"best F1 {self.best_f1:.3f} @ {self.best_f1_threshold:.3f}  "
            f"count error {self.count_error:.3f}/frame ({self.count_error_ignore_aware:.3f} ignore-aware)  "
            f"(frames {self.frames}, GT {self.gt_boxes}, det {self.detections}, "
            f"TP {self.tp}, FP {self.fp}, ignored {self.ignored})"
        )


def _xywh_to_xyxy(rows: np.ndarray) -> np.ndarray:
    out = rows[:, :4].astype(np.float64, copy=True)
    out[:, 2] += out[:, 0]
    out[:, 3] += out[:, 1]
    return out


def _read_rows(path: str | Path) -> np.ndarray:
    """Read a MOTChallenge text file as a float array (rows, columns); an empty file gives (0, 10)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines()]
    rows = [[float(v) for v in ln.split(",")] for ln in lines if ln and not ln.startswith("#")]
    if not rows:
        return np.zeros((0, 10))
    width = min(len(r) for r in rows)
    if width < 7:
        raise ValueError(f"{path}: expected at least 7 comma-separated columns, got {width}")
    return np.array([r[:width] for r in rows], dtype=np.float64)


def parse_gt(rows: np.ndarray) -> dict[int, FrameGT]:
    """Group GT rows ``frame,id,x,y,w,h,flag,...`` by frame; flag 0 marks ignore regions."""
    out: dict[int, FrameGT] = {}
    for frame in np.unique(rows[:, 0]).astype(int) if len(rows) else []:
        sel = rows[rows[:, 0] == frame]
        out[int(frame)] = FrameGT(_xywh_to_xyxy(sel[:, 2:6]), sel[:, 6] == 0)
    return out


def parse_det(rows: np.ndarray) -> dict[int, FrameDet]:
    """Group detection rows ``frame,-1,x,y,w,h,score,...`` by frame."""
    out: dict[int, FrameDet] = {}
    for frame in np.unique(rows[:, 0]).astype(int) if len(rows) else []:
        sel = rows[rows[:, 0] == frame]
        out[int(frame)] = FrameDet(_xywh_to_xyxy(sel[:, 2:6]), sel[:, 6].astype(np.float64))
    return out


def load_gt(path: str | Path) -> dict[int, FrameGT]:
    return parse_gt(_read_rows(path))


def load_det(path: str | Path) -> dict[int, FrameDet]:
    return parse_det(_read_rows(path))


def match_frame(gt: FrameGT | None, det: FrameDet, iou_threshold: float = 0.5) -> np.ndarray:
    """Label each detection of one frame TP (1), FP (0) or IGNORED (-1), in the detections' own order."""
    n = len(det.scores)
    labels = np.full(n, FP, dtype=np.int8)
    if gt is None or n == 0 or len(gt.boxes) == 0:
        return labels
    ious = iou_matrix(det.boxes, gt.boxes)
    real = ~gt.ignore
    taken = np.zeros(len(gt.boxes), dtype=bool)
    for d in np.argsort(-det.scores, kind="stable"):
        cand = np.where(real & ~taken, ious[d], -1.0)
        g = int(np.argmax(cand))
        if cand[g] >= iou_threshold:
            labels[d] = TP
            taken[g] = True
        elif gt.ignore.any() and ious[d][gt.ignore].max() >= iou_threshold:
            labels[d] = IGNORED
    return labels


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: area under the monotone precision envelope of a PR curve.

    ``recall`` and ``precision`` are cumulative values over detections sorted by descending score.
    """
    mrec = np.concatenate([[0.0], np.asarray(recall, dtype=np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, dtype=np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def evaluate(
    gt: Mapping[int, FrameGT],
    det: Mapping[int, FrameDet],
    *,
    threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> EvalResult:
    """Score ``det`` against ``gt`` (both keyed by frame number); see the module docstring."""
    scores_list, labels_list = [], []
    for frame, fd in det.items():
        scores_list.append(np.asarray(fd.scores, dtype=np.float64))
        labels_list.append(match_frame(gt.get(frame), fd, iou_threshold))
    scores = np.concatenate(scores_list) if scores_list else np.zeros(0)
    labels = np.concatenate(labels_list) if labels_list else np.zeros(0, dtype=np.int8)
    n_gt = int(sum(int((~g.ignore).sum()) for g in gt.values()))

    above = scores >= threshold
    tp = int(((labels == TP) & above).sum())
    fp = int(((labels == FP) & above).sum())
    ignored = int(((labels == IGNORED) & above).sum())
    recall = tp / n_gt if n_gt else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    counted = labels != IGNORED
    order = np.argsort(-scores[counted], kind="stable")
    s_sorted = scores[counted][order]
    is_tp = (labels[counted][order] == TP).astype(np.float64)
    ctp = np.cumsum(is_tp)
    cfp = np.cumsum(1.0 - is_tp)
    # Only the last detection of a run of equal scores is a reachable operating point.
    last = np.zeros(0, dtype=np.int64)
    if len(s_sorted):
        last = np.flatnonzero(np.append(s_sorted[1:] != s_sorted[:-1], True))
    rec_curve = ctp[last] / n_gt if n_gt else np.zeros(len(last))
    prec_curve = ctp[last] / np.maximum(ctp[last] + cfp[last], 1.0)
    ap = average_precision(rec_curve, prec_curve) if n_gt and len(last) else 0.0
    f1_curve = 2 * rec_curve * prec_curve / np.maximum(rec_curve + prec_curve, 1e-12)
    if len(f1_curve):
        best = int(np.argmax(f1_curve))
        best_f1, best_thr = float(f1_curve[best]), float(s_sorted[last[best]])
    else:
        best_f1, best_thr = 0.0, 0.0

    count_error = count_error_by_threshold(gt, det, [threshold])[float(threshold)]
    # Ignore-aware: detections >= threshold that landed on ignore regions are not counted either.
    on_ignore: dict[int, int] = {}
    for (frame, fd), lab in zip(det.items(), labels_list, strict=True):
        on_ignore[frame] = int(((lab == IGNORED) & (np.asarray(fd.scores) >= threshold)).sum())
    errs = [
        abs(
            (int((det[f].scores >= threshold).sum()) - on_ignore[f] if f in det else 0)
            - int((~g.ignore).sum())
        )
        for f, g in gt.items()
    ]
    count_error_ignore_aware = float(np.mean(errs)) if errs else 0.0
    return EvalResult(
        frames=len(gt),
        gt_boxes=n_gt,
        detections=int(len(scores)),
        threshold=float(threshold),
        tp=tp,
        fp=fp,
        ignored=ignored,
        recall=recall,
        precision=precision,
        f1=f1,
        best_f1=best_f1,
        best_f1_threshold=best_thr,
        ap50=ap,
        count_error=count_error,
        count_error_ignore_aware=count_error_ignore_aware,
    )


def count_error_by_threshold(
    gt: Mapping[int, FrameGT], det: Mapping[int, FrameDet], thresholds: Iterable[float]
) -> dict[float, float]:
    """Mean absolute per-frame count error for each score threshold (to pick the counting threshold)."""
    out = {}
    for t in thresholds:
        errs = [
            abs((int((det[f].scores >= t).sum()) if f in det else 0) - int((~g.ignore).sum()))
            for f, g in gt.items()
        ]
        out[float(t)] = float(np.mean(errs)) if errs else 0.0
    return out


def format_mot_rows(frame: int, detections: np.ndarray) -> list[str]:
    """MOTChallenge detection lines ``frame,-1,x,y,w,h,score,-1,-1,-1`` from (N, 5) x1, y1, x2, y2, score."""
    return [
        f"{frame},-1,{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.5f},-1,-1,-1"
        for x1, y1, x2, y2, s in np.asarray(detections, dtype=np.float64).reshape(-1, 5)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score MOTChallenge detections against ground truth.")
    parser.add_argument("gt", help="ground truth: frame,id,x,y,w,h,flag,... (flag 0 = ignore region)")
    parser.add_argument("det", help="detections: frame,-1,x,y,w,h,score,...")
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="score threshold for recall, precision and count error"
    )
    parser.add_argument("--iou", type=float, default=0.5, help="IoU needed for a match")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    result = evaluate(load_gt(args.gt), load_det(args.det), threshold=args.threshold, iou_threshold=args.iou)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
