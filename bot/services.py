"""The surroundings every bot function needs, built once per process from the configuration.

Functions are Lambda-shaped (``handler(event, context)``), so they cannot take their dependencies as
arguments; they call ``services()`` instead. A warm Lambda or the local runtime reuses one instance;
tests build their own with ``use_services``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.config import Config, load_config
from cloud.db import make_engine, make_sessionmaker

if TYPE_CHECKING:
    from bot.messenger import Messenger
    from cloud.bucket import Bucket
    from cloud.bus import Bus


@dataclass
class Services:
    config: Config
    _overrides: dict = field(default_factory=dict)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.config.database_url)

    @cached_property
    def sessions(self) -> sessionmaker:
        return make_sessionmaker(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    @cached_property
    def bucket(self) -> Bucket:
        if "bucket" in self._overrides:
            return self._overrides["bucket"]
        from cloud.adapters import open_bucket

        return open_bucket(self.config)

    @cached_property
    def bus(self) -> Bus:
        if "bus" in self._overrides:
            return self._overrides["bus"]
        from cloud.adapters import open_bus

        return open_bus(self.config, sessions=self.sessions)

    @cached_property
    def messenger(self) -> Messenger:
        if "messenger" in self._overrides:
            return self._overrides["messenger"]
        from bot.messenger import open_messenger

        return open_messenger(self)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


_lock = threading.Lock()
_current: Services | None = None


def services() -> Services:
    global _current
    with _lock:
        if _current is None:
            _current = Services(load_config())
        return _current


def use_services(svc: Services | None) -> Services | None:
    """Install ``svc`` as the process's services (tests, ``corb serve``); returns the previous one."""
    global _current
    with _lock:
        previous, _current = _current, svc
        return previous
