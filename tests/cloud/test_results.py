"""A segment's result inside its snapshot JPEG: it round-trips, and the picture still decodes as before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cloud.results import embed, extract


def jpeg(width: int = 64, height: int = 48) -> bytes:
    image = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    assert ok
    return buf.tobytes()


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_the_result_round_trips_and_the_picture_is_unchanged() -> None:
    plain = jpeg()
    result = {"kind": "segment_analysed", "camera": "lobby", "counts": [0, 1, 2], "peak": 2, "name": "café"}
    stored = embed(plain, result)
    assert extract(stored) == result
    assert np.array_equal(decoded(stored), decoded(plain))
    assert extract(plain) is None


def test_jfif_app0_stays_first() -> None:
    plain = jpeg()
    assert plain[2:4] == b"\xff\xe0"  # OpenCV writes JFIF
    stored = embed(plain, {"a": 1})
    assert stored[2:4] == b"\xff\xe0" and b"corb-result:" in stored[:200]
    app0_end = 4 + int.from_bytes(plain[4:6], "big")
    assert stored[app0_end:app0_end + 2] == b"\xff\xfe"


def test_a_result_over_one_jpeg_segment_spans_several() -> None:
    result = {"counts": list(range(30_000))}  # ~170 KB of JSON: three COM segments
    stored = embed(jpeg(), result)
    assert stored.count(b"corb-result:") == 3
    assert extract(stored) == result
    decoded(stored)


def test_other_comments_are_ignored_and_damage_reads_as_no_result() -> None:
    plain = jpeg()
    other = plain[:2] + b"\xff\xfe\x00\x07hello" + plain[2:]
    assert extract(other) is None
    assert extract(embed(other, {"x": 1})) == {"x": 1}
    assert extract(b"not a jpeg") is None
    stored = embed(plain, {"x": 1})
    assert extract(stored[:30]) is None  # cut inside the comment
    with pytest.raises(ValueError, match="not a JPEG"):
        embed(b"GIF89a", {"x": 1})
