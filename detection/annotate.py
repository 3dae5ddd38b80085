"""The picture worth sending: choose the best frame, draw the people, label it, fit it into an MMS.

Labels sit on a solid bar above the picture, white on black, sized to the picture so they stay legible on a
phone.
Carriers reject MMS media beyond ~600 KB (some at 1 MB; 600 KB is the safe common limit), so the JPEG
quality steps down first and only then is the picture made smaller.
"""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import numpy as np

from cloud.camera_settings import CAPTION_BAR, Zone

MMS_MAX_BYTES = 600_000
_QUALITIES = (88, 80, 70, 60, 50)
_BOX_BGR = (60, 220, 60)
_ZONE_BGR = (0, 200, 255)
_BAR_BGR = (0, 0, 0)
_TEXT_BGR = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def frame_rank(detections: np.ndarray, threshold: float) -> tuple[int, float]:
    """How good a frame is to show: most people first, then most clearly (mean score of those people)."""
    scores = np.asarray(detections, dtype=np.float32).reshape(-1, 5)[:, 4]
    sure = scores[scores >= threshold]
    return int(sure.size), float(sure.mean()) if sure.size else 0.0


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only; anything else would come out as '?' glyph soup."""
    return text.encode("ascii", "replace").decode("ascii")


def caption(camera: str | None, count: int, when: datetime | None) -> str:
    people = f"{count} {'person' if count == 1 else 'people'}"
    parts = [camera or "camera", people]
    if when is not None:
        parts.append(when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return _ascii("  |  ".join(parts))


def draw(image: np.ndarray, boxes: np.ndarray, *, camera: str | None, when: datetime | None,
         zone: Zone | None = None) -> np.ndarray:
    """A copy of ``image`` with ``boxes`` ((N, >=4) x1, y1, x2, y2) drawn and a caption bar on top; a counting
    ``zone`` is outlined, so whoever reads the count sees where it was counted."""
    h, w = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32)
    boxes = boxes.reshape(len(boxes), -1) if boxes.size else np.zeros((0, 4), dtype=np.float32)
    text = caption(camera, len(boxes), when)
    # The bar goes above the picture (it hides nobody), at a fixed fraction of its height (CAPTION_BAR: the
    # admin page's zone preview relies on it); the text fills the bar, shrunk if a long name needs it.
    bar = max(1, round(h * CAPTION_BAR))
    pad = max(1, bar // 6)
    (tw1, th1), base1 = cv2.getTextSize(text, _FONT, 1.0, 1)
    scale = min((bar - 2 * pad) / (th1 + base1), (w - 8) / max(tw1, 1))
    thickness = max(1, round(scale * 1.6))
    th = round(th1 * scale)
    out = np.empty((h + bar, w, 3), dtype=np.uint8)
    out[:bar] = _BAR_BGR
    out[bar:] = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    cv2.putText(out, text, (4, pad + th), _FONT, scale, _TEXT_BGR, thickness, cv2.LINE_AA)
    line = max(2, round(w / 400))
    if zone:
        corners = np.array([(x * w, y * h + bar) for x, y in zone], dtype=np.int32)
        cv2.polylines(out, [corners], True, _ZONE_BGR, line, cv2.LINE_AA)
    for x1, y1, x2, y2 in boxes[:, :4]:
        cv2.rectangle(out, (int(round(x1)), int(round(y1)) + bar), (int(round(x2)), int(round(y2)) + bar),
                      _BOX_BGR, line, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, max_bytes: int = MMS_MAX_BYTES) -> bytes:
    """JPEG bytes no larger than ``max_bytes``: lower quality first, then shrink by 3/4 steps."""
    if max_bytes < 2_000:
        raise ValueError(f"max_bytes={max_bytes} is too small for any useful picture")
    current = image
    while True:
        for quality in _QUALITIES:
            ok, buf = cv2.imencode(".jpg", current, [cv2.IMWRITE_JPEG_QUALITY, quality,
                                                     cv2.IMWRITE_JPEG_OPTIMIZE, 1])
            if not ok:
                raise ValueError(f"cannot encode a {current.shape} image as JPEG")
            if buf.size <= max_bytes:
                return buf.tobytes()
        h, w = current.shape[:2]
        if max(h, w) <= 64:
            return buf.tobytes()  # unreachable for sane limits; never loop for ever
        current = cv2.resize(current, (max(1, w * 3 // 4), max(1, h * 3 // 4)), interpolation=cv2.INTER_AREA)


def snapshot(image: np.ndarray, boxes: np.ndarray, *, camera: str | None, when: datetime | None,
             max_bytes: int = MMS_MAX_BYTES, zone: Zone | None = None) -> bytes:
    """The annotated JPEG of one frame, ready to send."""
    return encode_jpeg(draw(image, boxes, camera=camera, when=when, zone=zone), max_bytes)
