"""How long the bucket keeps what: one policy, as S3 lifecycle rules (``corb deploy``) and for the folder.

Raw video is most of a camera's storage bill (1080p at 4 Mbit/s is 43 GB a day), so it is kept by what it
showed, by prefix, which S3 lifecycle rules can express without any request per object:

| prefix | what | kept (setting, default) |
| --- | --- | --- |
| ``cameras/`` | segments as uploaded; stays: nobody detected and no sub-stream | ``CORB_SEGMENT_DAYS``, 1 |
| ``quiet/`` | the sub-stream of a segment without people or left unanalysed | ``CORB_SEGMENT_DAYS``, 1 |
| ``footage/`` | the part of a segment with people, moved from ``cameras/`` | ``CORB_FOOTAGE_DAYS``, 3 |
| ``snapshots/`` | every segment's annotated picture, its result inside | ``CORB_RETENTION_DAYS``, 30 |
| ``results/`` | result JSONs of versions before results moved into snapshots | ``CORB_RETENTION_DAYS``, 30 |

(``CORB_SEGMENT_DAYS=0``: the detection function deletes a segment without people once analysed, and
``quiet/`` keeps only the quiet segments the camera agent put there unanalysed, a day, see
:mod:`agent.segmenter`;
``CORB_SEGMENT_STREAMS=all`` keeps it whole under ``cameras/`` instead of its sub-stream under ``quiet/``.)
S3 applies a rule at the first midnight UTC after the object's age passes its days (so an object lives
between N and N + 1 days); the folder bucket applies the same rules in the hourly ``purge``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cloud.bucket import Bucket

CAMERAS, QUIET, FOOTAGE = "cameras/", "quiet/", "footage/"
SNAPSHOTS, RESULTS = "snapshots/", "results/"


@dataclass(frozen=True)
class Retention:
    segment_days: int = 1
    footage_days: int = 3
    retention_days: int = 30

    def __post_init__(self) -> None:
        if self.segment_days < 0:
            raise ValueError("segment_days must be 0 (deleted once analysed) or more")
        for name in ("footage_days", "retention_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 day (S3 lifecycle rules count whole days)")

    @classmethod
    def from_config(cls, config: Any) -> Retention:
        return cls(config.segment_days, config.footage_days, config.retention_days)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Retention:
        """From a stage's environment variables (``zappa_settings.json``), defaults where unset."""
        d = cls()
        return cls(int(env.get("CORB_SEGMENT_DAYS", d.segment_days)),
                   int(env.get("CORB_FOOTAGE_DAYS", d.footage_days)),
                   int(env.get("CORB_RETENTION_DAYS", d.retention_days)))

    def days(self) -> dict[str, int]:
        """Days kept per prefix. ``segment_days=0``: the detection function deletes each segment once
        analysed; the 1-day rule remains for segments it never analysed (a failure, a dead letter)."""
        quiet = max(1, self.segment_days)
        return {CAMERAS: quiet, QUIET: quiet, FOOTAGE: self.footage_days,
                SNAPSHOTS: self.retention_days, RESULTS: self.retention_days}


def _moved(segment_key: str, prefix: str) -> str:
    if not segment_key.startswith(CAMERAS):
        raise ValueError(f"not a segment key: {segment_key!r}")
    return prefix + segment_key[len(CAMERAS):]


def footage_key(segment_key: str) -> str:
    """Where a segment with people is kept longer: ``cameras/x/y.mkv`` -> ``footage/x/y.mkv``."""
    return _moved(segment_key, FOOTAGE)


def quiet_key(segment_key: str) -> str:
    """Where the sub-stream of a segment without people is kept: ``cameras/x/y.mkv`` -> ``quiet/x/y.mkv``."""
    return _moved(segment_key, QUIET)


def s3_rules(retention: Retention) -> list[dict]:
    """``PutBucketLifecycleConfiguration`` rules: expire each prefix after its days; abandoned multipart
    uploads (an agent cut off mid-upload) after 1 day."""
    rules = [{"ID": f"corb-expire-{prefix.rstrip('/')}", "Status": "Enabled", "Filter": {"Prefix": prefix},
              "Expiration": {"Days": days}} for prefix, days in retention.days().items()]
    rules.append({"ID": "corb-abort-incomplete-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
                  "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    return rules


def expired(last_modified: datetime, days: int, now: datetime) -> bool:
    """S3's rule: an object expires at the first midnight UTC at or after its creation plus ``days``."""
    due = last_modified + timedelta(days=days)
    midnight = due.replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight < due:
        midnight += timedelta(days=1)
    return now >= midnight


def expire(bucket: Bucket, retention: Retention, now: datetime) -> int:
    """Apply the rules to a bucket that has no lifecycle of its own (the folder): delete what S3 would."""
    deleted = 0
    for prefix, days in retention.days().items():
        for info in list(bucket.list(prefix)):
            if info.last_modified is not None and expired(info.last_modified, days, now):
                bucket.delete(info.key)
                deleted += 1
    return deleted
