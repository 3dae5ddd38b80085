"""The event bus interface. EventBridge in production; a durable bus in the database on one machine.

The interface is PutEvents itself: a list of request entries in, event ids out. Every implementation
either stores/sends every entry or raises: nothing is silently dropped. ``cloud.adapters.open_bus`` chooses
one; this module knows none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cloud.events import entry


class BusError(RuntimeError):
    """Entries that could not be put, even after retries."""


class Bus(Protocol):
    name: str

    def put_events(self, entries: list[dict]) -> list[str]:
        """Publish PutEvents entries; returns their event ids once they are durable."""
        ...


def publish(bus: Bus, source: str, detail_type: str, detail: Mapping[str, Any]) -> str:
    return bus.put_events([entry(source, detail_type, detail)])[0]
