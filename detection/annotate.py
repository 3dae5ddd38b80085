"""The picture worth sending: choose the best frame, draw the people, label it, fit it into an MMS.

Labels sit on a solid bar above the picture, white on black, sized to the picture so they stay legible on a
phone.
Carriers reject MMS media beyond ~600 KB (some at 1 MB; 600 KB is the safe common limit), so the JPEG
quality steps down first and only then is the picture made smaller.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cloud.camera_settings import CAPTION_BAR, Zone

MMS_MAX_BYTES = 600_000
_QUALITIES = (88, 80, 70, 60, 50)
_BOX_RGB = (60, 220, 60)
_ZONE_RGB = (255, 200, 0)
_BAR_RGB = (0, 0, 0)
_TEXT_RGB = (255, 255, 255)
_REFERENCE_SIZE = 100  # font size the caption is measured at, then scaled to fit the bar


def frame_rank(detections: np.ndarray, threshold: float) -> tuple[int, float]:
    """How good a frame is to show: most people first, then most clearly (mean score of those people)."""
    scores = np.asarray(detections, dtype=np.float32).reshape(-1, 5)[:, 4]
    sure = scores[scores >= threshold]
    return int(sure.size), float(sure.mean()) if sure.size else 0.0


def _ascii(text: str) -> str:
    """Pillow's built-in font (Aileron) draws ASCII; anything else would come out as empty boxes."""
    return text.encode("ascii", "replace").decode("ascii")


def caption(camera: str | None, count: int, when: datetime | None) -> str:
    people = f"{count} {'person' if count == 1 else 'people'}"
    parts = [camera or "camera", people]
    if when is not None:
        parts.append(when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return _ascii("  |  ".join(parts))


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's built-in scalable font (FreeType, bundled in Pillow's wheels): no font file to ship."""
    return ImageFont.load_default(max(1, size))


def _annotated(image: np.ndarray, boxes: np.ndarray, *, camera: str | None, when: datetime | None,
               zone: Zone | None = None) -> Image.Image:
    """The annotated picture as an RGB Pillow image (see :func:`draw`)."""
    h, w = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32)
    boxes = boxes.reshape(len(boxes), -1) if boxes.size else np.zeros((0, 4), dtype=np.float32)
    text = caption(camera, len(boxes), when)
    # The bar goes above the picture (it hides nobody), at a fixed fraction of its height (CAPTION_BAR: the
    # admin page's zone preview relies on it); the text fills the bar, shrunk if a long name needs it.
    bar = max(1, round(h * CAPTION_BAR))
    pad = max(1, bar // 6)
    reference = _font(_REFERENCE_SIZE)
    ascent, descent = reference.getmetrics()
    width = reference.getlength(text)
    size = int(_REFERENCE_SIZE * min((bar - 2 * pad) / (ascent + descent), (w - 8) / max(width, 1)))
    out = np.empty((h + bar, w, 3), dtype=np.uint8)
    out[:bar] = _BAR_RGB
    out[bar:] = image[:, :, 2::-1] if image.ndim == 3 else image.reshape(h, w, 1)  # BGR (or gray) to RGB
    picture = Image.fromarray(out)
    pen = ImageDraw.Draw(picture)
    pen.text((4, pad), text, fill=_TEXT_RGB, font=_font(size), anchor="la")
    line = max(2, round(w / 400))
    if zone:
        corners = [(round(x * w), round(y * h) + bar) for x, y in zone]
        pen.line([*corners, corners[0]], fill=_ZONE_RGB, width=line, joint="curve")
    for x1, y1, x2, y2 in boxes[:, :4]:
        left, right = sorted((int(round(x1)), int(round(x2))))
        top, bottom = sorted((int(round(y1)) + bar, int(round(y2)) + bar))
        pen.rectangle((left, top, right, bottom), outline=_BOX_RGB, width=line)
    return picture


def draw(image: np.ndarray, boxes: np.ndarray, *, camera: str | None, when: datetime | None,
         zone: Zone | None = None) -> np.ndarray:
    """A BGR copy of ``image`` (BGR or gray) with ``boxes`` ((N, >=4) x1, y1, x2, y2) drawn and a caption
    bar on top; a counting ``zone`` is outlined, so whoever reads the count sees where it was counted."""
    return np.ascontiguousarray(np.asarray(_annotated(image, boxes, camera=camera, when=when,
                                                      zone=zone))[:, :, ::-1])


def _as_picture(image: np.ndarray) -> Image.Image:
    """A Pillow image of a BGR, BGRA or gray array."""
    if image.ndim == 2 or image.shape[2] == 1:
        return Image.fromarray(np.ascontiguousarray(image.reshape(image.shape[:2])))
    return Image.fromarray(np.ascontiguousarray(image[:, :, 2::-1]))


def _encode(picture: Image.Image, max_bytes: int) -> bytes:
    if max_bytes < 2_000:
        raise ValueError(f"max_bytes={max_bytes} is too small for any useful picture")
    current = picture
    while True:
        for quality in _QUALITIES:
            buf = io.BytesIO()
            current.save(buf, "JPEG", quality=quality, optimize=True)
            data = buf.getvalue()
            if len(data) <= max_bytes:
                return data
        w, h = current.size
        if max(h, w) <= 64:
            return data  # unreachable for sane limits; never loop for ever
        # BOX: every source pixel weighs by the area it covers, like OpenCV's INTER_AREA.
        current = current.resize((max(1, w * 3 // 4), max(1, h * 3 // 4)), Image.Resampling.BOX)


def encode_jpeg(image: np.ndarray, max_bytes: int = MMS_MAX_BYTES) -> bytes:
    """JPEG bytes of a BGR (or gray) ``image``, no larger than ``max_bytes``: lower quality first, then
    shrink by 3/4 steps."""
    return _encode(_as_picture(image), max_bytes)


def snapshot(image: np.ndarray, boxes: np.ndarray, *, camera: str | None, when: datetime | None,
             max_bytes: int = MMS_MAX_BYTES, zone: Zone | None = None) -> bytes:
    """The annotated JPEG of one frame, ready to send."""
    return _encode(_annotated(image, boxes, camera=camera, when=when, zone=zone), max_bytes)
