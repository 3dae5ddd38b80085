"""A camera's detection settings, stored in the bucket next to its video: today, its counting zone.

Why the bucket: the detection function never touches the database (it is its own Lambda, with its own
package), and the bucket is the one store both functions share. The admin page writes
``config/cameras/<slug>.json``; the detection handler reads it for every segment (one small GET, so a change
applies from the next segment on). The key is outside ``cameras/``, so writing it triggers no detection.

**Counting zone**: a polygon in fractions of the frame's width and height (0 to 1), so it survives a change of
resolution and the pipeline's downscaling. People are tracked everywhere, but only those standing inside the
zone count: the bottom centre of a person's box (where they stand, not where their head reaches) must be
inside. It is how a camera that also sees a street through a window, or a far corridor, counts only its room.

Pure Python (no numpy): the web app validates zones with the same code, and keeps numpy off its import path.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cloud.bucket import Bucket, NoSuchKey

log = logging.getLogger(__name__)

Zone = tuple[tuple[float, float], ...]
"""Polygon vertices (x, y) in fractions of the frame's width and height, in drawing order."""

SETTINGS_PREFIX = "config/cameras/"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
"""A camera's slug: its bucket folder (``cameras/<slug>/``), its URLs, its name in texts."""
CAPTION_BAR = 1 / 16
"""A snapshot (``detection.annotate``) is its picture with a caption bar this fraction of the picture's height
above it: the admin page draws a zone over a snapshot, so both sides place the picture the same way."""
MAX_POINTS = 32
MIN_AREA = 0.001  # of the frame: a zone smaller than this is a typo, not a room
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class ZoneError(ValueError):
    """A zone that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class CameraSettings:
    zone: Zone | None = None  # None: the whole frame counts

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, "zone": [list(p) for p in self.zone] if self.zone else None},
                          indent=2).encode()


def slug_for(name: str) -> str:
    """What ``name`` would be as a slug ('' when nothing is left), to suggest when refusing it."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64].rstrip("-")


def settings_key(slug: str) -> str:
    return f"{SETTINGS_PREFIX}{slug}.json"


def parse_zone(text: str | None) -> Zone | None:
    """``"x,y x,y x,y ..."`` (fractions of width and height; pairs separated by spaces, ``;`` or new lines)
    to a zone. Empty, ``none`` or ``all`` mean the whole frame (None)."""
    text = (text or "").strip()
    if text.lower() in ("", "none", "all", "whole", "whole frame"):
        return None
    pairs = [p for p in re.split(r"[\s;]+", text) if p]
    points = []
    for pair in pairs:
        parts = pair.split(",")
        if len(parts) != 2 or not all(_NUMBER.fullmatch(v) for v in parts):
            raise ZoneError(f"'{pair}' is not a point: write each corner as x,y (e.g. 0.1,0.25), "
                            "corners separated by spaces")
        points.append((float(parts[0]), float(parts[1])))
    return validate_zone(points)


def validate_zone(points: Sequence[Sequence[float]]) -> Zone:
    """The zone these points make, or :class:`ZoneError` saying why they make none."""
    zone = tuple((float(x), float(y)) for x, y in points)
    if len(zone) < 3:
        raise ZoneError(f"a zone needs at least 3 corners, got {len(zone)}")
    if len(zone) > MAX_POINTS:
        raise ZoneError(f"a zone has at most {MAX_POINTS} corners, got {len(zone)}")
    for x, y in zone:
        if not (math.isfinite(x) and math.isfinite(y) and 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ZoneError(f"corner {x:g},{y:g} is outside the frame: corners are fractions of the frame's "
                            "width and height, from 0 to 1 (0,0 is the top left)")
    if abs(_area(zone)) < MIN_AREA:
        raise ZoneError(f"the zone covers {abs(_area(zone)):.2%} of the frame: too small to count people in "
                        "(are the corners in order around it?)")
    return zone


def format_zone(zone: Zone | None) -> str:
    """The text :func:`parse_zone` reads back; empty for the whole frame."""
    if not zone:
        return ""
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in zone)


def contains(zone: Zone | None, x: float, y: float) -> bool:
    """Whether the point (fractions of width and height) is inside the zone; edges count as inside."""
    if zone is None:
        return True
    inside = False
    n = len(zone)
    for i in range(n):
        (x1, y1), (x2, y2) = zone[i], zone[(i + 1) % n]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def load_settings(bucket: Bucket, slug: str) -> CameraSettings:
    """The camera's settings; the defaults when it has none stored.

    Unreadable settings (only a hand edit makes them: the admin page validates) are logged and replaced by
    the defaults rather than failing: a wrong zone must not stop a camera's detections and alerts.
    """
    try:
        raw = bucket.get(settings_key(slug))
    except NoSuchKey:
        return CameraSettings()
    try:
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        zone = doc.get("zone")
        return CameraSettings(zone=validate_zone(zone) if zone else None)
    except (ValueError, TypeError) as exc:
        log.error("camera %s: ignoring unreadable settings %s (%s); counting the whole frame",
                  slug, settings_key(slug), exc)
        return CameraSettings()


def save_settings(bucket: Bucket, slug: str, settings: CameraSettings) -> None:
    """Store the camera's settings; default settings remove the object (nothing to read is the default)."""
    if settings == CameraSettings():
        bucket.delete(settings_key(slug))  # idempotent in every bucket
        return
    bucket.put(settings_key(slug), settings.to_json(), "application/json")


def _area(zone: Zone) -> float:
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(zone, zone[1:] + zone[:1], strict=True))


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float) -> bool:
    cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
    if abs(cross) > 1e-12:
        return False
    return min(x1, x2) - 1e-12 <= x <= max(x1, x2) + 1e-12 and min(y1, y2) - 1e-12 <= y <= max(y1, y2) + 1e-12


def _num(v: float) -> str:
    return f"{v:.4f}".rstrip("0").rstrip(".") if v else "0"
