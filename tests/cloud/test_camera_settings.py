"""Camera settings in the bucket: the counting zone's text form, its geometry, and how it is stored."""

from __future__ import annotations

import logging

import pytest

from cloud.bucket import FolderBucket
from cloud.camera_settings import (
    CameraSettings,
    ZoneError,
    contains,
    format_zone,
    load_settings,
    parse_zone,
    save_settings,
    settings_key,
)

SQUARE = ((0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75))


@pytest.mark.parametrize("text", ["", "  ", "none", "ALL", "whole frame", None])
def test_empty_means_the_whole_frame(text: str | None) -> None:
    assert parse_zone(text) is None
    assert contains(None, 0.99, 0.01)


def test_text_round_trip_with_any_separator() -> None:
    zone = parse_zone("0.25,0.25 0.75,0.25;0.75,.75\n0.25,0.75")
    assert zone == SQUARE
    assert format_zone(zone) == "0.25,0.25 0.75,0.25 0.75,0.75 0.25,0.75"
    assert parse_zone(format_zone(zone)) == zone
    assert format_zone(None) == ""


@pytest.mark.parametrize(("text", "says"), [
    ("0.1,0.1 0.9,0.9", "at least 3 corners"),
    ("10,20 300,20 300,400", "outside the frame"),
    ("0.1,0.1 0.9,x 0.5,0.9", "is not a point"),
    ("0.1;0.1 0.9;0.1 0.5;0.9", "is not a point"),
    ("0,0 0.5,0.5 1,1", "too small"),  # three corners on a line
    ("0,0 1,1 1,0 0,1", "too small"),  # a bow tie: corners out of order
    (" ".join(["0.5,0.5"] * 40), "at most 32 corners"),
    ("nan,0 1,0 1,1", "is not a point"),
])
def test_bad_zones_say_what_to_fix(text: str, says: str) -> None:
    with pytest.raises(ZoneError, match=says):
        parse_zone(text)


def test_contains_inside_outside_and_on_the_edge() -> None:
    assert contains(SQUARE, 0.5, 0.5)
    assert not contains(SQUARE, 0.1, 0.5) and not contains(SQUARE, 0.5, 0.9)
    assert contains(SQUARE, 0.25, 0.5) and contains(SQUARE, 0.75, 0.75)  # edges and corners count


def test_contains_a_concave_zone() -> None:
    # An L: the bottom row and the left column; the top right is out.
    ell = parse_zone("0,0 0.4,0 0.4,0.6 1,0.6 1,1 0,1")
    assert contains(ell, 0.2, 0.2) and contains(ell, 0.8, 0.8)
    assert not contains(ell, 0.8, 0.2)


def test_settings_are_stored_read_back_and_cleared(tmp_path) -> None:
    bucket = FolderBucket(tmp_path)
    assert load_settings(bucket, "lobby") == CameraSettings()
    save_settings(bucket, "lobby", CameraSettings(zone=SQUARE))
    assert bucket.head(settings_key("lobby")) is not None
    assert load_settings(bucket, "lobby").zone == SQUARE
    assert load_settings(bucket, "garage") == CameraSettings()  # per camera
    save_settings(bucket, "lobby", CameraSettings())
    assert bucket.head(settings_key("lobby")) is None
    save_settings(bucket, "lobby", CameraSettings())  # clearing twice is fine


def test_the_settings_key_is_outside_the_cameras_prefix() -> None:
    from detection.handler import segment_names

    assert segment_names(settings_key("lobby")) is None  # writing it never triggers a detection


@pytest.mark.parametrize("raw", [b"{not json", b'{"zone": [[0, 0], [1, 1]]}', b'{"zone": "0,0 1,1"}', b"[]"])
def test_unreadable_settings_fall_back_to_the_whole_frame_and_say_so(tmp_path, caplog, raw: bytes) -> None:
    bucket = FolderBucket(tmp_path)
    bucket.put(settings_key("lobby"), raw)
    with caplog.at_level(logging.ERROR, logger="cloud.camera_settings"):
        settings = load_settings(bucket, "lobby")
    assert settings == CameraSettings()
    assert "lobby" in caplog.text and "whole frame" in caplog.text
