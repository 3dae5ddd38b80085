"""The durable local event bus: EventBridge's PutEvents on one machine, stored in the database.

``put_events`` validates entries as EventBridge does, turns each into an EventBridge event, matches it
against the declaration's rules and, in ONE transaction, inserts the event row and one ``invocations``
row per matched target. It returns only after that commit: a crash or ``kill -9`` after it returns loses
nothing (contract 4). The local runtime (``cloud.runtime``) delivers the invocations.

Kept light on purpose (the webhook imports it on its cold start): SQLAlchemy and Corb's own pure modules.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from cloud.bus import BusError
from cloud.db import utcnow
from cloud.events import event_from_entry, iso
from cloud.models import BusEvent, Invocation

if TYPE_CHECKING:
    from cloud.config import Config
    from cloud.declaration import Declaration

__all__ = ["LocalBus", "add_listener", "enqueue", "entry_size", "remove_listener", "store_events",
           "validate_entries", "MAX_ENTRIES", "MAX_ENTRY_BYTES"]

log = logging.getLogger(__name__)

MAX_ENTRIES = 10  # one PutEvents request's entries (EventBridgeBus batches; the local bus need not)
MAX_ENTRY_BYTES = 256 * 1024  # an entry's size limit, computed as AWS documents it
ENTRY_KEYS = frozenset({"Source", "DetailType", "Detail", "Resources", "Time", "EventBusName", "TraceHeader"})

# Wake-ups for runtimes in this process: called after every commit that adds invocations. Held weakly
# so that a runtime nobody stopped does not live on through the bus.
_listeners: list[weakref.ref] = []
_listeners_lock = threading.Lock()


def _ref(listener: Callable[[], None]) -> weakref.ref:
    return weakref.WeakMethod(listener) if hasattr(listener, "__self__") else weakref.ref(listener)


def add_listener(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever invocations are committed in this process."""
    with _listeners_lock:
        _listeners.append(_ref(listener))


def remove_listener(listener: Callable[[], None]) -> None:
    with _listeners_lock:
        _listeners[:] = [r for r in _listeners if r() is not None and r() != listener]


def notify() -> None:
    """Wake the in-process runtimes (other processes find new rows by polling)."""
    with _listeners_lock:
        _listeners[:] = [r for r in _listeners if r() is not None]
        targets = [r() for r in _listeners]
    for target in targets:
        if target is not None:
            try:
                target()
            except Exception:  # a listener's failure must not fail a commit already made
                log.exception("bus listener failed")


# -- validation (pure) -------------------------------------------------------------------------------

def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge computes it (Time counts 14 bytes; strings in UTF-8)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if isinstance(value, str):
            size += len(value.encode())
        elif value is not None:
            size += len(json.dumps(value).encode())
    for resource in entry.get("Resources") or []:
        size += len(str(resource).encode())
    return size


def _bus_name_of(name_or_arn: str) -> str:
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def validate_entries(entries: Any, *, bus_name: str = "default") -> list[dict]:
    """The EventBridge events the entries become; ``BusError`` naming every bad entry otherwise.

    Each entry is checked as PutEvents checks it. Like ``EventBridgeBus`` (which sends batches of
    ``MAX_ENTRIES``), any number of entries is accepted: the limit per request is the transport's.
    """
    if not isinstance(entries, list):
        raise BusError(f"PutEvents takes a list of entries, got {type(entries).__name__}")
    errors: list[str] = []
    events: list[dict] = []
    for i, entry in enumerate(entries):
        where = f"entry {i}"
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: must be a mapping")
            continue
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            errors.append(f"{where}: unknown key(s) {unknown}")
        for key in ("Source", "DetailType"):
            if not isinstance(entry.get(key), str) or not entry.get(key):
                errors.append(f"{where}: {key} is required (a non-empty string)")
        size = entry_size(entry)
        if size > MAX_ENTRY_BYTES:
            errors.append(f"{where}: {size} bytes; an entry may have at most {MAX_ENTRY_BYTES}")
        detail = entry.get("Detail")
        if isinstance(detail, str):
            try:
                detail = json.loads(detail)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: MalformedDetail: Detail is not JSON ({exc})")
                continue
        if not isinstance(detail, dict):
            errors.append(f"{where}: MalformedDetail: Detail must be a JSON object")
            continue
        resources = entry.get("Resources")
        if resources is not None and (not isinstance(resources, list)
                                      or not all(isinstance(r, str) for r in resources)):
            errors.append(f"{where}: Resources must be a list of strings")
            continue
        target = _bus_name_of(entry.get("EventBusName") or bus_name)
        if target != bus_name:
            errors.append(f"{where}: no event bus named {target!r} here (the local bus is {bus_name!r})")
        when = entry.get("Time")
        if when is not None and not isinstance(when, datetime | str):
            errors.append(f"{where}: Time must be a datetime or an ISO-8601 string")
            continue
        if errors:
            continue
        kw: dict[str, Any] = {}
        if isinstance(when, datetime):
            kw["time"] = iso(when)
        elif isinstance(when, str):
            kw["time"] = when
        events.append(event_from_entry({**entry, "Detail": detail}, **kw))
    if errors:
        raise BusError("PutEvents rejected: " + "; ".join(errors))
    return events


# -- storage (in the caller's transaction) -----------------------------------------------------------

# Core inserts, not ORM objects: this runs inside the webhook's request, where the unit of work's
# bookkeeping costs more than the rows themselves.
_INSERT_EVENTS = BusEvent.__table__.insert()
_INSERT_INVOCATIONS = Invocation.__table__.insert()


def _invocation_row(function: str, payload_json: str, *, trigger: str, rule: str | None, event_id: str | None,
                    request_id: str | None, at: datetime | None, now: datetime) -> dict:
    return {"request_id": request_id or str(uuid.uuid4()), "function": function, "trigger": trigger,
            "rule": rule, "event_id": event_id, "payload": payload_json, "status": "pending", "attempts": 0,
            "next_attempt_at": at or now, "created_at": now, "updated_at": now}


def enqueue(session: Session, function: str, payload: Any, *, trigger: str, rule: str | None = None,
            event_id: str | None = None, request_id: str | None = None, at: datetime | None = None) -> str:
    """Add one async invocation of ``function`` with ``payload``; returns its request id."""
    row = _invocation_row(function, json.dumps(payload), trigger=trigger, rule=rule, event_id=event_id,
                          request_id=request_id, at=at, now=utcnow())
    session.execute(_INSERT_INVOCATIONS, [row])
    return row["request_id"]


def store_events(session: Session | Connection, events: Iterable[dict], declaration: Declaration, *,
                 bus_name: str = "default") -> list[str]:
    """Insert each event and an invocation per rule it matches, in the caller's transaction."""
    ids: list[str] = []
    event_rows: list[dict] = []
    invocation_rows: list[dict] = []
    now = utcnow()
    for event in events:
        rules = declaration.rules_for(event)
        body = json.dumps(event)  # the event row and each target's payload are the same JSON
        event_rows.append({"id": event["id"], "bus_name": bus_name, "source": event["source"],
                           "detail_type": event["detail-type"], "time": now, "body": body,
                           "status": "pending" if rules else "unmatched", "targets": len(rules)})
        invocation_rows.extend(
            _invocation_row(rule.function, body, trigger="events", rule=rule.name, event_id=event["id"],
                            request_id=None, at=None, now=now)
            for rule in rules)
        if not rules:
            log.info("event %s (%s / %s) matched no rule", event["id"], event["source"], event["detail-type"])
        else:
            log.debug("event %s -> %s", event["id"], ", ".join(r.name for r in rules))
        ids.append(event["id"])
    if event_rows:
        session.execute(_INSERT_EVENTS, event_rows)
    if invocation_rows:
        session.execute(_INSERT_INVOCATIONS, invocation_rows)
    return ids


class LocalBus:
    """The Bus interface over the database; every ``put_events`` is one committed transaction."""

    def __init__(self, sessions: sessionmaker, declaration: Declaration, *, name: str = "default") -> None:
        self.sessions = sessions
        self.declaration = declaration
        self.name = name

    @classmethod
    def from_config(cls, config: Config, *, sessions: sessionmaker,
                    declaration: Declaration | None = None) -> LocalBus:
        if declaration is None:
            from cloud.declaration import load_declaration

            declaration = load_declaration(config.stage)
        return cls(sessions, declaration)

    def put_events(self, entries: list[dict]) -> list[str]:
        """Validate, store and commit; returns the event ids once they are durable."""
        events = validate_entries(entries, bus_name=self.name)
        if not events:
            return []
        try:
            with self.sessions() as session, session.begin():
                ids = store_events(session, events, self.declaration, bus_name=self.name)
        except Exception as exc:
            raise BusError(f"could not store {len(events)} event(s): {exc}") from exc
        notify()
        return ids

    def put_events_in(self, session: Session | Connection, entries: list[dict]) -> list[str]:
        """Like ``put_events`` inside the caller's transaction: stored if and only if it commits.

        Local only (EventBridge cannot join a database transaction); call ``notify()`` after commit.
        """
        return store_events(session, validate_entries(entries, bus_name=self.name), self.declaration,
                            bus_name=self.name)
