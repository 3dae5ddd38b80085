"""``corb serve``: a small supervisor that keeps web requests and function work in separate processes.

    corb serve (this process: binds the port, starts, watches and stops its children)
    ├── web       gunicorn, one sync worker per core, serving bot.wsgi:app on the socket bound here
    ├── runtime   ``corb runtime``: the local runtime and bucket watcher; every invocation in a sandbox
    │             process, one pool per Lambda function (stage), detection's at a lower CPU priority
    └── (more)    any further ``Child`` (the camera agent), started and stopped the same way

The socket is bound here, before any child starts, so ``--port 0`` knows its port at once and every
child sees the real ``CORB_PORT`` (signatures and media links use it). Children die with this process
(``PR_SET_PDEATHSIG`` on Linux; the runtime's sandboxes also watch their parent). SIGTERM or SIGINT
stops every child with SIGTERM and, after ``grace_s``, SIGKILL: running functions are handed back to
the queue (see ``LocalRuntime.stop``) and run again on the next start.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Child", "Supervisor", "bind", "default_children"]

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
EARLY_EXIT_S = 5.0  # a child that dies this soon after starting is broken, not unlucky: give up


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when this supervisor dies, even by ``kill -9``."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: the children's own checks remain
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    """One supervised process: restarted if it dies after running a while, fatal if it dies at once."""

    name: str
    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    process: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = field(default=0)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env, pass_fds=self.pass_fds,
                                        preexec_fn=_die_with_parent)  # noqa: PLW1509 - no threads yet
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.process.pid)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0 picks a free one), inheritable so gunicorn can take it over."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _corb(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


def has_camera_agent() -> bool:
    """Whether this Corb has ``corb cameras run`` (the camera agent): serve runs it when it does."""
    from bot.cli import main

    cameras = main.commands.get("cameras")
    return bool(cameras is not None and "run" in getattr(cameras, "commands", {}))


def default_children(sock: socket.socket, *, web_workers: int, workers: int, detection_workers: int,
                     runtime_nice: int = 0) -> list[Child]:
    """The web server, the runtime, and the camera agent where this Corb has one."""
    fd = sock.fileno()
    web = Child("web", [sys.executable, "-m", "gunicorn", "--bind", f"fd://{fd}", "--workers",
                        str(web_workers), "--graceful-timeout", "3", "--log-level", "warning",
                        "bot.wsgi:app"], pass_fds=(fd,))
    runtime = Child("runtime", _corb("runtime", "--workers", str(workers),
                                     "--detection-workers", str(detection_workers),
                                     "--nice", str(runtime_nice)))
    children = [web, runtime]
    if has_camera_agent():
        children.append(Child("camera agent", _corb("cameras", "run", "--follow")))
    return children


class Supervisor:
    """Starts children, restarts one that dies after running a while, stops them all on a signal."""

    def __init__(self, children: list[Child], *, grace_s: float = 5.0, env: dict[str, str] | None = None,
                 echo: Callable[[str], None] = print) -> None:
        self.children = children
        self.grace_s = grace_s
        self.env = dict(os.environ if env is None else env)
        self.echo = echo
        self._stop = False

    def request_stop(self, _signum: int = 0, _frame: object = None) -> None:
        self._stop = True

    def start(self) -> None:
        for child in self.children:
            child.start(self.env)

    def watch(self, interval: float = 0.2) -> int:
        """Until asked to stop: 0 after a stop request, 1 if a child could not stay up."""
        while not self._stop:
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                if time.monotonic() - child.started < EARLY_EXIT_S:
                    self.echo(f"{child.name} exited at start (code {code}); stopping Corb.")
                    return 1
                child.restarts += 1
                self.echo(f"{child.name} exited (code {code}); restarting it.")
                child.start(self.env)
            time.sleep(interval)
        return 0

    def stop(self) -> None:
        """SIGTERM every child, then SIGKILL whatever is still running after ``grace_s``."""
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %.0f s: killing it", proc.pid, self.grace_s)
                proc.kill()
                proc.wait()
