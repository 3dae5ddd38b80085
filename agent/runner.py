"""The agent: one recording thread per camera (plus one per sub-stream) and one uploader for all.

A camera that fails never stops the others: each has its own thread, connection, backoff and stop signal,
so ``update()`` starts, restarts or stops only the cameras whose settings changed. ``stop()``
(SIGTERM) closes every segment being written as a complete file, uploads what is complete for a few
seconds more (and each camera's status, now "error: the camera agent was stopped"), and returns; what
could not go up stays in the spool for the next start.
"""

from __future__ import annotations

import logging
import threading
import time

from agent.camera import Camera
from agent.people import load_person_check
from agent.settings import AgentSettings, CameraSource
from agent.spool import Spool
from agent.status import StatusBoard
from agent.uploader import Uploader
from agent.writer import SegmentStats
from cloud.bucket import Bucket

log = logging.getLogger("corb.agent")
STOPPED = "the camera agent was stopped"
REMOVED = "recording stopped: the camera no longer has a stream to read"


class Agent:
    def __init__(self, sources: list[CameraSource], settings: AgentSettings, bucket: Bucket) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool, settings.spool_cap_bytes)
        self.boards: dict[str, StatusBoard] = {}
        self.uploader = Uploader(bucket, self.spool, [])
        self.cameras: list[Camera] = []
        self._stops: dict[str, threading.Event] = {}  # per camera, so one can stop alone
        self._started = False
        self.people = load_person_check() if settings.person_check else None  # shared by all cameras
        for source in sources:
            self._add(source)
        self._upload_stop = threading.Event()
        self._upload_thread = threading.Thread(target=self.uploader.run, args=(self._upload_stop,),
                                               name="agent-uploader", daemon=True)

    def _segment(self, _stats: SegmentStats) -> None:
        self.uploader.wake.set()

    def _add(self, source: CameraSource) -> Camera:
        board = self.boards.get(source.slug)
        if board is None:
            board = self.boards[source.slug] = StatusBoard(source.slug, time.time(), self.uploader.wake.set)
            self.uploader.boards = list(self.boards.values())  # a new list: the uploader may be iterating
        stop = self._stops[source.slug] = threading.Event()
        camera = Camera(source, self.settings, self.spool, board, stop, self._segment, self.people)
        self.cameras.append(camera)
        return camera

    def update(self, sources: list[CameraSource], timeout: float = 5.0) -> tuple[list[str], list[str]]:
        """Record ``sources`` from now on: cameras that are new or whose settings changed are (re)started,
        removed ones stopped (their segment being written is closed and uploaded); the others go on
        untouched. Returns (started, stopped) slugs."""
        wanted = {s.slug: s for s in sources}
        current = {c.slug: c for c in self.cameras}
        leaving = [c for slug, c in current.items() if wanted.get(slug) != c.source]
        for camera in leaving:
            self._stops.pop(camera.slug).set()
        deadline = time.monotonic() + timeout
        for camera in leaving:
            camera.thread.join(timeout=max(0.1, deadline - time.monotonic()))
            self.cameras.remove(camera)
            if camera.slug not in wanted:
                self.boards[camera.slug].set_state("stopped", REMOVED, time.time())
        starting = [s for slug, s in wanted.items() if slug not in current or current[slug] in leaving]
        for source in starting:
            camera = self._add(source)
            if self._started:
                camera.start()
        self.uploader.wake.set()
        return [s.slug for s in starting], [c.slug for c in leaving if c.slug not in wanted]

    def start(self) -> Agent:
        self.spool.remove_partials()
        waiting = self.spool.pending()
        if waiting:
            log.info("%d segments waiting in the spool from an earlier run: they go first", len(waiting))
        self._upload_thread.start()
        for camera in self.cameras:
            camera.start()
        self._started = True
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Finish current segments, upload what is complete within ``timeout``, stop."""
        deadline = time.monotonic() + timeout
        for stop in self._stops.values():
            stop.set()
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
