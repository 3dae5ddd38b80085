"""Which files in a folder a writer has finished: the kernel's close-after-write, through watchdog (inotify).

A slow writer that pauses longer than any settle time still holds its file open; only the close tells
that the file is complete. :class:`WriteTracker` records, per path, the last write (``IN_MODIFY``) and the
last close-after-write (``IN_CLOSE_WRITE``) or rename into place; a file is complete once the close came
after the last write. On systems without inotify the tracker is inactive and says "unknown", and the
bucket watcher falls back to its settle rule.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Literal

from watchdog.events import (
    FileClosedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

__all__ = ["WriteTracker"]

log = logging.getLogger(__name__)

State = Literal["writing", "closed", "unknown"]


class WriteTracker(FileSystemEventHandler):
    """Tracks writes and closes under ``root`` (recursively) while started."""

    def __init__(self, root: Path, on_complete: threading.Event | None = None) -> None:
        self.root = Path(root)
        self.on_complete = on_complete  # set whenever a file is closed or renamed into place
        self._writes: dict[str, float] = {}
        self._closes: dict[str, float] = {}
        self._lock = threading.Lock()
        self._observer = None

    @property
    def active(self) -> bool:
        return self._observer is not None

    def start(self) -> bool:
        """Watch with inotify; False (and inactive) where the kernel cannot report closes."""
        try:
            from watchdog.observers.inotify import InotifyObserver
        except (ImportError, OSError):
            return False
        try:
            self.root.mkdir(parents=True, exist_ok=True)  # an empty bucket is watched from the start
            observer = InotifyObserver()
            observer.schedule(self, str(self.root), recursive=True,
                              event_filter=[FileModifiedEvent, FileClosedEvent, FileMovedEvent,
                                            FileDeletedEvent])
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit
            log.warning("cannot watch %s for closes (%s): falling back to the settle time", self.root, exc)
            return False
        self._observer = observer
        return True

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
            self._observer = None

    def _key(self, path: str | bytes) -> str | None:
        text = os.fsdecode(path)
        try:
            return Path(text).relative_to(self.root).as_posix()
        except ValueError:
            return None

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        now = time.monotonic()
        with self._lock:
            if isinstance(event, FileMovedEvent):
                self._forget(self._key(event.src_path))
                dest = self._key(event.dest_path)
                if dest is not None:
                    self._closes[dest] = now  # renamed into place: complete (the atomic writers' way)
                    self._completed()
                return
            key = self._key(event.src_path)
            if key is None:
                return
            if isinstance(event, FileDeletedEvent):
                self._forget(key)
            elif isinstance(event, FileClosedEvent):
                self._closes[key] = now
                self._completed()
            elif isinstance(event, FileModifiedEvent):  # not "created": a file already complete when
                self._writes[key] = now  # its new folder got its watch is reported as created too

    def _completed(self) -> None:
        if self.on_complete is not None:
            self.on_complete.set()

    def _forget(self, key: str | None) -> None:
        if key is not None:
            self._writes.pop(key, None)
            self._closes.pop(key, None)

    def state(self, key: str) -> State:
        """``closed`` once a close-after-write followed the last write, ``writing`` before that,
        ``unknown`` when no event was seen (the file predates the tracker, or it is inactive)."""
        with self._lock:
            wrote, closed = self._writes.get(key), self._closes.get(key)
        if wrote is None and closed is None:
            return "unknown"
        if closed is not None and (wrote is None or closed >= wrote):
            return "closed"
        return "writing"

    def forget(self, key: str) -> None:
        with self._lock:
            self._forget(key)
