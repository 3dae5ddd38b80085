"""Credentials: admin passwords (argon2id), API tokens (SHA-256 of a random secret), admin sessions
(server-side, so signing out revokes them), login throttling.

Passwords are chosen by people, so they get a memory-hard hash; API tokens are 256 random bits, so a
fast hash suffices and lets a request find its token by an indexed lookup. Neither is stored in clear.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import case, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.models import AdminAccount, AdminSession, LoginAttempts
from cloud.db import utcnow

# argon2id with the library's RFC 9106 "low memory" profile: 64 MiB, 3 passes (about 50 ms here).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong name costs the same as a wrong password.

    Made on first use, not at import: hashing costs tens of milliseconds the webhook's cold start
    must not pay.
    """
    return _hasher.hash(secrets.token_urlsafe(16))

TOKEN_PREFIX = "corb_"


def generate_password() -> str:
    """A password to print once: 20 URL-safe characters, about 120 bits."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; a missing hash still spends the time of one verification."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


SESSION_LIFETIME = timedelta(hours=12)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(db: Session, account_id: int, now: datetime | None = None) -> str:
    """Start a server-side admin session; returns the token for the (signed) cookie, never stored."""
    now = now or utcnow()
    db.execute(delete(AdminSession).where(AdminSession.account_id == account_id,
                                          AdminSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.add(AdminSession(token_hash=_token_hash(token), account_id=account_id, created_at=now,
                        expires_at=now + SESSION_LIFETIME))
    return token


def session_account(db: Session, token: str, now: datetime | None = None) -> AdminAccount | None:
    """The account of a live session, or ``None`` once it was closed or expired."""
    return db.scalars(select(AdminAccount).join(AdminSession, AdminSession.account_id == AdminAccount.id)
                      .where(AdminSession.token_hash == _token_hash(token),
                             AdminSession.expires_at > (now or utcnow()))).first()


def close_session(db: Session, token: str) -> None:
    """Sign out: the session's row goes, so a copy of its cookie opens nothing any more."""
    db.execute(delete(AdminSession).where(AdminSession.token_hash == _token_hash(token)))


@dataclass(frozen=True)
class LoginThrottle:
    """Login attempts per client address in a fixed window, counted in the database.

    An attempt is counted *before* its password is checked, in one atomic upsert, so parallel guesses
    cannot all pass a "not blocked yet" check first (40 at once got 21 checked when the count came
    after the argon2 verification). In the database, not in memory, so every web process counts the same
    attempts. A correct password clears the address's count.
    """

    engine: Engine
    max_attempts: int = 5
    window: timedelta = timedelta(seconds=60)

    def claim(self, address: str, now: datetime | None = None) -> int:
        """Count one attempt from ``address``: 0 if its password may be checked, else the seconds until
        the window ends (for Retry-After)."""
        now = now or utcnow()
        address = address[:64]
        table = LoginAttempts.__table__
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        stale = table.c.window_start <= now - self.window
        stmt = insert(table).values(address=address, window_start=now, count=1).on_conflict_do_update(
            index_elements=[table.c.address],
            set_={"count": case((stale, 1), else_=table.c.count + 1),
                  "window_start": case((stale, now), else_=table.c.window_start)},
        ).returning(table.c.count, table.c.window_start)
        with self.engine.begin() as conn:
            count, start = conn.execute(stmt).one()
        if count <= self.max_attempts:
            return 0
        return max(1, math.ceil((start + self.window - now).total_seconds()))

    def succeeded(self, address: str, now: datetime | None = None) -> None:
        """Clear ``address``'s count, and forget every address whose window has passed."""
        cutoff = (now or utcnow()) - self.window
        table = LoginAttempts.__table__
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(or_(table.c.address == address[:64],
                                                 table.c.window_start <= cutoff)))
