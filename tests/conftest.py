"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, and Services built on it.

PostgreSQL runs on 127.0.0.1:5432 with trust auth (this machine and CI). Each test gets a fresh
database cloned from a migrated template, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cloud.migrate import upgrade

PG_ADMIN = os.environ.get("CORB_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_url(dbname: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname


def _pg_exec(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"corb_tpl_{os.getpid()}"
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}"')
    _pg_exec(f'CREATE DATABASE "{name}"')
    upgrade(_pg_url(name))
    yield name
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "corb.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "corb.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    template = request.getfixturevalue("pg_template")
    name = f"corb_t_{uuid.uuid4().hex[:12]}"
    _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database: every test using it runs once on each engine."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def corb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean Corb environment in a temporary data directory (no Twilio, no AWS)."""
    for var in list(os.environ):
        if var.startswith(("CORB_", "TWILIO_")) or var == "DATABASE_URL":
            monkeypatch.delenv(var, raising=False)
    env = {"CORB_DATA_DIR": str(tmp_path / "data"), "TWILIO_AUTH_TOKEN": "test-auth-token",
           "CORB_SECRET_KEY": "test-secret"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def services(corb_env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch):
    """``bot.services.Services`` on a fresh database, installed as the process's services."""
    from bot.services import Services, use_services
    from cloud.config import load_config

    monkeypatch.setenv("DATABASE_URL", database_url)
    svc = Services(load_config())
    previous = use_services(svc)
    yield svc
    use_services(previous)
    svc.close()


@pytest.fixture
def app(services):  # noqa: ANN001, ANN201
    """The Flask app on ``services``, in testing mode."""
    from bot import create_app

    app = create_app(services)
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()
