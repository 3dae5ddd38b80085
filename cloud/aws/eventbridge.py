"""EventBridge as Corb's bus: ``PutEvents`` with AWS's limits handled and nothing silently dropped.

- Batches of at most 10 entries, each batch also kept under 256 KB in total (conservative: AWS counts
  the limit per entry, and per request on some paths; a few extra requests cost nothing).
- Each entry is sized the way AWS sizes it (Time 14 bytes if set, Source, DetailType, Detail, Resources,
  as UTF-8). A detail that would push an entry over 256 KB is written to the bucket as
  ``events/large/<id>.json`` and the event carries ``{"detail_ref": {"bucket", "key"}}`` instead, plus the
  detail's short top-level scalar fields, so that rules matching on e.g. ``detail.command_type`` still
  match. Receivers call :func:`resolve_detail` to get the full detail back.
- ``PutEvents`` answers 200 even when some entries failed (``FailedEntryCount``, per-entry ``ErrorCode``).
  Failed entries are resent with exponential backoff and jitter; permanent errors are not retried; what
  still fails raises ``BusError`` naming every entry. Resending is at-least-once: a resent entry gets a
  new event id, so handlers must dedupe on the content they act on, not only on the id.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud.aws import session
from cloud.bus import BusError

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from cloud.bucket import Bucket
    from cloud.config import Config

MAX_ENTRY_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
LARGE_PREFIX = "events/large/"
SCALAR_KEEP_BYTES = 256  # a string field longer than this is not copied beside a detail_ref
# Codes a resend cannot fix (bad input, permissions, missing bus): raised at once instead of retried.
PERMANENT_ERRORS = frozenset({
    "ValidationException", "MalformedDetail", "InvalidArgument", "AccessDeniedException",
    "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "ResourceNotFoundException",
    "UnrecognizedClientException",
})


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge computes it for the 256 KB limit."""
    size = 14 if entry.get("Time") is not None else 0
    size += len(str(entry.get("Source", "")).encode())
    size += len(str(entry.get("DetailType", "")).encode())
    detail = entry.get("Detail")
    if detail is not None:
        size += len((detail if isinstance(detail, str) else json.dumps(detail)).encode())
    for resource in entry.get("Resources") or []:
        size += len(str(resource).encode())
    return size


@dataclass(frozen=True)
class FailedEntry:
    index: int
    source: str
    detail_type: str
    error_code: str
    error_message: str

    def __str__(self) -> str:
        return f"#{self.index} {self.source}/{self.detail_type} ({self.error_code}: {self.error_message})"


def _bus_error(failed: list[FailedEntry], total: int, attempts: int) -> BusError:
    named = "; ".join(str(f) for f in failed)
    err = BusError(f"{len(failed)} of {total} event(s) not put after {attempts} attempt(s): {named}")
    err.failed = failed  # type: ignore[attr-defined]
    return err


class EventBridgeBus:
    """An EventBridge event bus behind the ``Bus`` protocol."""

    def __init__(self, name: str, client: BaseClient, *, bucket: Bucket | None = None,
                 bucket_factory: Callable[[], Bucket] | None = None, max_attempts: int = 5,
                 base_delay: float = 0.1, max_delay: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> None:
        self.name = name
        self.client = client
        self._bucket = bucket
        self._bucket_factory = bucket_factory
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()

    @classmethod
    def from_config(cls, config: Config) -> EventBridgeBus:
        def bucket() -> Bucket:
            from cloud.adapters import open_bucket

            return open_bucket(config)

        return cls(config.bus, session.client("events", config), bucket_factory=bucket)

    @property
    def bucket(self) -> Bucket:
        """Where large details go; opened on first need, so small events never touch S3."""
        if self._bucket is None and self._bucket_factory is not None:
            self._bucket = self._bucket_factory()
        if self._bucket is None:
            raise BusError("an event detail exceeds 256 KB and this bus has no bucket to put it in")
        return self._bucket

    # -- sizing and offloading -------------------------------------------------------------------------
    def _fit(self, entry: Mapping[str, Any]) -> dict:
        """The entry as it will be sent: on this bus, and under 256 KB (detail offloaded if needed)."""
        e = dict(entry)
        e.setdefault("EventBusName", self.name)
        if isinstance(e.get("Detail"), Mapping):
            e["Detail"] = json.dumps(e["Detail"], default=str)
        e.setdefault("Detail", "{}")
        if entry_size(e) <= MAX_ENTRY_BYTES:
            return e
        bucket = self.bucket
        key = f"{LARGE_PREFIX}{uuid.uuid4()}.json"
        bucket.put(key, e["Detail"].encode(), content_type="application/json")
        stub = _detail_stub(json.loads(e["Detail"]), {"bucket": bucket.name, "key": key})
        e["Detail"] = json.dumps(stub)
        if entry_size(e) > MAX_ENTRY_BYTES:
            raise BusError(f"event {e.get('Source')}/{e.get('DetailType')} exceeds 256 KB without its detail")
        return e

    def _batches(self, pending: list[tuple[int, dict]]) -> Iterator[list[tuple[int, dict]]]:
        batch: list[tuple[int, dict]] = []
        size = 0
        for item in pending:
            s = entry_size(item[1])
            if batch and (len(batch) == MAX_BATCH_ENTRIES or size + s > MAX_ENTRY_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(item)
            size += s
        if batch:
            yield batch

    def _delay(self, attempt: int) -> float:
        cap = min(self.max_delay, self.base_delay * (2 ** attempt))
        return cap / 2 + self._rng.uniform(0, cap / 2)  # "equal jitter": never zero, never in lockstep

    # -- the interface ---------------------------------------------------------------------------------
    def put_events(self, entries: list[dict]) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        fitted = [self._fit(e) for e in entries]
        ids: list[str | None] = [None] * len(fitted)
        pending = list(enumerate(fitted))
        failed: list[FailedEntry] = []
        attempt = 0
        while pending:
            failed = []
            for batch in self._batches(pending):
                try:
                    resp = self.client.put_events(Entries=[e for _, e in batch])
                    results = resp.get("Entries", [])
                except ClientError as exc:  # botocore already retried throttling and 5xx
                    err = exc.response.get("Error", {})
                    failure = {"ErrorCode": err.get("Code", "ClientError"),
                               "ErrorMessage": err.get("Message", "")}
                    results = [failure] * len(batch)
                except BotoCoreError as exc:  # connection errors after botocore's retries
                    results = [{"ErrorCode": type(exc).__name__, "ErrorMessage": str(exc)}] * len(batch)
                if len(results) != len(batch):
                    results = [{"ErrorCode": "IncompleteResponse", "ErrorMessage": "entry count mismatch"}
                               ] * len(batch)
                for (index, e), result in zip(batch, results, strict=True):
                    if result.get("EventId") and not result.get("ErrorCode"):
                        ids[index] = result["EventId"]
                    else:
                        failed.append(FailedEntry(index, str(e.get("Source")), str(e.get("DetailType")),
                                                  str(result.get("ErrorCode") or "Unknown"),
                                                  str(result.get("ErrorMessage") or "")))
            attempt += 1
            if not failed:
                break
            if attempt >= self.max_attempts or any(f.error_code in PERMANENT_ERRORS for f in failed):
                raise _bus_error(failed, len(fitted), attempt)
            self._sleep(self._delay(attempt - 1))
            retry = {f.index for f in failed}
            pending = [(i, e) for i, e in enumerate(fitted) if i in retry]
        missing = [i for i, v in enumerate(ids) if v is None]
        if missing:  # pragma: no cover - the loop above either fills every id or raises
            raise BusError(f"no event id for entries {missing}")
        return [v for v in ids if v is not None]


def _detail_stub(detail: Any, ref: dict[str, str]) -> dict:
    """``detail_ref`` plus the detail's small top-level scalars, so routing rules still see them."""
    stub: dict[str, Any] = {}
    if isinstance(detail, Mapping):
        for k, v in detail.items():
            if k == "detail_ref":
                continue
            if isinstance(v, bool | int | float) or v is None or (
                    isinstance(v, str) and len(v.encode()) <= SCALAR_KEEP_BYTES):
                stub[k] = v
    stub["detail_ref"] = ref
    return stub


def resolve_detail(event: Mapping[str, Any], bucket: Bucket | None = None) -> dict:
    """The event with its full detail, fetching an offloaded one (``detail.detail_ref``) from the bucket.

    Receivers of any event that may have been large call this first; an event without a ``detail_ref``
    comes back unchanged (copied). ``bucket`` is used when it is the referenced bucket, else S3 is asked.
    """
    detail = event.get("detail")
    ref = detail.get("detail_ref") if isinstance(detail, Mapping) else None
    if not isinstance(ref, Mapping):
        return dict(event)
    if bucket is None or bucket.name != ref["bucket"]:
        from cloud.aws.s3 import S3Bucket

        bucket = S3Bucket(str(ref["bucket"]), session.client("s3"))
    full = json.loads(bucket.get(str(ref["key"])))
    return {**event, "detail": full}
