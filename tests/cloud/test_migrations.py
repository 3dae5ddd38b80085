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
    assert _tables(database_url) >= EXPECTED  # the fixture database is migrated to head
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    upgrade(database_url)
    assert _tables(database_url) >= EXPECTED


def test_models_match_migrations(sqlite_url: str) -> None:
    """A model change without its migration would pass on a fresh ``create_all`` and fail in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import bot.models  # noqa: F401
    import cloud.models  # noqa: F401
    from cloud.db import Base

    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
