"""The detector interface, shared geometry helpers and where models are found.

Everything here is cheap to import: numpy only (no OpenCV: see README, "Library choices"). The
backends import this module, never the other way round: ``cloud.adapters.open_detector`` (exported here as
``load_detector``) picks one, and the inference runtimes (LiteRT, TensorFlow) load only then, so the webhook's
cold start never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
"""Where the shipped model files live (``detection/models``)."""

DEFAULT_MODEL = "nanodet-m-448x352"
"""Short name of the shipped model used when ``load_detector(None)``.

448x352 holds a 768x576 (4:3) camera frame at scale 0.583 with 16 rows of padding: on PETS09-S2L1 it beats
the 416x416 letterbox (scale 0.542) in AP50 (0.921 vs 0.913) at about 10% less compute; larger inputs gain
no AP for their cost (see detection/models/PROVENANCE.md).
"""

DEFAULT_INPUT_SIZE = (448, 352)
"""The default model's input (w, h), known without loading it (which track to analyse depends on it)."""


LOWER_HEIGHTS = {"nanodet-m-448x352": (256,)}
"""Lower input heights a shipped model also runs at: a 16:9 frame (448 x 252 at the model's scale) goes
through 448 x 256, the same pixels with 96 fewer rows of padding (about 29% less CPU per detection)."""


@runtime_checkable
class Detector(Protocol):
    """A person detector: one BGR frame in, person boxes out."""

    name: str
    """Human-readable identity, e.g. ``"nanodet-m-416@litert"``."""
    input_size: tuple[int, int]
    """The network's input size as (width, height)."""

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Return persons only, after NMS: float32 (N, 5) rows of x1, y1, x2, y2, score in frame pixels."""
        ...


def empty_detections() -> np.ndarray:
    """A (0, 5) float32 array, the result for a frame without people."""
    return np.zeros((0, 5), dtype=np.float32)


def to_bgr(frame: np.ndarray) -> np.ndarray:
    """Return a 3-channel uint8 BGR view of a grayscale (H, W), (H, W, 1), BGR or BGRA frame."""
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return np.repeat(frame.reshape(frame.shape[0], frame.shape[1], 1), 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(
        f"unsupported frame shape {frame.shape}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
    )


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed into the network input: ``net = frame * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: int
    pad_y: int

    def to_frame(self, boxes: np.ndarray, frame_width: int, frame_height: int) -> np.ndarray:
        """Map (N, >=4) x1, y1, x2, y2 boxes from network to frame pixels, clipped to the frame."""
        out = boxes.astype(np.float32, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, frame_width)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, frame_height)
        return out


def letterbox_params(frame_size: tuple[int, int], input_size: tuple[int, int]) -> Letterbox:
    """Scale that fits ``frame_size`` (w, h) into ``input_size`` (w, h) keeping aspect; pad right/bottom.

    Padding goes to the right and bottom only so the inverse mapping needs no offset; when the aspect ratios
    match (a 4:3 model on 4:3 video) there is no padding at all.
    """
    fw, fh = frame_size
    iw, ih = input_size
    if fw <= 0 or fh <= 0:
        raise ValueError(f"empty frame {frame_size}")
    return Letterbox(scale=min(iw / fw, ih / fh), pad_x=0, pad_y=0)


def letterbox(
    frame_bgr: np.ndarray, input_size: tuple[int, int], pad_value: int = 0
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``frame_bgr`` into an ``input_size`` (w, h) canvas keeping aspect ratio.

    Returns the canvas (uint8, H x W x 3) and the :class:`Letterbox` to map boxes back. The resize is OpenCV's
    INTER_LINEAR, which the model was measured with (within one grey level), run by LiteRT
    (:mod:`detection.detectors.resize`): Pillow's ``resize`` would antialias instead, which costs count
    accuracy on PETS (count error 0.420 -> 0.452).
    """
    fh, fw = frame_bgr.shape[:2]
    iw, ih = input_size
    lb = letterbox_params((fw, fh), input_size)
    nw = min(iw, max(1, round(fw * lb.scale)))
    nh = min(ih, max(1, round(fh * lb.scale)))
    resized = frame_bgr
    if (nw, nh) != (fw, fh):
        from detection.detectors.resize import resize_linear  # LiteRT: only where a detector runs

        resized = resize_linear(frame_bgr, (nw, nh))
    if (nw, nh) == (iw, ih):
        return np.ascontiguousarray(resized), lb
    canvas = np.full((ih, iw, 3), pad_value, dtype=np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, lb


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1, y1, x2, y2 box against (N, 4) boxes."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns indices of kept boxes, highest score first.

    ``boxes`` is (N, 4) x1, y1, x2, y2. A box is dropped when its IoU with a kept, higher-scoring box is
    strictly greater than ``iou``; equal scores keep their input order. The IoU is computed as OpenCV's
    ``cv2.dnn.NMSBoxes`` computes it (which this replaces, bit for bit: tests/detection/test_detectors.py
    compares them where OpenCV is installed): the intersection is empty unless both its sides are positive,
    two empty boxes overlap fully, and the comparison is in float32. Up to ``_NMS_MATRIX`` candidates (a
    frame has ~150 at the pipeline's 0.1 threshold), the overlaps of all pairs come from one set of vectorised
    operations and the greedy pass visits only the kept boxes, as bitsets (one Python int per box): 0.48 ms
    a frame on vtest where a numpy step per kept box (~46 a frame) took 0.75. More candidates (a crowd) take
    that per-kept-box path, whose memory stays linear.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    x1, y1, right, bottom = boxes[order].T
    w, h = right - x1, bottom - y1
    sides = np.stack([x1, y1, x1 + w, y1 + h, w * h])  # in score order
    threshold = np.float32(iou)
    if len(order) > _NMS_MATRIX:
        keep = []
        rest = np.arange(len(order))
        while rest.size:
            keep.append(rest[0])
            rest = rest[1:][_overlap(sides[:, rest[:1], None], sides[:, rest[1:]])[0] <= threshold]
        return order[np.asarray(keep, dtype=np.int64)]
    # Row i: the boxes that box i (in score order) drops, bit j for box j; NaN overlaps drop, as above.
    drops = np.packbits(~(_overlap(sides[:, :, None], sides) <= threshold), axis=1, bitorder="little")
    alive = (1 << len(order)) - 1
    kept = []
    while alive:  # the best box still alive is kept and drops what it overlaps (and itself from the set)
        i = (alive & -alive).bit_length() - 1
        kept.append(i)
        alive &= ~(int.from_bytes(drops[i].tobytes(), "little") | 1 << i)
    return order[np.asarray(kept, dtype=np.int64)]


_NMS_MATRIX = 512
"""Most candidates NMS compares all pairs of at once: 512 x 512 float64 pairs are 2 MB a temporary."""


def _overlap(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float32 IoU of boxes ``rows`` against boxes ``cols`` (each x1, y1, x2, y2, area on the first axis,
    broadcasting), as ``cv2.dnn.NMSBoxes`` computes it: 1 - Jaccard distance in float64, an intersection
    only where both its sides are positive, two empty boxes overlapping fully."""
    x1, y1, x2, y2, area = rows
    iw = np.minimum(x2, cols[2])
    iw -= np.maximum(x1, cols[0])
    ih = np.minimum(y2, cols[3])
    ih -= np.maximum(y1, cols[1])
    inter = np.maximum(iw, 0.0, out=iw)  # 0 unless both sides are positive (finite coordinates)
    inter *= np.maximum(ih, 0.0, out=ih)
    union = area + cols[4]
    empty = union <= np.finfo(np.float64).eps
    union -= inter
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.subtract(1.0, np.divide(inter, union, out=inter), out=inter)
    distance[empty] = 0.0
    return np.float32(1.0) - distance.astype(np.float32)


def resolve_model(model: str | Path | None) -> Path:
    """Turn ``None``, a short shipped name or a path into an existing model path, or raise clearly."""
    if model is None:
        model = DEFAULT_MODEL
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if not any(sep in text for sep in ("/", "\\")) and not path.suffix:
        shipped = MODELS_DIR / f"{text}.tflite"
        if shipped.exists():
            return shipped
        names = sorted(p.stem for p in MODELS_DIR.glob("*.tflite"))
        shipped_names = ", ".join(names) or "none"
        raise FileNotFoundError(f"no shipped model named {text!r}; shipped models: {shipped_names} (other "
                                "NanoDet-m input sizes: python scripts/build_model.py --size WxH)")
    raise FileNotFoundError(f"model not found: {path}")
