"""A sequence's counting zone: the ground area its MOTChallenge ground truth annotates, seen in the image.

Usage: ``python bench/pets_zone.py GT.txt [--width 768 --height 576]`` prints a zone for ``--zone``.

Why: MOTChallenge ground truth for PETS09-S2L1 annotates the people inside a tracking area on the ground
(world coordinates ``wx, wy`` in columns 8-9); people beyond it are marked "ignore" (flag 0) or not annotated
at all (the far lawn at the top of vtest.avi). Counting everyone in the frame and comparing with the
annotated count measures the annotation policy as much as the detector. A camera in Corb has a counting zone
for exactly this (:mod:`cloud.camera_settings`), so the benchmark gives vtest.avi's camera the zone its
ground truth implies, computed here without hand-drawing anything:

1. A homography from image to ground, fitted (OpenCV, RANSAC) to every ground-truth row's foot point (the
   bottom centre of its box) and world position: camera calibration from the annotation itself.
2. The tracking area: the bounding rectangle, on the ground, of the annotated (flag 1) people.
3. That rectangle projected into the image, clipped to the frame, as fractions of width and height.

The zone is a property of the dataset's protocol, not of the detector: it uses the ground truth's geometry
and never its per-frame counts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.mot_eval import _read_rows  # noqa: E402
from cloud.camera_settings import Zone, format_zone, validate_zone  # noqa: E402


def ground_homography(rows: np.ndarray) -> tuple[np.ndarray, float]:
    """Image foot point -> ground (wx, wy), and its median residual in world units."""
    if rows.shape[1] < 9:
        raise ValueError("ground truth has no world coordinates (columns 8-9)")
    feet = np.stack([rows[:, 2] + rows[:, 4] / 2, rows[:, 3] + rows[:, 5]], axis=1)
    world = rows[:, 7:9]
    homography, _ = cv2.findHomography(feet, world, cv2.RANSAC, 0.5)
    if homography is None:
        raise ValueError("cannot fit an image-to-ground homography to this ground truth")
    projected = cv2.perspectiveTransform(feet[None].astype(np.float64), homography)[0]
    return homography, float(np.median(np.linalg.norm(projected - world, axis=1)))


def annotated_zone(rows: np.ndarray, width: int, height: int) -> Zone:
    """The image polygon of the ground rectangle where the ground truth annotates people (see module doc)."""
    homography, _ = ground_homography(rows)
    annotated = rows[rows[:, 6] != 0, 7:9]
    (x0, y0), (x1, y1) = annotated.min(axis=0), annotated.max(axis=0)
    corners = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=np.float64)
    image = cv2.perspectiveTransform(corners, np.linalg.inv(homography))[0].astype(np.float32)
    frame = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    area, clipped = cv2.intersectConvexConvex(image, frame)
    if area <= 0 or clipped is None:
        raise ValueError("the annotated area is not in the picture")
    points = clipped.reshape(-1, 2) / np.array([width, height], dtype=np.float32)
    return validate_zone([(round(float(np.clip(x, 0, 1)), 4), round(float(np.clip(y, 0, 1)), 4))
                          for x, y in points])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Print the counting zone a MOTChallenge ground truth implies.")
    p.add_argument("gt", type=Path)
    p.add_argument("--width", type=int, default=768, help="video width in pixels (vtest.avi: 768)")
    p.add_argument("--height", type=int, default=576, help="video height in pixels (vtest.avi: 576)")
    args = p.parse_args(argv)
    rows = _read_rows(args.gt)
    _, residual = ground_homography(rows)
    print(f"# image-to-ground homography: median residual {residual:.3f} (world units)", file=sys.stderr)
    print(format_zone(annotated_zone(rows, args.width, args.height)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
