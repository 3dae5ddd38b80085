"""TensorFlow backend: any TF2 Object Detection API SavedModel as a person detector.

The model must expose the Object Detection API's ``serving_default`` signature: one image input (uint8 or
float, NHWC, RGB, batch 1) and the outputs ``detection_boxes`` (normalised ymin, xmin, ymax, xmax),
``detection_classes``, ``detection_scores`` and ``num_detections``. Persons are class 1 in the COCO label
map those models use. TensorFlow is imported only when such a model is loaded: it is an optional, large
dependency (``requirements-tensorflow.txt``) that the shipped LiteRT model does not need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from detection.detectors.base import empty_detections, letterbox, nms, to_bgr

REQUIRED_OUTPUTS = ("detection_boxes", "detection_classes", "detection_scores", "num_detections")
COCO_PERSON = 1


def import_tensorflow() -> Any:
    """Import TensorFlow or explain how to get it."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ImportError(
            "the TensorFlow backend needs TensorFlow: pip install -r requirements-tensorflow.txt "
            "(the shipped NanoDet model needs only LiteRT)"
        ) from exc
    return tf


def od_outputs_to_detections(
    boxes: np.ndarray,
    classes: np.ndarray,
    scores: np.ndarray,
    num: int,
    *,
    canvas_size: tuple[int, int],
    scale: float,
    frame_size: tuple[int, int],
    person_class: int,
    score_threshold: float,
    nms_iou: float,
) -> np.ndarray:
    """Object Detection API outputs of one image -> (N, 5) person boxes in frame pixels, after NMS.

    ``boxes`` are normalised to the ``canvas_size`` (w, h) image the model saw; that canvas holds the frame
    scaled by ``scale`` at its top-left corner.
    """
    n = int(num)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)[:n]
    classes = np.asarray(classes).reshape(-1)[:n]
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)[:n]
    keep = (np.rint(classes).astype(np.int64) == person_class) & (scores >= score_threshold)
    if not keep.any():
        return empty_detections()
    cw, ch = canvas_size
    fw, fh = frame_size
    b = boxes[keep]
    xyxy = np.stack([b[:, 1] * cw, b[:, 0] * ch, b[:, 3] * cw, b[:, 2] * ch], axis=1) / scale
    xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, fw)
    xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, fh)
    s = scores[keep]
    valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    xyxy, s = xyxy[valid], s[valid]
    order = nms(xyxy, s, nms_iou)
    out = np.empty((order.size, 5), dtype=np.float32)
    out[:, :4] = xyxy[order]
    out[:, 4] = s[order]
    return out


class TensorFlowODDetector:
    """A TF2 Object Detection API SavedModel behind the :class:`~detection.detectors.Detector` interface.

    A model with a fixed input size gets letterboxed frames; a model with a dynamic size gets the frame
    as is, and ``input_size`` is then ``(0, 0)``.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        score_threshold: float = 0.35,
        nms_iou: float = 0.6,
        threads: int | None = None,
        person_class: int = COCO_PERSON,
    ) -> None:
        self.model_dir = Path(model_dir)
        if not (self.model_dir / "saved_model.pb").exists():
            raise FileNotFoundError(f"no saved_model.pb in {self.model_dir}")
        tf = import_tensorflow()
        self._tf = tf
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.person_class = int(person_class)
        self.threads = threads
        if threads:
            try:  # only possible before TensorFlow's runtime starts; later calls keep the first setting
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass
        self._model = tf.saved_model.load(str(self.model_dir))
        signatures = getattr(self._model, "signatures", {})
        if "serving_default" not in signatures:
            raise ValueError(f"{self.model_dir} has no serving_default signature")
        self._fn = signatures["serving_default"]
        missing = [k for k in REQUIRED_OUTPUTS if k not in self._fn.structured_outputs]
        if missing:
            raise ValueError(
                f"{self.model_dir} is not an Object Detection API model: serving_default lacks {missing}"
            )
        inputs = self._fn.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"{self.model_dir}: expected one image input, got {sorted(inputs)}")
        ((self._input_name, spec),) = inputs.items()
        shape = spec.shape.as_list()
        if len(shape) != 4 or shape[3] != 3:
            raise ValueError(f"{self.model_dir}: expected an NHWC RGB image input, got shape {shape}")
        self._input_dtype = spec.dtype
        height, width = shape[1], shape[2]
        self.input_size: tuple[int, int] = (int(width), int(height)) if width and height else (0, 0)
        self.name = f"{self.model_dir.name}@tensorflow"

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Persons in ``frame_bgr`` (any size; gray, BGR or BGRA): float32 (N, 5) x1, y1, x2, y2, score."""
        frame = to_bgr(frame_bgr)
        fh, fw = frame.shape[:2]
        if self.input_size == (0, 0):
            canvas, scale = frame, 1.0
        else:
            canvas, lb = letterbox(frame, self.input_size)
            scale = lb.scale
        rgb = np.ascontiguousarray(canvas[:, :, ::-1])[np.newaxis]
        tensor = self._tf.convert_to_tensor(rgb)
        if tensor.dtype != self._input_dtype:
            tensor = self._tf.cast(tensor, self._input_dtype)
        out = self._fn(**{self._input_name: tensor})
        ch, cw = canvas.shape[:2]
        return od_outputs_to_detections(
            out["detection_boxes"].numpy()[0],
            out["detection_classes"].numpy()[0],
            out["detection_scores"].numpy()[0],
            int(np.asarray(out["num_detections"].numpy()).reshape(-1)[0]),
            canvas_size=(cw, ch),
            scale=scale,
            frame_size=(fw, fh),
            person_class=self.person_class,
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
        )

    def __repr__(self) -> str:
        return f"TensorFlowODDetector({str(self.model_dir)!r}, input_size={self.input_size})"


__all__ = ["COCO_PERSON", "TensorFlowODDetector", "import_tensorflow", "od_outputs_to_detections"]
