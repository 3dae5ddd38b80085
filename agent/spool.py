"""The on-disk spool: complete segments wait here, under their bucket key, until they are uploaded.

A segment is recorded to ``<key>.part`` and renamed to ``<key>`` once closed, flushed and fsynced, so a
``kill -9`` (or power loss) leaves at most one ``.part`` per camera, which the next start deletes: only
complete files are ever uploaded. File names ARE the keys, so a restart uploads exactly what was waiting,
under the same keys. The spool has a size cap: past it the oldest segments are dropped, each one logged.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from cloud.lifecycle import CAMERAS, QUIET

log = logging.getLogger("corb.agent")
PART = ".part"
PREFIXES = (CAMERAS, QUIET)  # segments to analyse, still ones (see agent.segmenter)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: Path, cap_bytes: int) -> None:
        self.root = Path(root)
        self.cap_bytes = cap_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.dropped: list[str] = []

    def path_for(self, key: str) -> Path:
        if not key.startswith(PREFIXES) or ".." in key.split("/"):
            raise ValueError(f"not a segment key: {key!r}")
        return self.root / key

    def part_path(self, key: str) -> Path:
        """Where a segment is recorded before it is complete."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(path.name + PART)

    def remove_partials(self) -> list[Path]:
        """Delete half-recorded files left by a crash (call before recording starts)."""
        parts = sorted(self.root.rglob(f"*{PART}"))
        for p in parts:
            p.unlink(missing_ok=True)
            log.warning("deleted %s: its recording was cut off", p.relative_to(self.root).as_posix())
        return parts

    def commit(self, part: Path, key: str) -> Path:
        """Make a closed ``.part`` file a complete segment: fsync, rename, fsync the folder; then the cap."""
        final = self.path_for(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with part.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, final)
        _fsync_dir(final.parent)
        self.enforce_cap()
        return final

    def pending(self) -> list[str]:
        """Complete segments waiting, oldest capture first (the key's time, then camera); a still segment
        waits under its ``quiet/`` key."""
        with self._lock:
            keys = [p.relative_to(self.root).as_posix()
                    for prefix in PREFIXES for p in self.root.glob(f"{prefix}*/*.mkv")]
        return sorted(keys, key=lambda k: (k.rsplit("/", 1)[-1], k))

    def done(self, key: str) -> None:
        """The segment is in the bucket: remove it here."""
        with self._lock:
            self.path_for(key).unlink(missing_ok=True)

    def enforce_cap(self) -> None:
        """Drop the oldest segments until the spool fits its cap (the newest one always stays)."""
        keys = self.pending()
        sizes = {}
        for k in keys:
            try:
                sizes[k] = self.path_for(k).stat().st_size
            except FileNotFoundError:
                continue
        total = sum(sizes.values())
        for key in [k for k in keys if k in sizes][:-1]:
            if total <= self.cap_bytes:
                break
            with self._lock:
                self.path_for(key).unlink(missing_ok=True)
            total -= sizes[key]
            self.dropped.append(key)
            log.warning("spool full (cap %.1f MB): dropped the oldest segment %s (%d bytes), never uploaded",
                        self.cap_bytes / 1e6, key, sizes[key])
