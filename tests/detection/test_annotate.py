"""The snapshot: best-frame ranking, a legible caption, and a JPEG that fits an MMS."""

from __future__ import annotations

from datetime import UTC, datetime

import cv2
import numpy as np

from detection.annotate import MMS_MAX_BYTES, caption, draw, encode_jpeg, frame_rank, snapshot


def test_rank_prefers_more_people_then_clearer_ones() -> None:
    two = np.array([[0, 0, 1, 1, 0.6], [0, 0, 1, 1, 0.6]])
    two_clear = np.array([[0, 0, 1, 1, 0.9], [0, 0, 1, 1, 0.9], [0, 0, 1, 1, 0.1]])
    one = np.array([[0, 0, 1, 1, 0.99]])
    nobody = np.zeros((0, 5))
    assert frame_rank(two_clear, 0.5) > frame_rank(two, 0.5) > frame_rank(one, 0.5) > frame_rank(nobody, 0.5)


def test_caption_says_who_where_when_in_plain_ascii() -> None:
    when = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)
    assert caption("lobby", 1, when) == "lobby  |  1 person  |  2026-11-27 10:00:05 UTC"
    assert caption("lobby", 3, None) == "lobby  |  3 people"
    assert caption("café ☕", 0, None).isascii()


def test_draw_adds_a_solid_caption_bar_above_and_the_boxes() -> None:
    image = np.full((576, 768, 3), 128, np.uint8)
    out = draw(image, np.array([[100, 100, 140, 200, 0.9]]), camera="lobby", when=None)
    bar = out.shape[0] - 576
    assert 20 <= bar <= 60 and out.shape[1] == 768
    top = out[:bar]
    assert (top.max(axis=2) < 20).mean() > 0.8  # mostly black...
    assert (top.min(axis=2) > 200).any()  # ...with white text
    assert np.array_equal(out[bar + 300, 500], [128, 128, 128])  # the picture itself untouched
    assert tuple(out[bar + 150, 100]) != (128, 128, 128)  # the box's left edge


def test_jpeg_fits_the_mms_limit_by_quality_then_size() -> None:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (2160, 3840, 3), dtype=np.uint8)  # incompressible: forces a downscale
    data = encode_jpeg(noise, MMS_MAX_BYTES)
    assert len(data) <= MMS_MAX_BYTES
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[1] < 3840
    plain = encode_jpeg(np.full((576, 768, 3), 90, np.uint8))
    assert cv2.imdecode(np.frombuffer(plain, np.uint8), cv2.IMREAD_COLOR).shape == (576, 768, 3)


def test_snapshot_without_people_is_still_a_picture() -> None:
    data = snapshot(np.zeros((120, 160, 3), np.uint8), np.zeros((0, 6)), camera="a-very-long-camera-name",
                    when=datetime(2026, 1, 1, tzinfo=UTC))
    assert data[:2] == b"\xff\xd8" and len(data) < MMS_MAX_BYTES
