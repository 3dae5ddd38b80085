"""Run a person detector over every frame of a video, write MOTChallenge lines, score them, time them.

Usage::

    python bench/detector_eval.py VIDEO [--gt GT.txt] [--model NAME_OR_PATH ...] [--threads 2]
        [--score-threshold 0.05] [--nms-iou 0.6] [--threshold 0.5] [--out DIR] [--json]
        [--sweep-nms 0.4,0.5,0.6,0.7]
    python bench/detector_eval.py VIDEO --model A --model B --timing-rounds 5 [--frames 100]

Frame ``i`` of the video (0-based) is MOT frame ``i + 1``. Detections are kept down to ``--score-threshold``
(low, so AP sees the whole precision/recall curve); recall, precision and count error are read at
``--threshold``. Timings: ``detect`` is the detector call alone, ``decode`` the video decoding, ``total`` both
(the per-frame cost of every-frame processing). With ``--sweep-nms`` the detector runs once without NMS
(IoU 1.0) and each NMS IoU is applied afterwards, which gives the same boxes as running it inside the
detector (NMS is its last step); its ``detect`` timing then excludes real NMS work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.mot_eval import (  # noqa: E402
    EvalResult,
    FrameDet,
    count_error_by_threshold,
    evaluate,
    format_mot_rows,
    load_gt,
)
from detection.detectors import load_detector, nms  # noqa: E402

COUNT_THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


@dataclass
class RunResult:
    """Detections (frame number -> (N, 5) array) and timings of one pass over a video."""

    name: str
    input_size: tuple[int, int]
    threads: int | None
    detections: dict[int, np.ndarray]
    detect_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)

    def timing(self) -> dict[str, float]:
        det = np.asarray(self.detect_ms)
        dec = np.asarray(self.decode_ms)
        return {
            "frames": int(det.size),
            "detect_ms_mean": float(det.mean()) if det.size else 0.0,
            "detect_ms_p50": float(np.median(det)) if det.size else 0.0,
            "detect_ms_p95": float(np.percentile(det, 95)) if det.size else 0.0,
            "decode_ms_mean": float(dec.mean()) if dec.size else 0.0,
            "total_ms_mean": float(det.mean() + dec.mean()) if det.size else 0.0,
        }


def run_video(
    video: str | Path,
    model: str | None,
    *,
    threads: int | None,
    score_threshold: float,
    nms_iou: float,
    max_frames: int | None = None,
) -> RunResult:
    """Decode every frame of ``video`` and run the detector on it, timing both."""
    detector = load_detector(model, score_threshold=score_threshold, nms_iou=nms_iou, threads=threads)
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {video}")
    result = RunResult(detector.name, detector.input_size, threads, {})
    warmed = False
    index = 0
    try:
        while max_frames is None or index < max_frames:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            t1 = time.perf_counter()
            if not ok:
                break
            if not warmed:  # the first invocation allocates and packs weights; keep it out of the figures
                detector.detect(frame)
                warmed = True
            t2 = time.perf_counter()
            dets = detector.detect(frame)
            t3 = time.perf_counter()
            index += 1
            result.detections[index] = dets
            result.decode_ms.append((t1 - t0) * 1000)
            result.detect_ms.append((t3 - t2) * 1000)
    finally:
        cap.release()
    return result


def apply_nms(detections: dict[int, np.ndarray], iou: float) -> dict[int, np.ndarray]:
    """Re-run NMS at ``iou`` on detections that were produced without it."""
    return {f: d[nms(d[:, :4], d[:, 4], iou)] for f, d in detections.items()}


def to_frame_dets(detections: dict[int, np.ndarray]) -> dict[int, FrameDet]:
    return {
        f: FrameDet(d[:, :4].astype(np.float64), d[:, 4].astype(np.float64)) for f, d in detections.items()
    }


def write_mot(path: Path, detections: dict[int, np.ndarray]) -> None:
    lines = [row for f in sorted(detections) for row in format_mot_rows(f, detections[f])]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def score(gt_path: Path, detections: dict[int, np.ndarray], threshold: float) -> tuple[EvalResult, dict]:
    gt = load_gt(gt_path)
    dets = to_frame_dets(detections)
    return evaluate(gt, dets, threshold=threshold), count_error_by_threshold(gt, dets, COUNT_THRESHOLDS)


def interleaved_timing(
    video: str | Path,
    models: list[str | None],
    *,
    threads: int | None,
    score_threshold: float,
    nms_iou: float,
    frames: int,
    rounds: int,
) -> dict[str, dict[str, float]]:
    """Time several models fairly on a shared, busy machine: the same in-memory frames, round-robin.

    Each round runs every model over the frames in turn, so background load hits all models alike; the
    per-frame minimum over rounds approximates the unloaded cost, the median the typical one.
    """
    cap = cv2.VideoCapture(str(video))
    images = []
    while len(images) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        images.append(frame)
    cap.release()
    detectors = [
        load_detector(m, score_threshold=score_threshold, nms_iou=nms_iou, threads=threads) for m in models
    ]
    for d in detectors:
        d.detect(images[0])
    times = np.zeros((len(detectors), rounds, len(images)))
    for r in range(rounds):
        for k, d in enumerate(detectors):
            for i, image in enumerate(images):
                t0 = time.perf_counter()
                d.detect(image)
                times[k, r, i] = (time.perf_counter() - t0) * 1000
    out = {}
    for k, d in enumerate(detectors):
        best = times[k].min(axis=0)
        out[d.name] = {
            "min_of_rounds_mean_ms": float(best.mean()),
            "median_ms": float(np.median(times[k])),
            "mean_ms": float(times[k].mean()),
            "frames": len(images),
            "rounds": rounds,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--gt", type=Path, help="MOTChallenge ground truth to score against")
    parser.add_argument(
        "--model", action="append", help="shipped name, .tflite or SavedModel dir (repeatable)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--score-threshold", type=float, default=0.05, help="lowest score kept")
    parser.add_argument("--nms-iou", type=float, default=0.6)
    parser.add_argument("--threshold", type=float, default=0.5, help="score for recall/precision/count error")
    parser.add_argument("--sweep-nms", help="comma-separated NMS IoUs to compare (runs the detector once)")
    parser.add_argument("--frames", type=int, help="stop after this many frames")
    parser.add_argument("--out", type=Path, help="directory for MOT detection files")
    parser.add_argument(
        "--timing-rounds",
        type=int,
        help="only time the models: round-robin over the first --frames frames (default 100) this many times",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    if args.timing_rounds:
        result = interleaved_timing(
            args.video,
            args.model or [None],
            threads=args.threads,
            score_threshold=args.score_threshold,
            nms_iou=args.nms_iou,
            frames=args.frames or 100,
            rounds=args.timing_rounds,
        )
        if args.json:
            print(json.dumps(result, indent=2))
        for name, t in result.items():
            if not args.json:
                print(
                    f"{name}: min-of-{t['rounds']}-rounds {t['min_of_rounds_mean_ms']:.1f} ms/frame, "
                    f"median {t['median_ms']:.1f}, mean {t['mean_ms']:.1f} "
                    f"(threads={args.threads}, score>={args.score_threshold:g}, {t['frames']} frames)"
                )
        return 0

    sweep = [float(v) for v in args.sweep_nms.split(",")] if args.sweep_nms else []
    report = []
    for model in args.model or [None]:
        run = run_video(
            args.video,
            model,
            threads=args.threads,
            score_threshold=args.score_threshold,
            nms_iou=1.0 if sweep else args.nms_iou,
            max_frames=args.frames,
        )
        timing = run.timing()
        variants = {iou: apply_nms(run.detections, iou) for iou in sweep} or {args.nms_iou: run.detections}
        for iou, dets in variants.items():
            entry: dict = {
                "model": run.name,
                "input_size": list(run.input_size),
                "threads": args.threads,
                "score_threshold": args.score_threshold,
                "nms_iou": iou,
                **timing,
            }
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                out = args.out / f"{run.name.replace('@', '_')}-nms{iou:g}.txt"
                write_mot(out, dets)
                entry["mot_file"] = str(out)
            if args.gt:
                result, counts = score(args.gt, dets, args.threshold)
                entry.update(result.to_dict())
                entry["count_error_by_threshold"] = counts
            report.append(entry)
            if not args.json:
                print(
                    f"{run.name} {run.input_size[0]}x{run.input_size[1]} threads={args.threads} nms={iou:g}: "
                    f"detect {timing['detect_ms_mean']:.1f} ms (p50 {timing['detect_ms_p50']:.1f}, "
                    f"p95 {timing['detect_ms_p95']:.1f}), decode {timing['decode_ms_mean']:.1f} ms, "
                    f"total {timing['total_ms_mean']:.1f} ms/frame over {timing['frames']} frames"
                )
                if args.gt:
                    print("  " + result.summary())
                    print(
                        "  count error by threshold: "
                        + ", ".join(f"{t:g}: {e:.3f}" for t, e in counts.items())
                    )
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
