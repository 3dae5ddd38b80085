"""The schema migrates up from empty, down to nothing, and up again, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from cloud.db import normalise_url
from cloud.migrate import downgrade, upgrade

EXPECTED = {"users", "cameras", "subscriptions", "detections", "cleaning_requests", "messages",
            "bus_events", "invocations", "processed_keys", "dead_letters"}


def _tables(url: str) -> set[str]:
    engine = create_engine(normalise_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert EXPECTED <= _tables(database_url)  # the fixture database is migrated to head
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    upgrade(database_url)
    assert EXPECTED <= _tables(database_url)
