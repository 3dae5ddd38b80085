"""The agent: one recording thread per camera (plus one per sub-stream) and one uploader for all.

A camera that fails never stops the others: each has its own thread, connection and backoff. ``stop()``
(SIGTERM) closes every segment being written as a complete file, uploads what is complete for a few
seconds more (and each camera's status, now "error: the camera agent was stopped"), and returns; what
could not go up stays in the spool for the next start.
"""

from __future__ import annotations

import logging
import threading
import time

from agent.camera import Camera
from agent.settings import AgentSettings, CameraSource
from agent.spool import Spool
from agent.status import StatusBoard
from agent.uploader import Uploader
from agent.writer import SegmentStats
from cloud.bucket import Bucket

log = logging.getLogger("corb.agent")
STOPPED = "the camera agent was stopped"


class Agent:
    def __init__(self, sources: list[CameraSource], settings: AgentSettings, bucket: Bucket) -> None:
        self.settings = settings
        self.stop_event = threading.Event()
        self.spool = Spool(settings.spool, settings.spool_cap_bytes)
        now = time.time()
        self.boards = {s.slug: StatusBoard(s.slug, now) for s in sources}
        self.uploader = Uploader(bucket, self.spool, list(self.boards.values()))
        self.cameras = [Camera(s, settings, self.spool, self.boards[s.slug], self.stop_event, self._segment)
                        for s in sources]
        self._upload_stop = threading.Event()
        self._upload_thread = threading.Thread(target=self.uploader.run, args=(self._upload_stop,),
                                               name="agent-uploader", daemon=True)

    def _segment(self, _stats: SegmentStats) -> None:
        self.uploader.wake.set()

    def start(self) -> Agent:
        self.spool.remove_partials()
        waiting = self.spool.pending()
        if waiting:
            log.info("%d segments waiting in the spool from an earlier run: they go first", len(waiting))
        self._upload_thread.start()
        for camera in self.cameras:
            camera.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish current segments, upload what is complete within ``timeout``, stop."""
        deadline = time.monotonic() + timeout
        self.stop_event.set()
        for camera in self.cameras:
            camera.thread.join(timeout=max(0.1, deadline - time.monotonic() - 1.0))
        for board in self.boards.values():  # "online" would no longer be true
            board.set_state("error", STOPPED, time.time())
        self._upload_stop.set()
        self.uploader.wake.set()
        self._upload_thread.join(timeout=max(0.1, deadline - time.monotonic()))
        if not self._upload_thread.is_alive():
            self.uploader.run_once()  # anything the last segments added
        left = len(self.spool.pending())
        if left:
            log.warning("%d segments left in the spool %s: they go at the next start", left, self.spool.root)
