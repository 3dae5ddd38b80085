"""The event bus interface. EventBridge in production; a durable bus in the database on one machine.

The interface is PutEvents itself: a list of request entries in, event ids out. Every implementation
either stores/sends every entry or raises: nothing is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from cloud.events import entry

if TYPE_CHECKING:
    from cloud.config import Config


class BusError(RuntimeError):
    """Entries that could not be put, even after retries."""


class Bus(Protocol):
    name: str

    def put_events(self, entries: list[dict]) -> list[str]:
        """Publish PutEvents entries; returns their event ids once they are durable."""
        ...


def publish(bus: Bus, source: str, detail_type: str, detail: Mapping[str, Any]) -> str:
    return bus.put_events([entry(source, detail_type, detail)])[0]


def open_bus(config: "Config", **kwargs: Any) -> Bus:
    """The bus the configuration names: the local durable bus by default, EventBridge otherwise."""
    if config.bus == "local":
        from cloud.local_bus import LocalBus

        return LocalBus.from_config(config, **kwargs)
    from cloud.aws.eventbridge import EventBridgeBus

    return EventBridgeBus.from_config(config)
