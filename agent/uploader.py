"""Move complete segments from the spool to the bucket, in capture order, and keep each camera's status
object current. One thread for all cameras: order is kept, and a failing bucket is retried with backoff
without blocking recording.

Each key is uploaded once: the spool file is deleted right after the bucket accepted it. A crash between
the two re-uploads the same key with the same bytes on restart; that is the same object version's content
(same MD5 eTag), which the detection handler dedupes on (bucket + key + eTag), so no second segment and no
second analysis result appear. The agent needs only ``s3:PutObject`` (no read-back): segments go up with
one ``put`` whose returned eTag is checked against the file's MD5.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

from agent.spool import Spool
from agent.status import StatusBoard, status_key
from cloud.bucket import Bucket

log = logging.getLogger("corb.agent")


class Uploader:
    def __init__(self, bucket: Bucket, spool: Spool, boards: list[StatusBoard], *,
                 backoff_s: tuple[float, float] = (0.5, 10.0),
                 on_uploaded: Callable[[str], None] | None = None) -> None:
        self.bucket = bucket
        self.spool = spool
        self.boards = boards
        self.backoff_s = backoff_s
        self.on_uploaded = on_uploaded
        self.wake = threading.Event()
        self._written: dict[str, int] = {}
        self._failing: str | None = None
        self.uploaded: list[str] = []

    def _put_segment(self, key: str) -> bool:
        try:
            data = self.spool.path_for(key).read_bytes()
        except FileNotFoundError:
            return True  # dropped by the cap meanwhile
        info = self.bucket.put(key, data, "video/x-matroska")
        if info.etag and "-" not in info.etag and info.etag != hashlib.md5(data).hexdigest():
            raise OSError(f"{key}: the bucket stored different bytes (eTag {info.etag})")
        self.spool.done(key)
        for board in self.boards:
            if key.split("/", 2)[1] == board.slug:
                board.uploaded(key)
        self.uploaded.append(key)
        log.info("uploaded %s (%d bytes)", key, len(data))
        if self.on_uploaded:
            self.on_uploaded(key)
        return True

    def _put_statuses(self) -> None:
        for board in self.boards:
            version, body = board.snapshot()
            if self._written.get(board.slug) != version:
                self.bucket.put(status_key(board.slug), body, "application/json")
                self._written[board.slug] = version

    def run_once(self) -> bool:
        """Upload what is waiting, oldest first; False (nothing skipped ahead) at the first failure."""
        try:
            self._put_statuses()
            for key in self.spool.pending():
                self._put_segment(key)
                self._put_statuses()
        except Exception as exc:  # noqa: BLE001 - any bucket failure: keep the spool, retry later
            reason = f"{type(exc).__name__}: {exc}"
            if self._failing is None:
                log.error("bucket %s unreachable, segments wait in the spool: %s", self.bucket.name, reason)
            self._failing = reason
            return False
        if self._failing is not None:
            log.info("bucket %s reachable again", self.bucket.name)
            self._failing = None
        return True

    def run(self, stop: threading.Event) -> None:
        delay = self.backoff_s[0]
        while not stop.is_set():
            ok = self.run_once()
            delay = self.backoff_s[0] if ok else min(delay * 2, self.backoff_s[1])
            self.wake.wait(timeout=5.0 if ok else delay)
            self.wake.clear()
