"""Person detectors: the :class:`Detector` interface, NMS, letterbox helpers and :func:`load_detector`.

Importing this package is cheap (numpy + Pillow); LiteRT and TensorFlow load only inside ``load_detector``.
"""

from cloud.adapters import open_detector as load_detector
from detection.detectors.base import (
    DEFAULT_MODEL,
    MODELS_DIR,
    Detector,
    Letterbox,
    box_iou,
    empty_detections,
    letterbox,
    letterbox_params,
    nms,
    resolve_model,
    to_bgr,
)

__all__ = [
    "DEFAULT_MODEL",
    "MODELS_DIR",
    "Detector",
    "Letterbox",
    "box_iou",
    "empty_detections",
    "letterbox",
    "letterbox_params",
    "load_detector",
    "nms",
    "resolve_model",
    "to_bgr",
]
