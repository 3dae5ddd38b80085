"""The bot's tables: who is in the building, what the cameras saw, what was said."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloud.db import Base, utcnow


class Role(enum.StrEnum):
    admin = "admin"
    member = "member"
    cleaner = "cleaner"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), unique=True)  # E.164
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role", native_enum=False), default=Role.member)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    area: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_segment_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    last_segment_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The camera agent's sources (secrets: never shown back in full, logged or put in an event).
    stream_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    substream_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    # Health: set when the camera went silent; ``offline_alerted`` once admins were told (so a
    # "back online" text is owed when it returns).
    offline_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    offline_alerted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The stream's format, as the last analysed segment showed it.
    video_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    video_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    video_fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    video_bitrate: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Subscription(Base):
    """A user follows one camera, or every camera when ``camera_id`` is NULL."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "camera_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    camera_id: Mapped[int | None] = mapped_column(
        ForeignKey("cameras.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="subscriptions")
    camera: Mapped[Camera | None] = relationship()


class Detection(Base):
    """What one analysed segment showed; the annotated best frame lives in the bucket."""

    __tablename__ = "detections"
    __table_args__ = (UniqueConstraint("segment_key", "etag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    segment_key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(64))
    start_time: Mapped[datetime] = mapped_column(DateTime, index=True)
    end_time: Mapped[datetime] = mapped_column(DateTime)
    peak: Mapped[int] = mapped_column(Integer, default=0)
    mean: Mapped[float] = mapped_column(Float, default=0.0)
    unique_people: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[str] = mapped_column(Text, default="[]")  # JSON list, one count per analysed frame
    snapshot_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    model: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    camera: Mapped[Camera] = relationship()


class CleaningRequest(Base):
    __tablename__ = "cleaning_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    area: Mapped[str] = mapped_column(String(120), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    requester_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open, done
    report: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_sid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    closed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )

    requester: Mapped[User | None] = relationship(foreign_keys=[requester_id])
    closed_by: Mapped[User | None] = relationship(foreign_keys=[closed_by_id])


class Message(Base):
    """Every SMS/MMS in or out. The outbox messenger's queue is the rows with direction "out"."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), index=True)  # in, out
    sid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    from_number: Mapped[str] = mapped_column(String(32), index=True)
    to_number: Mapped[str] = mapped_column(String(32), index=True)
    body: Mapped[str] = mapped_column(Text, default="")
    media_key: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # bucket key of the picture
    media_url: Mapped[str | None] = mapped_column(Text, nullable=True)  # the signed link that was sent
    # received, queued, sent, delivered, failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AlertSent(Base):
    """When a user was last alerted about a camera: the cooldown's memory."""

    __tablename__ = "alerts_sent"
    __table_args__ = (UniqueConstraint("user_id", "camera_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Refusal(Base):
    """When an unknown number was last told no: refusals are rate-limited."""

    __tablename__ = "refusals"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    count: Mapped[int] = mapped_column(Integer, default=1)


class Setting(Base):
    """Settings that belong to the building (alert cooldown, retention days), editable by admins."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AdminAccount(Base):
    """A person who may log in to the admin pages (distinct from SMS users: no phone needed)."""

    __tablename__ = "admin_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the REST API; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class AdminSession(Base):
    """A signed-in admin's session, kept on the server so that signing out really ends it: the cookie
    carries a random token, only its hash is stored, and a cookie whose row is gone is worthless."""

    __tablename__ = "admin_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class LoginAttempts(Base):
    """Login attempts per client address in the current window: the throttle's memory, in the database
    so that every web process (gunicorn workers, Lambda containers) counts the same attempts."""

    __tablename__ = "login_attempts"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
