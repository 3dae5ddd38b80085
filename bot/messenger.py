"""How Corb talks back: one interface, Twilio in production, an outbox table on one machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.services import Services


class Messenger(Protocol):
    def send(self, to: str, body: str, *, media_key: str | None = None) -> str:
        """Send an SMS (or an MMS when ``media_key`` names a bucket object); returns the message sid.

        The picture leaves only as a signed, expiring link made here, and the outbound message is
        stored in ``messages`` by every implementation.
        """
        ...


def open_messenger(svc: "Services") -> Messenger:
    raise NotImplementedError  # implemented by the bot package (outbox and Twilio)
