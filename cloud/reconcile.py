"""The reconciler: segments that have sat in the bucket for a while without a result are notified again.

S3 notifications are at-least-once but not guaranteed to arrive: a bucket's notification configuration
being rewritten by hand, a function that failed past its retries after the dead letter was replayed and
lost, a first deploy whose notification came after the camera's first uploads. The detection function's
contract makes a missed segment visible: a segment version has been analysed iff its one object,
``snapshots/<camera>/<stem>-<etag12>.jpg``, exists (``detection.handler.output_key``). Every run (a schedule
of the detection stage, ``rate(15 minutes)``) lists the S3 triggers' prefixes and, for each object older
than ``GRACE`` (time for the first delivery, its two retries and its analysis) and younger than
``HORIZON`` (older ones were looked at by the runs before) that has no result, invokes the trigger's function
asynchronously with the ``ObjectCreated`` record S3 would have sent. The handler is idempotent per
bucket+key+eTag, so a segment whose first delivery is merely slow is analysed once and answered twice.

The embedded runtime has no such gap (its watcher records each notification in the database, in the same
transaction that queues the invocation), so there the run returns at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cloud.events import s3_event, s3_record

if TYPE_CHECKING:
    from cloud.bucket import Bucket, ObjectInfo
    from cloud.dead_letters import Invoker
    from cloud.declaration import S3Trigger

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=10)  # > Lambda's retry delays (1 and 2 minutes) plus a 5-minute analysis
HORIZON = timedelta(hours=2)  # older ones were looked at by the runs before (a LIST costs; see docs)
KIND = "segments_reconciled"


@dataclass(frozen=True)
class Missed:
    function: str
    key: str
    etag: str


def result_key(key: str, etag: str) -> str | None:
    """The commit marker of a segment version, or None for a key the detection handler skips."""
    from detection.handler import output_key  # the handler's own naming: one definition of "analysed"

    try:
        return output_key(key, etag)
    except ValueError:
        return None


def missed(bucket: Bucket, triggers: list[S3Trigger], now: datetime, *, grace: timedelta = GRACE,
           horizon: timedelta = HORIZON) -> Iterator[tuple[S3Trigger, ObjectInfo]]:
    """Objects a trigger matches, between ``grace`` and ``horizon`` old, whose result does not exist."""
    for trigger in triggers:
        for obj in bucket.list(trigger.prefix):
            age = now - obj.last_modified
            if not (grace <= age <= horizon) or not trigger.matches(obj.key):
                continue
            marker = result_key(obj.key, obj.etag)
            if marker is not None and bucket.head(marker) is None:
                yield trigger, obj


def reemit(bucket: Bucket, invoker: Invoker, triggers: list[S3Trigger], now: datetime | None = None,
           **window: timedelta) -> list[Missed]:
    """Invoke each trigger's function again for every segment it missed; returns what was re-emitted."""
    done: list[Missed] = []
    for trigger, obj in missed(bucket, triggers, now or datetime.now(UTC), **window):
        record = s3_record(bucket.name, obj.key, size=obj.size, etag=obj.etag,
                           sequencer=f"{int(obj.last_modified.timestamp() * 1e6):016X}",
                           time=obj.last_modified)
        record["s3"]["configurationId"] = "corb-reconcile"
        invoker.invoke_async(trigger.function, s3_event(record), trigger="reconcile")
        log.warning("s3://%s/%s (eTag %s) had no result: notified %s again", bucket.name, obj.key, obj.etag,
                    trigger.function)
        done.append(Missed(trigger.function, obj.key, obj.etag))
    return done


def run(event: Any = None, context: Any = None) -> dict:
    """The scheduled function: re-emit on the configured bucket, through the configured invoker."""
    from cloud.adapters import open_bucket, open_invoker
    from cloud.config import load_config
    from cloud.declaration import load_declaration

    config = load_config()
    if config.bus == "local":
        return {"kind": KIND, "reemitted": [], "note": "the embedded watcher needs no reconciling"}
    bucket = open_bucket(config)
    triggers = [t for t in load_declaration(config.stage).s3_triggers if t.bucket == bucket.name]
    done = reemit(bucket, open_invoker(config, None), triggers)
    return {"kind": KIND, "reemitted": [{"key": m.key, "etag": m.etag} for m in done]}
