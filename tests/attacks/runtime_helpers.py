"""What the runtime attack tests share: declarations of ``runtime_functions``, runtimes that always stop,
and a ``corb serve`` process with signed webhooks (the other attack files own ``conftest.py``)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cloud"))  # cloud_helpers

from cloud_helpers import STAGE, write_declaration  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from cloud.db import make_engine, make_sessionmaker  # noqa: E402
from cloud.declaration import Declaration, load_declaration  # noqa: E402
from cloud.runtime import LocalRuntime  # noqa: E402
from cloud.sandbox import alive  # noqa: E402, F401 - the tests import it from here

FN = "runtime_functions."
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-auth-token"
MEMBER = "+15550000002"


def rule(name: str, function: str, source: str) -> dict:
    return {"function": FN + function,
            "event_source": {"arn": f"arn:aws:events:us-east-1:000000000000:rule/{name}", "rule_name": name,
                             "event_pattern": {"source": [source]}}}


def declare(root: Path, events: list[dict], *, retries: int = 2, stages: dict | None = None,
            **settings: Any) -> Declaration:
    destinations = {"defaults": {"maximum_retry_attempts": retries, "on_success": "bus", "on_failure": "bus"},
                    "stages": {STAGE: {}, **{name: {} for name in stages or {}}}}
    return load_declaration(STAGE, write_declaration(root, events, destinations=destinations, stages=stages,
                                                     **settings))


@contextmanager
def runtime(database_url: str, declaration: Declaration, **options: Any) -> Iterator[LocalRuntime]:
    engine = make_engine(database_url)
    rt = LocalRuntime(make_sessionmaker(engine), declaration, **{
        "poll_interval": 0.05, "backoff_base": 0.05, "lease_s": 5.0, "schedules": False, **options})
    try:
        yield rt
    finally:
        rt.stop(timeout=5)
        engine.dispose()


def sessions_for(database_url: str) -> sessionmaker:
    return make_sessionmaker(make_engine(database_url))


# -- corb serve ------------------------------------------------------------------------------------------
def serve_env(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CORB_", "TWILIO_")) and k != "DATABASE_URL"}
    env.update(CORB_DATA_DIR=str(data_dir), DATABASE_URL=database_url, TWILIO_AUTH_TOKEN=TOKEN,
               CORB_SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
    return env


class Serve:
    """``corb serve --port 0`` in a process group of its own, its log in a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self.fh = log.open("ab")
        self.offset = self.fh.tell()  # the log may hold an earlier run's lines
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "serve", "--port", "0", *args],
                                     cwd=ROOT, env=env, stdout=self.fh, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[self.offset:].decode(errors="replace")
            found = re.findall(r"running at (http://\S+)", text)
            if found and self.proc.poll() is None:
                return found[-1]
            if self.proc.poll() is not None:
                raise AssertionError(f"corb serve exited ({self.proc.returncode}):\n{text}")
            time.sleep(0.1)
        raise AssertionError(f"corb serve did not start:\n{self.log.read_text(errors='replace')}")

    def post_sms(self, body: str, sender: str = MEMBER, sid: str | None = None) -> int:
        from twilio.request_validator import RequestValidator

        form = {"MessageSid": sid or "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": sender,
                "To": "+15550001000", "Body": body, "NumMedia": "0"}
        signature = RequestValidator(TOKEN).compute_signature(self.url + "/sms", form)
        request = Request(self.url + "/sms", data=urlencode(form).encode(),
                          headers={"X-Twilio-Signature": signature})
        with urlopen(request, timeout=15) as response:
            return response.status

    def group(self) -> list[int]:
        """Every live process in serve's session (itself, gunicorn, the runtime, sandboxes), from /proc."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid and fields[0] != "Z":  # session id; zombies are gone
                pids.append(int(stat.parent.name))
        return pids

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM; returns how long it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.fh.close()


def seed(database_url: str) -> None:
    """One member and one camera, so that ``status`` gets a real reply from the status handler."""
    from bot.models import Camera, Role, User

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as s, s.begin():
        s.add(User(phone=MEMBER, name="Max", role=Role.member))
        s.add(Camera(slug="lobby", name="Lobby", area="lobby"))
    engine.dispose()


def messages(database_url: str) -> tuple[list[str], list[str]]:
    """(inbound MessageSids from the member, bodies of the replies to the member)."""
    from sqlalchemy import select

    from bot.models import Message

    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as s:
        rows = s.execute(select(Message.direction, Message.sid, Message.body).where(
            (Message.from_number == MEMBER) | (Message.to_number == MEMBER))).all()
    engine.dispose()
    return [r.sid for r in rows if r.direction == "in"], [r.body for r in rows if r.direction == "out"]


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
