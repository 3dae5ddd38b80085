"""Where the running ``corb serve`` of a data directory listens: ``$CORB_DATA_DIR/serve.json``.

``corb sms`` and ``corb outbox`` run in another shell, often without the ``CORB_PORT`` the server was
started with; guessing the port posted to the wrong server (a 403) or to nothing. The server records
itself at start and removes the record at stop; readers trust a record only while its process lives.
Standard library only: the CLI imports this before anything heavy.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FILE = "serve.json"


@dataclass(frozen=True)
class Server:
    """A live server: ``url`` to connect to, ``public_url`` the base Twilio signs requests against."""

    url: str
    public_url: str
    pid: int


def _path(config: Any) -> Path:
    return Path(config.data_dir) / FILE


def _reachable(url: str) -> str:
    """A listening address one can connect to: a wildcard bind (0.0.0.0, ::) is reached on loopback."""
    parts = urlsplit(url)
    if parts.hostname in ("0.0.0.0", "::", ""):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts).rstrip("/")


def record(config: Any, url: str, pid: int) -> None:
    """Say that process ``pid`` serves ``config``'s data directory at ``url`` (written atomically)."""
    path = _path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"url": _reachable(url), "public_url": config.base_url, "pid": pid}
    fd, tmp = tempfile.mkstemp(prefix=".serve-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clear(config: Any) -> None:
    """Remove this process's record (never another live server's)."""
    found = _read(_path(config))
    if found is None or found.pid == os.getpid() or not _alive(found.pid):
        _path(config).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _read(path: Path) -> Server | None:
    try:
        body = json.loads(path.read_text())
        return Server(str(body["url"]), str(body["public_url"]), int(body["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_server(config: Any) -> Server | None:
    """The live server of ``config``'s data directory, or None (no record, or its process is gone)."""
    found = _read(_path(config))
    return found if found is not None and found.pid > 0 and _alive(found.pid) else None


def find(config: Any) -> str | None:
    """The URL of the live server of ``config``'s data directory, or None."""
    found = find_server(config)
    return found.url if found else None
