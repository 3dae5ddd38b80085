"""The small status object the agent keeps per camera in the bucket: ``cameras/<slug>/agent.json``.

Written when the camera's state changes (and once more when a connection's first segment is complete, so
that its bitrate is known), after each quiet segment is uploaded, and once a segment_s (a minute) while one
is recorded: a quiet segment goes to ``quiet/`` unanalysed and only once it ends (up to 5 minutes), so no
detection result says that video came, and ``video_until`` does: the capture time up to which the agent
holds the camera's video, in the bucket or, while a quiet segment records, in its spool (camera health
counts it). The admin Cameras page and the offline SMS read it. Errors are redacted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

from agent.redact import redact_url
from agent.writer import iso_time

STATES = ("online", "connecting", "error", "stopped")  # stopped: the camera was taken off recording


def status_key(slug: str) -> str:
    return f"cameras/{slug}/agent.json"





@dataclass
class CameraStatus:
    state: str
    error: str | None
    since: str
    updated: str
    last_segment_key: str | None = None
    last_segment_at: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_bps: int | None = None
    video_until: str | None = None  # capture time up to which this camera's video is in the bucket

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode() + b"\n"


class StatusBoard:
    """One camera's status; ``version`` says when a new one is owed to the bucket, and ``on_change`` (the
    uploader's wake-up) is called then: a status that waited for the uploader's next round (up to 5 s)
    could outlast a short health grace."""

    def __init__(self, slug: str, now: float, on_change: Callable[[], object] | None = None) -> None:
        self.slug = slug
        self.on_change = on_change
        self._lock = threading.Lock()
        self.status = CameraStatus("connecting", None, iso_time(now), iso_time(now))
        self.version = 1  # the uploader writes the latest version it has not written yet
        self._ends: dict[str, tuple[float, bool]] = {}  # recorded, not uploaded: key -> (capture end, told)
        self._until: float | None = None  # video_until, as a time
        self._covered = now  # video up to here is said, or will be: a finished segment, or recorded()

    def set_state(self, state: str, error: str | None, now: float, **fmt: object) -> bool:
        """Enter ``state``; True (and a new version) if the state or error changed or ``fmt`` is new."""
        assert state in STATES
        error = redact_url(error) if error else None
        with self._lock:
            s = self.status
            new_fmt = {k: v for k, v in fmt.items() if getattr(s, k) != v}
            if s.state == state and s.error == error and not new_fmt:
                return False
            if s.state != state:
                s.since = iso_time(now)
            s.state, s.error, s.updated = state, error, iso_time(now)
            for k, v in new_fmt.items():
                setattr(s, k, v)
            self.version += 1
        self._wake()
        return True

    def segment(self, key: str, at: float, end: float, told: bool = False) -> None:
        """Remember the latest segment (written with the next state change) and when it ends; ``told``: an
        analysed segment that follows at once will tell the cloud of that end (a quiet stretch split where
        someone appeared), so its upload owes no version."""
        with self._lock:
            self.status.last_segment_key, self.status.last_segment_at = key, iso_time(at)
            self._ends[key] = (end, told)
            self._covered = max(self._covered, end)  # its upload (quiet) or its detection will say so

    def uploaded(self, key: str) -> bool:
        """``key`` is in the bucket: its video counts from now on. True (a new version, written next) for
        a quiet segment under ``quiet/``, whose arrival nothing else tells the cloud."""
        with self._lock:
            end, told = self._ends.pop(key, (None, False))
            if end is None:
                return False
            self._advance(end)
            if not key.startswith("quiet/") or told:
                return False
            self.version += 1
            return True

    def recorded(self, until: float, every: float) -> bool:
        """The camera's video is recorded up to ``until`` into a quiet segment, which reaches the bucket
        only when it ends (up to ``SegmentSettings.quiet_segment_s``): say so once ``every`` seconds of it
        (``segment_s``, the longest that video otherwise goes unannounced, which camera health's grace
        allows for) are covered by nothing else. True when a new version is owed."""
        with self._lock:
            if until - self._covered < every:
                return False
            self._covered = until
            self._advance(until)
            self.version += 1
        self._wake()
        return True

    def _advance(self, until: float) -> None:
        """``video_until`` moves forward only (the lock held)."""
        if self._until is None or until > self._until:
            self._until = until
            self.status.video_until = iso_time(until)

    def _wake(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def snapshot(self) -> tuple[int, bytes]:
        with self._lock:
            return self.version, self.status.to_json()
