"""The bucket's retention policy: S3 lifecycle rules for corb deploy, and the same rules on the folder."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.bucket import FolderBucket
from cloud.lifecycle import Retention, expire, expired, footage_key, quiet_key, s3_rules


def test_rules_expire_each_prefix_after_its_setting() -> None:
    rules = {r["ID"]: r for r in s3_rules(Retention(segment_days=2, footage_days=5, retention_days=30))}
    assert rules["corb-expire-cameras"] == {"ID": "corb-expire-cameras", "Status": "Enabled",
                                            "Filter": {"Prefix": "cameras/"}, "Expiration": {"Days": 2}}
    assert rules["corb-expire-footage"]["Expiration"] == {"Days": 5}
    assert rules["corb-expire-snapshots"]["Expiration"] == rules["corb-expire-results"]["Expiration"] == {
        "Days": 30}
    assert rules["corb-abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 1}


def test_settings_come_from_the_environment_with_defaults_and_are_checked() -> None:
    assert Retention.from_env({}) == Retention(1, 3, 30)
    assert Retention.from_env({"CORB_SEGMENT_DAYS": "3", "CORB_FOOTAGE_DAYS": "14"}) == Retention(3, 14, 30)
    with pytest.raises(ValueError, match="footage_days must be at least 1 day"):
        Retention(footage_days=0)
    with pytest.raises(ValueError, match="segment_days must be 0"):
        Retention(segment_days=-1)
    # 0: the detection function deletes segments once analysed; the rule still catches the unanalysed.
    assert Retention(segment_days=0).days()["cameras/"] == 1
    assert Retention(segment_days=3).days()["quiet/"] == 3  # the sub-stream of a segment without people


def test_expiry_follows_s3s_midnight_rule() -> None:
    made = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert not expired(made, 1, datetime(2026, 12, 1, 23, 59, tzinfo=UTC))  # 1 day on is 10:00, then midnight
    assert expired(made, 1, datetime(2026, 12, 2, 0, 0, tzinfo=UTC))
    exactly = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert expired(exactly, 1, datetime(2026, 12, 1, 0, 0, tzinfo=UTC))


def test_the_folder_bucket_applies_the_same_rules(tmp_path: Path) -> None:
    bucket = FolderBucket(tmp_path / "b")
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ages = {"cameras/lobby/old.mkv": 3, "cameras/lobby/new.mkv": 0.5, "footage/lobby/old.mkv": 3,
            "footage/lobby/ancient.mkv": 9, "snapshots/lobby/a.jpg": 9, "config/cameras/lobby.json": 99,
            "quiet/lobby/old.mkv": 3, "quiet/lobby/new.mkv": 0.5}
    for key, days in ages.items():
        bucket.put(key, b"x")
        t = (now - timedelta(days=days)).timestamp()
        os.utime(bucket.path_for(key), (t, t))
    assert expire(bucket, Retention(segment_days=1, footage_days=7, retention_days=30), now) == 3
    assert sorted(o.key for o in bucket.list()) == [
        "cameras/lobby/new.mkv", "config/cameras/lobby.json", "footage/lobby/old.mkv",
        "quiet/lobby/new.mkv", "snapshots/lobby/a.jpg"]


def test_footage_and_quiet_keys() -> None:
    name = "lobby/2026-11-30T10-15-02.123Z.mkv"
    assert footage_key(f"cameras/{name}") == f"footage/{name}"
    assert quiet_key(f"cameras/{name}") == f"quiet/{name}"
    for make in (footage_key, quiet_key):
        with pytest.raises(ValueError):
            make("snapshots/lobby/x.jpg")
