"""Fixtures for the runtime tests: a declaration written on the fly, sessions, runtimes that stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_for_tests
import pytest
from cloud_helpers import STAGE, write_declaration
from sqlalchemy.orm import sessionmaker

from cloud.db import make_engine, make_sessionmaker
from cloud.declaration import Declaration, load_declaration
from cloud.runtime import LocalRuntime


@pytest.fixture
def declare(tmp_path: Path) -> Callable[..., Declaration]:
    """``declare(events, **options)`` writes a declaration for stage ``test`` and loads it."""
    def make(events: list[dict], **options: Any) -> Declaration:
        return load_declaration(STAGE, write_declaration(tmp_path / "declaration", events, **options))

    return make


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def make_runtime(sessions: sessionmaker) -> Iterator[Callable[..., LocalRuntime]]:
    """Runtimes with test-sized timings (fast backoff and polling); all stopped at teardown."""
    made: list[LocalRuntime] = []

    def make(declaration: Declaration, **kwargs: Any) -> LocalRuntime:
        options = {"workers": 4, "poll_interval": 0.05, "backoff_base": 0.05, "lease_s": 5.0,
                   "schedules": False, **kwargs}
        runtime = LocalRuntime(kwargs.pop("sessions", sessions), declaration,
                               **{k: v for k, v in options.items() if k != "sessions"})
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.stop(timeout=10)


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    functions_for_tests.reset()
