"""``purge`` (hourly): forget what cameras saw after the retention period (privacy, contract 7).

Deletes detections older than ``retention_days`` (the ``settings`` table, else the configuration)
with their snapshots and segment videos in the bucket, processed dedupe keys of the same age, and the
pictures of old outbound messages (the rows stay for the record, without their media). Idempotent by
nature: running it twice deletes nothing more. Objects go before rows, so a crash in between leaves a
row pointing at nothing (harmless) rather than a picture nobody will ever delete.

The folder bucket also gets the lifecycle rules S3 applies by itself (:mod:`cloud.lifecycle`): raw
segments after ``segment_days``, the footage copies with people after ``footage_days``.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from bot.handlers import setting_int
from bot.models import Detection, Message
from bot.services import services
from cloud.bucket import FolderBucket
from cloud.db import utcnow
from cloud.lifecycle import Retention, expire
from cloud.models import ProcessedKey

log = logging.getLogger(__name__)

BATCH = 500


def purge(event: Any = None, context: Any = None) -> dict:
    svc = services()
    with svc.sessions() as s:
        days = setting_int(s, "retention_days", svc.config.retention_days)
    cutoff = utcnow() - timedelta(days=max(days, 0))
    counts = {"detections": 0, "objects": 0, "processed_keys": 0, "messages_media": 0, "expired": 0}
    if isinstance(svc.bucket, FolderBucket):  # S3 runs the same rules itself (corb deploy creates them)
        config = svc.config
        policy = Retention(max(0, config.segment_days), max(1, config.footage_days), max(1, days))
        counts["expired"] = expire(svc.bucket, policy, utcnow().replace(tzinfo=UTC))

    while True:
        with svc.sessions() as s:
            rows = s.execute(select(Detection.id, Detection.snapshot_key, Detection.segment_key)
                             .where(Detection.end_time < cutoff).order_by(Detection.id).limit(BATCH)).all()
        if not rows:
            break
        for _, snapshot_key, segment_key in rows:
            for key in (snapshot_key, segment_key):
                if key:
                    try:
                        svc.bucket.delete(key)
                        counts["objects"] += 1
                    except ValueError:
                        log.warning("not deleting invalid key %r", key)
        with svc.session() as s:
            s.execute(delete(Detection).where(Detection.id.in_([r[0] for r in rows])))
        counts["detections"] += len(rows)

    with svc.sessions() as s:
        old_media = [k for (k,) in s.execute(select(Message.media_key).where(
            Message.media_key.is_not(None), Message.created_at < cutoff).distinct())]
    for key in old_media:
        try:
            svc.bucket.delete(key)
        except ValueError:
            log.warning("not deleting invalid key %r", key)
    with svc.session() as s:
        counts["messages_media"] = s.execute(
            update(Message).where(Message.media_key.is_not(None), Message.created_at < cutoff)
            .values(media_key=None, media_url=None)).rowcount
        counts["processed_keys"] = s.execute(
            delete(ProcessedKey).where(ProcessedKey.created_at < cutoff)).rowcount
    log.info("retention (%s days): %s", days, counts)
    return {"kind": "retention_purged", "retention_days": days, **counts}
