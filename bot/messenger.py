"""How Corb talks back: one interface, Twilio in production, an outbox table on one machine.

Sending is two steps so that a retried handler never texts twice: ``queue`` writes the outbound row
(status ``queued``, a provisional sid derived from the handler's dedupe key) inside the handler's own
transaction, and ``deliver`` hands a committed row to the carrier afterwards. A retry finds the rows
its first attempt queued but did not deliver (``pending``) and delivers only those. The one window
left is a crash between the carrier accepting a message and the row being marked: at least once.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from bot.models import Message
from cloud.db import utcnow

if TYPE_CHECKING:
    from bot.services import Services


class Messenger(Protocol):
    def send(self, to: str, body: str, *, media_key: str | None = None) -> str:
        """Send an SMS (or an MMS when ``media_key`` names a bucket object); returns the message sid.

        The picture leaves only as a signed, expiring link made here, and the outbound message is
        stored in ``messages`` by every implementation.
        """
        ...


class QueueingMessenger(Messenger, Protocol):
    def deliver(self, message_id: int) -> str:
        """Send one committed ``queued`` (or ``failed``) outbound row; a row already sent is left alone."""
        ...


PENDING = ("queued", "failed")
CLAIM_TIMEOUT = timedelta(minutes=5)  # a delivery still "sending" after this died mid-way


def _prefix(key: str) -> str:
    return "SM" + hashlib.sha256(key.encode()).hexdigest()[:26]


def provisional_sid(key: str, index: int) -> str:
    """A Twilio-shaped sid (SM + 32 hex) for the ``index``-th message a handler sends for ``key``."""
    return f"{_prefix(key)}{index:06x}"


def queue(session: Session, key: str, index: int, to: str, body: str, *, media_key: str | None = None,
          from_number: str = "") -> Message:
    """Record an outbound message to send after the caller commits (see the module docstring)."""
    msg = Message(direction="out", sid=provisional_sid(key, index), from_number=from_number, to_number=to,
                  body=body[:1600], media_key=media_key, status="queued")
    session.add(msg)
    return msg


def _deliverable() -> ColumnElement[bool]:
    """Queued, failed, or claimed by a delivery that died (its claim is stale) and not sent since."""
    stale = utcnow() - CLAIM_TIMEOUT
    return or_(Message.status.in_(PENDING), and_(Message.status == "sending", Message.updated_at < stale))


def pending(session: Session, key: str) -> list[int]:
    """Rows queued for ``key`` that were not handed to the carrier yet (or failed to be).

    A row handed to Twilio takes Twilio's sid, so it no longer carries the key's provisional prefix.
    """
    return list(session.scalars(
        select(Message.id).where(Message.direction == "out", Message.sid.like(_prefix(key) + "%"),
                                 _deliverable()).order_by(Message.id)))


class _QueueingMessenger:
    """``send`` for callers that need no retry safety (admin tools): queue and deliver at once."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    @property
    def from_number(self) -> str:
        return self.svc.config.twilio_from or "corb"

    def send(self, to: str, body: str, *, media_key: str | None = None) -> str:
        with self.svc.session() as s:
            row = queue(s, uuid.uuid4().hex, 0, to, body, media_key=media_key, from_number=self.from_number)
            s.flush()
            message_id = row.id
        return self.deliver(message_id)

    def deliver(self, message_id: int) -> str:
        raise NotImplementedError

    def _media_url(self, media_key: str | None) -> str | None:
        return self.svc.bucket.presigned_url(media_key) if media_key else None


class OutboxMessenger(_QueueingMessenger):
    """One machine, no account: the ``messages`` table is the outbox; the CLI and simulator read it."""

    def deliver(self, message_id: int) -> str:
        with self.svc.session() as s:
            row = s.get(Message, message_id)
            if row is None:
                raise LookupError(f"no message {message_id}")
            media_url = self._media_url(row.media_key)
            # A conditional update, so two workers delivering the same row mark it sent once.
            s.execute(update(Message).where(Message.id == message_id, _deliverable())
                      .values(status="sent", media_url=media_url, error=None, updated_at=utcnow()))
            return row.sid or ""


class TwilioMessenger(_QueueingMessenger):
    """Twilio's REST API through its SDK. A failure is stored on the row and raised (the runtime retries)."""

    def __init__(self, svc: Services, client: Any = None) -> None:
        super().__init__(svc)
        if client is None:
            from twilio.rest import Client  # heavy: only where Twilio is used

            client = Client(svc.config.twilio_account_sid, svc.config.twilio_auth_token)
        self.client = client

    def deliver(self, message_id: int) -> str:
        with self.svc.session() as s:
            row = s.get(Message, message_id)
            if row is None:
                raise LookupError(f"no message {message_id}")
            to, body, media_key, sid = row.to_number, row.body, row.media_key, row.sid or ""
            # Claim the row: of two workers delivering it, only one calls Twilio.
            claimed = s.execute(update(Message).where(Message.id == message_id, _deliverable())
                                .values(status="sending", updated_at=utcnow())).rowcount
        if not claimed:
            return sid
        media_url = self._media_url(media_key)
        try:
            extra = {"media_url": [media_url]} if media_url else {}
            sent = self.client.messages.create(
                to=to, from_=self.svc.config.twilio_from, body=body,
                status_callback=self.svc.config.base_url + "/sms/status", **extra)
        except Exception as exc:
            code = getattr(exc, "code", None)
            error = (f"Twilio error {code}: {getattr(exc, 'msg', exc)}" if code
                     else f"{type(exc).__name__}: {exc}")
            self._update(message_id, status="failed", error=error[:2000], media_url=media_url)
            raise
        self._update(message_id, sid=sent.sid, status=(sent.status or "queued").lower(), error=None,
                     media_url=media_url, from_number=self.svc.config.twilio_from or "")
        return sent.sid

    def _update(self, message_id: int, **values: Any) -> None:
        with self.svc.session() as s:
            s.execute(update(Message).where(Message.id == message_id).values(updated_at=utcnow(), **values))


def open_messenger(svc: Services) -> QueueingMessenger:
    """Twilio when the account and sender number are configured, else the outbox."""
    return TwilioMessenger(svc) if svc.config.uses_twilio else OutboxMessenger(svc)
