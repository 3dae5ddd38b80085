"""Dedupe for at-least-once delivery (contract 4): "have I acted on this key before?", transactionally.

``first_time`` inserts the key in the caller's transaction, so the key and the handler's effect commit
(or roll back) together: a retried or duplicated delivery finds the key and does nothing. Keys are
namespaced by scope (``twilio-sid``, ``s3-notify``, ``event``...); the table's primary key is the stored
``scope:key`` string, hashed when it would not fit.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.db import utcnow
from cloud.models import ProcessedKey

__all__ = ["first_time", "purge", "seen", "stored_key"]

_MAX_KEY = 512  # processed_keys.key is String(512)


def stored_key(scope: str, key: str) -> str:
    """The primary key stored for ``key`` in ``scope`` (SHA-256 of the key when it would not fit)."""
    if not scope or ":" in scope:
        raise ValueError(f"scope must be non-empty and contain no ':', got {scope!r}")
    full = f"{scope}:{key}"
    if len(full) <= _MAX_KEY:
        return full
    return f"{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def first_time(session: Session, scope: str, key: str) -> bool:
    """Record ``key`` in ``scope``; True if this transaction is the first to do so.

    ``INSERT ... ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL: no exception, no savepoint,
    and on PostgreSQL a concurrent inserter of the same key waits for this transaction's outcome.
    """
    values = {"key": stored_key(scope, key), "scope": scope[:64], "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - Corb supports SQLite and PostgreSQL
        raise NotImplementedError(f"first_time: unsupported database {dialect}")
    stmt = (insert(ProcessedKey).values(**values).on_conflict_do_nothing(index_elements=["key"])
            .returning(ProcessedKey.key))
    # RETURNING, not rowcount: psycopg reports -1 for this statement through SQLAlchemy 2.1.
    return session.execute(stmt).first() is not None


def seen(session: Session, scope: str, key: str) -> bool:
    """Whether ``key`` was recorded in ``scope`` (a read; use ``first_time`` to claim)."""
    stmt = select(ProcessedKey.key).where(ProcessedKey.key == stored_key(scope, key))
    return session.scalar(stmt) is not None


def purge(session: Session, older_than: timedelta | datetime, *, scope: str | None = None) -> int:
    """Delete keys recorded before ``older_than`` (an age or a UTC time); returns how many.

    Keep keys longer than any redelivery can come (Twilio retries for minutes, S3 and Lambda for hours).
    """
    cutoff = utcnow() - older_than if isinstance(older_than, timedelta) else older_than
    stmt = delete(ProcessedKey).where(ProcessedKey.created_at < cutoff)
    if scope is not None:
        stmt = stmt.where(ProcessedKey.scope == scope)
    return session.execute(stmt).rowcount
