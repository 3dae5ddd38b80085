"""The folder bucket's S3 notifications: a poller that turns new objects into ``ObjectCreated:Put`` events.

Polling finds the objects (portable, and it catches up after a restart); the kernel says when they are
complete. An object is notified only once it is completely written: FolderBucket writes a ``.incoming-*``
temp file and renames it (ignored until then); a file written in place by anything else is complete
once its writer closed it (close-after-write, seen by :class:`cloud.writes.WriteTracker` while the
watcher thread runs), however long the writer pauses between chunks: one notification per file, not one
per pause. A writer that keeps a file open without writing for ``stale_s`` is taken as done (its
object is notified then, and again if it writes more: S3 semantics of a new PUT). Where closes cannot be
seen (no inotify, files that predate the watcher, ``poll()`` without ``start()``), the size and mtime
must stay the same across two polls at least ``settle_s`` apart.

Each notification is an async invocation of every matching S3 trigger's function with
``{"Records": [record]}``, queued in the same transaction that records ``bucket:key:eTag`` in
``processed_keys`` (scope ``s3-notify``): a restart does not notify again, a changed object (new eTag) is
notified again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import sessionmaker

from cloud import local_bus
from cloud.bucket import md5_file
from cloud.events import s3_record
from cloud.idempotency import first_time, seen
from cloud.local_bus import enqueue
from cloud.writes import WriteTracker

if TYPE_CHECKING:
    from cloud.bucket import FolderBucket
    from cloud.declaration import Declaration

__all__ = ["BucketWatcher", "SCOPE"]

log = logging.getLogger(__name__)

SCOPE = "s3-notify"
STAT_SCOPE = "s3-stat"  # size+mtime already notified: a restart need not re-hash every object
EVENT_NAME = "ObjectCreated:Put"
TEMP_PREFIX = ".incoming-"

Stat = tuple[int, int]  # size, mtime_ns



class BucketWatcher:
    """Polls a FolderBucket's directory and queues S3 notifications for the declared S3 triggers."""

    def __init__(self, bucket: FolderBucket, declaration: Declaration, sessions: sessionmaker, *,
                 interval: float = 1.0, settle_s: float | None = None, stale_s: float = 60.0) -> None:
        self.bucket = bucket
        self.root = Path(bucket.root)
        self.declaration = declaration
        self.sessions = sessions
        self.interval = interval
        self.settle_s = interval if settle_s is None else settle_s
        self.stale_s = stale_s
        self._wake = threading.Event()  # a file was closed or renamed into place: look now
        self.writes = WriteTracker(self.root, on_complete=self._wake)
        self._seen: dict[str, tuple[Stat, float]] = {}  # key -> (stat, when that stat was first seen)
        self._done: dict[str, Stat] = {}  # key -> stat already notified (or known notified)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_sequencer = 0

    # -- scanning ----------------------------------------------------------------------------------
    def _scan_roots(self) -> list[Path]:
        """The folders that can hold a trigger's objects: a trigger's prefix up to its last ``/``. Only
        these are walked each second; the rest of the bucket (a month of snapshots: tens of thousands of
        files) never is."""
        folders = {t.prefix.rpartition("/")[0] for t in self.declaration.s3_triggers}
        if "" in folders:
            return [self.root]
        nested = {f for f in folders if any(f.startswith(o + "/") for o in folders if o != f)}
        return [self.root / f for f in sorted(folders - nested)]

    def _scan(self) -> dict[str, Stat]:
        found: dict[str, Stat] = {}
        for top in self._scan_roots():
            self._walk(top, found)
        return found

    def _walk(self, top: Path, found: dict[str, Stat]) -> None:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath, name)
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                found[path.relative_to(self.root).as_posix()] = (st.st_size, st.st_mtime_ns)

    def poll(self) -> int:
        """One pass: notify objects that became complete since the last pass; returns how many."""
        with self._lock:
            now = time.monotonic()
            current = self._scan()
            for key in set(self._seen) - set(current):
                self._seen.pop(key, None)
                self._done.pop(key, None)
                self.writes.forget(key)
            notified = 0
            for key, stat in current.items():
                if self._done.get(key) == stat or not self.declaration.s3_targets(key, EVENT_NAME):
                    continue
                previous = self._seen.get(key)
                if previous is None and self.writes.state(key) == "closed":
                    previous = (stat, now)  # its writer closed it (or renamed it into place): complete now
                elif previous is None or previous[0] != stat:
                    self._seen[key] = (stat, now)  # new or still changing: look again next poll
                    continue
                if not self._complete(key, now - previous[1]):
                    continue
                try:
                    notified += self._notify(key, stat)
                except FileNotFoundError:
                    self._seen.pop(key, None)
            return notified

    def _complete(self, key: str, stable_s: float) -> bool:
        """Whether an object whose size and mtime held for ``stable_s`` is completely written."""
        state = self.writes.state(key)
        if state == "closed":
            return True
        if state == "writing":  # its writer still holds it open, however long it pauses
            return stable_s >= self.stale_s
        return stable_s >= self.settle_s

    def pending(self) -> int:
        """Objects seen but not yet notified (still being written, or waiting for a second look)."""
        with self._lock:
            return sum(1 for key, (stat, _) in self._seen.items() if self._done.get(key) != stat)

    # -- notifying ---------------------------------------------------------------------------------
    def _sequencer(self) -> str:
        """S3's sequencer: hex that grows with each event for a key (here: for every event)."""
        self._last_sequencer = max(time.time_ns(), self._last_sequencer + 1)
        return f"{self._last_sequencer:016X}"

    def _notify(self, key: str, stat: Stat) -> int:
        path = self.root / key
        stat_key = f"{self.bucket.name}:{key}:{stat[0]}:{stat[1]}"
        with self.sessions() as session:
            if seen(session, STAT_SCOPE, stat_key):
                self._done[key] = stat
                return 0
        etag = md5_file(path)
        st = path.stat()
        if (st.st_size, st.st_mtime_ns) != stat:  # changed while hashing: not complete after all
            self._seen[key] = ((st.st_size, st.st_mtime_ns), time.monotonic())
            return 0
        targets = self.declaration.s3_targets(key, EVENT_NAME)
        record = s3_record(self.bucket.name, key, size=stat[0], etag=etag, sequencer=self._sequencer(),
                           event_name=EVENT_NAME, time=datetime.fromtimestamp(stat[1] / 1e9, UTC))
        with self.sessions() as session, session.begin():
            first_time(session, STAT_SCOPE, stat_key)
            fresh = first_time(session, SCOPE, f"{self.bucket.name}:{key}:{etag}")
            if fresh:
                for trigger in targets:
                    enqueue(session, trigger.function, {"Records": [record]}, trigger="s3")
        self._done[key] = stat
        self.writes.forget(key)
        if not fresh:
            log.debug("s3://%s/%s (eTag %s) was already notified", self.bucket.name, key, etag)
            return 0
        log.info("s3://%s/%s (eTag %s) -> %s", self.bucket.name, key, etag,
                 ", ".join(t.function for t in targets))
        local_bus.notify()
        return 1

    # -- thread ------------------------------------------------------------------------------------
    def start(self) -> BucketWatcher:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        closes = self.writes.start()
        self._thread = threading.Thread(target=self._run, name="corb-bucket-watcher", daemon=True)
        self._thread.start()
        rule = "close-after-write" if closes else f"{self.settle_s:g} s unchanged"
        log.info("watching %s every %.1fs (complete: %s)", self.root, self.interval, rule)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("bucket watcher: poll failed (retrying)")
            self._wake.wait(self.interval)  # a close or rename wakes it at once: segments go on without delay
            self._wake.clear()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self.writes.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
