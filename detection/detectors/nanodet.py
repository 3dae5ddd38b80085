"""NanoDet-m person detector on LiteRT (the TFLite runtime, no TensorFlow needed).

The shipped models are NanoDet-m (COCO, 80 classes) converted from a TF.js graph model; see
``detection/models/PROVENANCE.md``. The network takes a normalised NCHW BGR image and returns, for each
stride (8, 16, 32), per-cell class scores (sigmoid already applied) and 4 x (reg_max + 1) distance logits
(a "general distribution" per box side). Decoding is done here in numpy, once per frame, for the person
class only: that keeps the hot path to one interpreter call plus a few vectorised array operations.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detection.detectors.base import Letterbox, empty_detections, letterbox, nms, to_bgr

MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
INV_STD_BGR = (1.0 / STD_BGR).astype(np.float32)
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
PERSON = 0


@dataclass(frozen=True)
class Level:
    """One output level: its stride, the interpreter's output indices and the cell centres (pixels)."""

    stride: int
    score_index: int
    dist_index: int
    centers: np.ndarray  # (cells, 2) float32 x, y of each cell centre, row-major like the network output


def cell_centers(width: int, height: int, stride: int) -> np.ndarray:
    """Centres of a stride-``stride`` grid over a ``width`` x ``height`` input, row-major, (cells, 2).

    NanoDet regresses distances from the cell centre ``(cell + 0.5) * stride``; using the cell corner
    instead shifts every box by half a stride and costs most of the AP at IoU 0.5 on small people.
    """
    cols = int(np.ceil(width / stride))
    rows = int(np.ceil(height / stride))
    xs = (np.arange(cols, dtype=np.float32) + 0.5) * stride
    ys = (np.arange(rows, dtype=np.float32) + 0.5) * stride
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def softmax_expectation(logits: np.ndarray) -> np.ndarray:
    """Expected bin index of (N, 4, bins) logits over the last axis: softmax, then sum(p * bin)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    bins = np.arange(logits.shape[-1], dtype=np.float32)
    return (e @ bins) / e.sum(axis=-1)


def decode_level(
    person_scores: np.ndarray, dists: np.ndarray, centers: np.ndarray, stride: int, score_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one level: returns (N, 4) x1, y1, x2, y2 in network pixels and the N scores.

    ``person_scores`` is (cells,), ``dists`` (cells, 4 * bins) in left, top, right, bottom order. Only cells
    whose score reaches ``score_threshold`` are decoded.
    """
    keep = np.flatnonzero(person_scores >= score_threshold)
    if keep.size == 0:
        return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    logits = dists[keep].reshape(keep.size, 4, -1)
    ltrb = softmax_expectation(logits) * stride
    c = centers[keep]
    boxes = np.concatenate([c - ltrb[:, :2], c + ltrb[:, 2:]], axis=1)
    return boxes.astype(np.float32, copy=False), person_scores[keep].astype(np.float32, copy=False)


def preprocess(
    frame_bgr: np.ndarray, input_size: tuple[int, int], out: np.ndarray | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Letterbox a BGR frame into ``input_size`` (w, h) and normalise it into a (1, 3, h, w) float32 blob.

    Works plane by plane straight into ``out`` (e.g. the interpreter's own input buffer) when given: about
    8x faster than normalising the HWC image and transposing it, which matters within a 45 ms budget.
    """
    width, height = input_size
    if out is None:
        out = np.empty((1, 3, height, width), dtype=np.float32)
    canvas, lb = letterbox(frame_bgr, input_size)
    for c in range(3):
        np.subtract(canvas[:, :, c], MEAN_BGR[c], out=out[0, c], dtype=np.float32)
        out[0, c] *= INV_STD_BGR[c]
    return out, lb


class NanoDetLiteRT:
    """NanoDet-m on the LiteRT interpreter (XNNPACK on CPU).

    Not thread-safe: one interpreter per instance; create one detector per worker thread.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.35,
        nms_iou: float = 0.6,
        threads: int | None = None,
    ) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the LiteRT backend needs `pip install ai-edge-litert`") from exc

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model not found: {self.model_path}")
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self._interpreter = Interpreter(model_path=str(self.model_path), num_threads=self.threads)
        self._interpreter.allocate_tensors()
        # One interpreter owns one set of buffers: concurrent invocations (two segments on a worker pool)
        # would overwrite each other's tensors, so calls take turns. They would only contend for the
        # same cores anyway.
        self._lock = threading.Lock()

        inputs = self._interpreter.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or int(inputs[0]["shape"][1]) != 3:
            raise ValueError(f"{self.model_path} is not a NanoDet model: expected one (1, 3, H, W) input")
        _, _, height, width = (int(v) for v in inputs[0]["shape"])
        self._input_index = int(inputs[0]["index"])
        self.input_size: tuple[int, int] = (width, height)
        self._levels = self._match_outputs(self._interpreter.get_output_details(), width, height)
        self.name = f"{self.model_path.stem}@litert"

    def _match_outputs(self, outputs: list[dict], width: int, height: int) -> list[Level]:
        """Pair score/distance outputs with strides by their cell counts (names are not meaningful)."""
        by_cells: dict[int, dict[str, int]] = {}
        for out in outputs:
            shape = [int(v) for v in out["shape"]]
            if len(shape) != 3:
                raise ValueError(f"{self.model_path} is not a NanoDet model: output shape {shape}")
            kind = "score" if shape[2] == NUM_CLASSES else "dist"
            if kind == "dist" and shape[2] % 4:
                raise ValueError(f"{self.model_path} is not a NanoDet model: output shape {shape}")
            by_cells.setdefault(shape[1], {})[kind] = int(out["index"])
        levels = []
        for stride in STRIDES:
            centers = cell_centers(width, height, stride)
            pair = by_cells.get(len(centers), {})
            if set(pair) != {"score", "dist"}:
                raise ValueError(
                    f"{self.model_path} is not a NanoDet model: no score/distance outputs with "
                    f"{len(centers)} cells for stride {stride} at {width}x{height}"
                )
            levels.append(Level(stride, pair["score"], pair["dist"], centers))
        return levels

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Persons in ``frame_bgr`` (any size; gray, BGR or BGRA): float32 (N, 5) x1, y1, x2, y2, score."""
        frame = to_bgr(frame_bgr)
        fh, fw = frame.shape[:2]
        it = self._interpreter
        # Write the blob straight into the interpreter's input buffer, and copy out only the person column
        # and the candidate cells' distances: no full-tensor copies. The buffer views must be gone before
        # the next invoke(), hence the short-lived locals.
        all_boxes, all_scores = [], []
        with self._lock:
            blob = it.tensor(self._input_index)()
            lb = preprocess(frame, self.input_size, out=blob)[1]
            del blob
            it.invoke()
            for level in self._levels:
                person = it.tensor(level.score_index)()[0, :, PERSON].copy()
                dists = it.tensor(level.dist_index)()[0]
                boxes, s = decode_level(person, dists, level.centers, level.stride, self.score_threshold)
                del dists
                all_boxes.append(boxes)
                all_scores.append(s)
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        if scores.size == 0:
            return empty_detections()
        # Clip to the frame before NMS: parts of a box in the letterbox padding are not evidence.
        boxes = lb.to_frame(boxes, fw, fh)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[valid], scores[valid]
        keep = nms(boxes, scores, self.nms_iou)
        out = np.empty((keep.size, 5), dtype=np.float32)
        out[:, :4] = boxes[keep]
        out[:, 4] = scores[keep]
        return out

    def __repr__(self) -> str:
        return (
            f"NanoDetLiteRT({str(self.model_path)!r}, input_size={self.input_size}, "
            f"score_threshold={self.score_threshold}, nms_iou={self.nms_iou}, threads={self.threads})"
        )


__all__ = ["NanoDetLiteRT", "cell_centers", "decode_level", "preprocess", "softmax_expectation"]
