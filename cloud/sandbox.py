"""Process sandboxes: where the local runtime runs a function when it must be able to stop it.

A thread cannot be killed; a process can. A :class:`Sandbox` is one warm Lambda "execution environment": a
child process (spawned, so it shares no locks or connections with the runtime's threads) that imports a
function once and runs one invocation at a time. On Lambda a timed-out invocation's environment is
destroyed; here too: the runtime SIGKILLs the child, so nothing of that attempt runs on, and the next
invocation gets a fresh sandbox.

Each sandbox has its own temp directory (``TMPDIR``, Lambda's per-environment ``/tmp``) under
``<data dir>/tmp/sandbox-<pid>``; it is removed when the sandbox ends, and :func:`remove_stale_tmp`
removes those of sandboxes that were killed with their runtime (``kill -9``), so copies of segments
never pile up. A sandbox also exits on its own once its runtime is gone (it watches its parent).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "Sandbox", "alive", "error_payload", "remove_stale_tmp"]

log = logging.getLogger(__name__)

TMP_PREFIX = "sandbox-"
_SPAWN = multiprocessing.get_context("spawn")


def error_payload(exc: BaseException, request_id: str, error_type: str | None = None) -> dict:
    """What Lambda's Python runtime returns for an unhandled exception."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop the runtime's own frame
    return {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__, "requestId": request_id,
            "stackTrace": traceback.format_list(frames)}


@dataclass(frozen=True)
class Outcome:
    """How one invocation ended: ``result_text`` (JSON) on success, else a Lambda error payload."""

    result: Any = None
    result_text: str | None = None
    error: dict | None = None


def run_handler(function: str, payload: Any, request_id: str, timeout_s: float, memory_mb: int) -> Outcome:
    """Resolve and call ``function`` as Lambda's Python runtime does; never raises."""
    from cloud.functions import FunctionNotFound, LambdaContext, resolve

    context = LambdaContext(function, request_id, timeout_s=timeout_s, memory_mb=memory_mb)
    try:
        handler = resolve(function)
    except FunctionNotFound as exc:
        return Outcome(error=error_payload(exc, request_id, "Runtime.ImportModuleError"))
    try:
        result = handler(payload, context)
    except Exception as exc:
        return Outcome(error=error_payload(exc, request_id))
    try:
        return Outcome(result=result, result_text=json.dumps(result))
    except (TypeError, ValueError) as exc:  # Lambda cannot serialise the response either
        return Outcome(error=error_payload(exc, request_id, "Runtime.MarshalError"))


# -- the child ------------------------------------------------------------------------------------------
def _exit_with_parent(parent: int) -> None:
    """A sandbox never outlives its runtime (a kill -9 of the runtime must not leave work running)."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def tmp_dir(tmp_root: Path, pid: int) -> Path:
    """A sandbox's own temp directory, named by its pid so that a stale one can be told from a live one."""
    return Path(tmp_root) / f"{TMP_PREFIX}{pid}"


def _child_main(conn: Connection, parent: int, tmp_root: str, nice: int, log_level: int,
                preload: tuple[str, ...]) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s [sandbox %(process)d] %(name)s: "
                                                "%(message)s")
    tmp = tmp_dir(Path(tmp_root), os.getpid())
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)  # for child processes (ffmpeg, ...)
    tempfile.tempdir = str(tmp)  # Lambda's per-environment /tmp
    if nice:
        os.nice(nice)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    for name in preload:  # Lambda's init phase: import the handlers before the first invocation waits
        with contextlib.suppress(Exception):  # a broken one fails as Lambda would, when invoked
            from cloud.functions import resolve

            resolve(name)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        function, payload_text, request_id, timeout_s, memory_mb = job
        outcome = run_handler(function, json.loads(payload_text), request_id, timeout_s, memory_mb)
        conn.send((outcome.result_text, outcome.error))


# -- the parent's handle --------------------------------------------------------------------------------
class Sandbox:
    """A child process that runs invocations one at a time; :meth:`invoke` kills it on timeout."""

    def __init__(self, tmp_root: Path, *, nice: int = 0, preload: tuple[str, ...] = ()) -> None:
        self.tmp_root = Path(tmp_root)
        self._kill_lock = threading.Lock()
        self._conn, child_conn = _SPAWN.Pipe()
        self.process = _SPAWN.Process(target=_child_main, name="corb-sandbox", daemon=True,
                                      args=(child_conn, os.getpid(), str(self.tmp_root), nice,
                                            logging.getLogger().level, tuple(preload)))
        self.process.start()
        child_conn.close()
        self._tmp: Path | None = tmp_dir(self.tmp_root, self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def invoke(self, function: str, payload_text: str, request_id: str, timeout_s: float,
               memory_mb: int) -> Outcome:
        """Run one invocation; past ``timeout_s`` the sandbox is killed (Lambda's ``Sandbox.Timedout``)."""
        started = time.monotonic()
        try:
            self._conn.send((function, payload_text, request_id, timeout_s, memory_mb))
            if self._conn.poll(timeout_s):
                result_text, error = self._conn.recv()
                if error is not None:
                    return Outcome(error=error)
                return Outcome(result=json.loads(result_text), result_text=result_text)
        except (EOFError, OSError, BrokenPipeError):
            self.kill()
            code = self.process.exitcode
            exc = RuntimeError(f"the function's process exited (code {code}) before it returned")
            return Outcome(error=error_payload(exc, request_id, "Runtime.ExitError"))
        self.kill()
        elapsed = time.monotonic() - started
        exc = TimeoutError(f"Task timed out after {elapsed:.2f} seconds")
        return Outcome(error=error_payload(exc, request_id, "Sandbox.Timedout"))

    def kill(self) -> None:
        """Stop the child at once (SIGKILL) and remove its temp directory. Idempotent, and safe to call
        from another thread while :meth:`invoke` waits (``LocalRuntime.stop`` does)."""
        with self._kill_lock:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(5)
            if not self._conn.closed:
                with contextlib.suppress(OSError):
                    self._conn.close()
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def close(self) -> None:
        """Ask an idle child to exit; kill it if it does not within a second."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self.process.join(1)
        self.kill()


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): it exists
    return state != "Z"


def remove_stale_tmp(tmp_root: Path) -> int:
    """Remove the temp directories of sandboxes whose process is gone; returns how many."""
    root = Path(tmp_root)
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        if not entry.name.startswith(TMP_PREFIX):
            continue
        pid_text = entry.name[len(TMP_PREFIX):]
        if pid_text.isdigit() and alive(int(pid_text)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    if removed:
        log.info("removed %d temp folder(s) left by sandboxes that were killed", removed)
    return removed
