"""Tables of the local runtime: the durable bus's event log, async invocations, idempotency keys.

An event row is committed before ``put_events`` returns (the bus acknowledges nothing it could lose);
each async invocation of a function is its own row, so retries, dead letters and replays are per target.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base, utcnow


class BusEvent(Base):
    """One EventBridge event as put on the local bus (``body`` is the whole event, AWS's shape)."""

    __tablename__ = "bus_events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the EventBridge event id
    bus_name: Mapped[str] = mapped_column(String(128), default="default")
    source: Mapped[str] = mapped_column(String(256), index=True)
    detail_type: Mapped[str] = mapped_column(String(256))
    time: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    body: Mapped[str] = mapped_column(Text)
    # pending (targets not all finished), delivered, failed (some target dead-lettered), unmatched
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    targets: Mapped[int] = mapped_column(Integer, default=0)


class Invocation(Base):
    """One asynchronous invocation of a function (from a rule, an S3 notification or a replay)."""

    __tablename__ = "invocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    function: Mapped[str] = mapped_column(String(256), index=True)
    trigger: Mapped[str] = mapped_column(String(32))  # "events", "s3", "replay", "direct"
    rule: Mapped[str | None] = mapped_column(String(256), nullable=True)
    event_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    payload: Mapped[str] = mapped_column(Text)
    # pending, running, succeeded, retrying, dead_letter, replayed
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ProcessedKey(Base):
    """A key a handler has acted on (MessageSid, bucket+key+eTag, event id): the dedupe table."""

    __tablename__ = "processed_keys"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class DeadLetter(Base):
    """An async invocation that failed every retry: what the onFailure destination received.

    The local runtime writes it directly; on AWS a rule on failure records writes it. Replay re-invokes
    ``payload`` on ``function`` and stamps ``replayed_at``.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    function: Mapped[str] = mapped_column(String(256), index=True)
    payload: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
