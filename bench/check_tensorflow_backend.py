"""Check the TensorFlow backend end to end on a real SavedModel with the Object Detection API signature.

The project's CI does not install TensorFlow, so this check is a script, run by hand in an environment
that has it (``pip install -r requirements.txt -r requirements-tensorflow.txt``)::

    python scripts/build_model.py --saved-model /tmp/nanodet-sm    # nanodet-m-416.tflite + its SavedModel
    python bench/check_tensorflow_backend.py --nanodet-saved-model /tmp/nanodet-sm \\
        [--video vtest.avi --gt pets09-s2l1-gt.txt --frames 795]

It wraps the NanoDet-m SavedModel into two TF2 Object Detection API-style SavedModels (``serving_default``:
uint8 RGB ``input_tensor`` in; ``detection_boxes`` normalised ymin, xmin, ymax, xmax, ``detection_classes``
with person = 1, ``detection_scores``, ``num_detections`` out; decoding and NMS in TensorFlow): one with a
fixed 416x416 input (the backend letterboxes, as LiteRT does) and one with a dynamic input (the model
resizes). It then loads both through ``load_detector(directory)`` and compares them with the shipped LiteRT
model on the test frames in ``tests/data`` and, given a video and GT, over its frames with
``bench/mot_eval.py``. Exit status 0 when the fixed-size model reproduces the LiteRT boxes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.mot_eval import FrameDet, evaluate, iou_matrix, load_gt  # noqa: E402
from detection.detectors import load_detector  # noqa: E402
from detection.detectors.nanodet import MEAN_BGR, STD_BGR, STRIDES, cell_centers  # noqa: E402
from detection.detectors.tensorflow_od import import_tensorflow  # noqa: E402

NET = 416


def export_od_model(nanodet_saved_model: Path, out_dir: Path, *, fixed: bool) -> Path:
    """Write an Object Detection API-style SavedModel that runs NanoDet-m and decodes it in TensorFlow."""
    tf = import_tensorflow()
    inner = tf.saved_model.load(str(nanodet_saved_model))
    fn = inner.signatures["serving_default"]
    outputs = fn.structured_outputs
    # Pair outputs with strides by cell count, as the LiteRT backend does.
    levels = []
    for stride in STRIDES:
        cells = (NET // stride) ** 2
        score = next(k for k, v in outputs.items() if v.shape[1] == cells and v.shape[2] == 80)
        dist = next(k for k, v in outputs.items() if v.shape[1] == cells and v.shape[2] != 80)
        levels.append((stride, score, dist, cell_centers(NET, NET, stride)))
    side = NET if fixed else None

    class ODModel(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec([1, side, side, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor: tf.Tensor) -> dict[str, tf.Tensor]:
            img = tf.cast(input_tensor, tf.float32)[..., ::-1]  # RGB -> BGR, as NanoDet was trained
            if not fixed:
                img = tf.image.resize(img, (NET, NET), method="bilinear")
            x = tf.transpose((img - MEAN_BGR) / STD_BGR, [0, 3, 1, 2])
            out = self.inner.signatures["serving_default"](input_1=x)
            all_boxes, all_scores = [], []
            for stride, score_key, dist_key, centers in levels:
                logits = tf.reshape(out[dist_key][0], [-1, 4, out[dist_key].shape[2] // 4])
                bins = tf.range(logits.shape[2], dtype=tf.float32)
                ltrb = tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * bins, axis=-1) * stride
                c = tf.constant(centers)
                xyxy = tf.concat([c - ltrb[:, :2], c + ltrb[:, 2:]], axis=1) / NET
                all_boxes.append(tf.gather(xyxy, [1, 0, 3, 2], axis=1))  # -> ymin, xmin, ymax, xmax
                all_scores.append(out[score_key][0])
            boxes = tf.concat(all_boxes, axis=0)[tf.newaxis, :, tf.newaxis, :]
            scores = tf.concat(all_scores, axis=0)[tf.newaxis]
            nmsed = tf.image.combined_non_max_suppression(
                boxes,
                scores,
                max_output_size_per_class=100,
                max_total_size=100,
                iou_threshold=0.6,
                score_threshold=0.05,
                clip_boxes=True,
            )
            return {
                "detection_boxes": nmsed.nmsed_boxes,
                "detection_scores": nmsed.nmsed_scores,
                "detection_classes": nmsed.nmsed_classes + 1.0,  # COCO label map: person = 1
                "num_detections": tf.cast(nmsed.valid_detections, tf.float32),
            }

    module = ODModel()
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.serve})
    return out_dir


def compare(a: np.ndarray, b: np.ndarray, min_score: float) -> tuple[int, int, int, float, float]:
    """Match boxes >= min_score of a and b at IoU >= 0.5.

    Returns (len a, len b, matched, min IoU, max abs score difference).
    """
    a, b = a[a[:, 4] >= min_score], b[b[:, 4] >= min_score]
    if not len(a) or not len(b):
        return len(a), len(b), 0, 0.0, 0.0
    ious = iou_matrix(a[:, :4], b[:, :4])
    matched, worst_iou, worst_score = 0, 1.0, 0.0
    used: set[int] = set()
    for i in range(len(a)):
        j = int(np.argmax(np.where([k in used for k in range(len(b))], -1, ious[i])))
        if ious[i, j] >= 0.5:
            used.add(j)
            matched += 1
            worst_iou = min(worst_iou, float(ious[i, j]))
            worst_score = max(worst_score, abs(float(a[i, 4] - b[j, 4])))
    return len(a), len(b), matched, worst_iou, worst_score


def run_video(detector, video: Path, frames: int) -> tuple[dict[int, FrameDet], float]:
    cap = cv2.VideoCapture(str(video))
    dets: dict[int, FrameDet] = {}
    ms = []
    ok, frame = cap.read()
    if ok:
        detector.detect(frame)  # warm-up
    index = 0
    while ok and index < frames:
        t0 = time.perf_counter()
        d = detector.detect(frame)
        ms.append((time.perf_counter() - t0) * 1000)
        index += 1
        dets[index] = FrameDet(d[:, :4].astype(np.float64), d[:, 4].astype(np.float64))
        ok, frame = cap.read()
    cap.release()
    return dets, float(np.mean(ms)) if ms else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--nanodet-saved-model", type=Path, required=True, help="from build_model --saved-model"
    )
    parser.add_argument("--work", type=Path, help="where to write the OD-style SavedModels (default: temp)")
    parser.add_argument("--video", type=Path)
    parser.add_argument("--gt", type=Path)
    parser.add_argument("--frames", type=int, default=795)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    tf = import_tensorflow()
    print(f"TensorFlow {tf.__version__}")
    work = args.work or Path(tempfile.mkdtemp(prefix="corb-tf-check-"))
    fixed_dir = export_od_model(args.nanodet_saved_model, work / "od-nanodet-416-fixed", fixed=True)
    dynamic_dir = export_od_model(args.nanodet_saved_model, work / "od-nanodet-416-dynamic", fixed=False)
    print(f"exported {fixed_dir} and {dynamic_dir}")

    lite = load_detector("nanodet-m-416", score_threshold=0.05, threads=args.threads)
    tf_fixed = load_detector(str(fixed_dir), score_threshold=0.05, threads=args.threads)
    tf_dynamic = load_detector(str(dynamic_dir), score_threshold=0.05, threads=args.threads)
    print(
        f"loaded: {lite.name} {lite.input_size}, {tf_fixed.name} {tf_fixed.input_size}, "
        f"{tf_dynamic.name} {tf_dynamic.input_size}"
    )

    ok = True
    for path in sorted((ROOT / "tests" / "data").glob("vtest-frame-*.jpg")):
        frame = cv2.imread(str(path))
        d_lite, d_fixed, d_dyn = lite.detect(frame), tf_fixed.detect(frame), tf_dynamic.detect(frame)
        for label, other in (("fixed", d_fixed), ("dynamic", d_dyn)):
            n_a, n_b, matched, worst_iou, worst_score = compare(d_lite, other, 0.3)
            print(
                f"{path.name}: LiteRT {n_a} vs TF-{label} {n_b} boxes >= 0.3, matched {matched}, "
                f"min IoU {worst_iou:.3f}, max score diff {worst_score:.4f}"
            )
            if label == "fixed":
                ok &= n_a == n_b == matched and worst_iou > 0.95 and worst_score < 0.02
        for bad in (np.zeros((2, 2, 3), np.uint8),):
            _ = tf_fixed.detect(bad)  # tiny frames must not crash

    if args.video and args.gt:
        gt = load_gt(args.gt)
        for det in (lite, tf_fixed, tf_dynamic):
            dets, ms = run_video(det, args.video, args.frames)
            sub = {f: g for f, g in gt.items() if f in dets}
            print(f"{det.name}: {ms:.1f} ms/frame over {len(dets)} frames; {evaluate(sub, dets).summary()}")
    print("TensorFlow backend check", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
