"""Credentials: admin passwords (argon2id), API tokens (SHA-256 of a random secret), login throttling.

Passwords are chosen by people, so they get a memory-hard hash; API tokens are 256 random bits, so a
fast hash suffices and lets a request find its token by an indexed lookup. Neither is stored in clear.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

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


@dataclass
class LoginThrottle:
    """Failed logins per client address in a sliding window, kept in this process's memory.

    In memory, not in the database: one ``corb serve`` process serves the admin pages on one machine.
    Behind several processes (Lambda) each keeps its own count, which still bounds guessing per
    container; the argon2 cost bounds it further.
    """

    max_failures: int = 5
    window_s: float = 60.0
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, address: str, now: float) -> deque[float]:
        attempts = self._failures.setdefault(address, deque())
        while attempts and attempts[0] <= now - self.window_s:
            attempts.popleft()
        return attempts

    def blocked(self, address: str, now: float | None = None) -> bool:
        """True once ``max_failures`` wrong passwords came from ``address`` within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._recent(address, now)
            if not attempts:
                self._failures.pop(address, None)
            return len(attempts) >= self.max_failures

    def retry_after(self, address: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        with self._lock:
            attempts = self._recent(address, now)
            return max(1, int(attempts[0] + self.window_s - now) + 1) if attempts else 0

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # bound memory under a spray from many addresses
                for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window_s]:
                    del self._failures[key]

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
