"""The benchmark's counting zone: recovered from a ground truth's own geometry, on a synthetic camera."""

from __future__ import annotations

import numpy as np
import pytest

from bench.pets_zone import annotated_zone, ground_homography
from cloud.camera_settings import contains

# A camera looking down at a plaza: ground (wx, wy) in metres to image pixels (768x576).
WORLD_TO_IMAGE = np.array([[40.0, 12.0, 120.0], [-3.0, 25.0, 90.0], [0.002, 0.035, 1.0]])


def to_image(world: np.ndarray) -> np.ndarray:
    h = np.hstack([world, np.ones((len(world), 1))]) @ WORLD_TO_IMAGE.T
    return h[:, :2] / h[:, 2:]


def gt_rows(world: np.ndarray, flag: int) -> np.ndarray:
    feet = to_image(world)
    w, h = 20.0, 60.0
    return np.column_stack([np.arange(1, len(world) + 1), np.arange(len(world)), feet[:, 0] - w / 2,
                            feet[:, 1] - h, np.full(len(world), w), np.full(len(world), h),
                            np.full(len(world), flag), world, np.zeros(len(world))])


def test_the_zone_is_the_annotated_ground_area_seen_by_the_camera() -> None:
    rng = np.random.default_rng(7)
    corners = np.array([[0, 0], [10, 0], [10, 8], [0, 8]], dtype=float)  # the tracking area's extent
    inside = rng.uniform([0.1, 0.1], [9.9, 7.9], size=(300, 2))  # annotated people in it
    beyond = rng.uniform([11, 0], [14, 8], size=(60, 2))  # people further away: flag 0
    rows = np.vstack([gt_rows(np.vstack([corners, inside]), 1), gt_rows(beyond, 0)])
    _, residual = ground_homography(rows)
    assert residual < 1e-3
    zone = annotated_zone(rows, 768, 576)
    assert all(0 <= x <= 1 and 0 <= y <= 1 for x, y in zone)
    in_frame = [(x / 768, y / 576) for x, y in to_image(inside) if 0 <= x <= 768 and 0 <= y <= 576]
    assert len(in_frame) > 100 and all(contains(zone, x, y) for x, y in in_frame)
    away = [(x / 768, y / 576) for x, y in to_image(beyond) if 0 <= x <= 768 and 0 <= y <= 576]
    assert away and not any(contains(zone, x, y) for x, y in away)


def test_ground_truth_without_world_coordinates_is_refused() -> None:
    with pytest.raises(ValueError, match="world coordinates"):
        annotated_zone(np.zeros((10, 7)), 768, 576)
