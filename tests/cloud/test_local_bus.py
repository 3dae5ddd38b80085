"""The durable local bus: PutEvents validated like AWS, events and their targets committed together."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cloud_helpers import FN, rule
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from cloud import local_bus
from cloud.bus import BusError, publish
from cloud.config import load_config
from cloud.db import make_engine, make_sessionmaker
from cloud.declaration import Declaration
from cloud.events import entry
from cloud.local_bus import LocalBus, entry_size, validate_entries
from cloud.models import BusEvent, Invocation

RULES = [rule("sms-status", "echo", {"source": ["corb.sms"], "detail": {"command_type": ["status"]}}),
         rule("sms-any", "other", {"source": ["corb.sms"]})]


@pytest.fixture
def bus(sessions: sessionmaker, declare: Callable[..., Declaration]) -> LocalBus:
    return LocalBus(sessions, declare(RULES))


def _count(sessions: sessionmaker, model: type) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_put_events_stores_event_and_one_invocation_per_matched_rule(bus: LocalBus, sessions: sessionmaker,
                                                                     database_url: str) -> None:
    ids = bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status", "camera": "lobby"}),
                          entry("corb.sms", "SMS Command", {"command_type": "help"}),
                          entry("corb.other", "Something", {"x": 1})])
    assert len(ids) == 3 and len(set(ids)) == 3
    # A separate engine (another process, in effect) sees everything: it was committed before return.
    engine = make_engine(database_url)
    try:
        with make_sessionmaker(engine)() as s:
            events = {e.id: e for e in s.scalars(select(BusEvent))}
            invocations = list(s.scalars(select(Invocation).order_by(Invocation.id)))
    finally:
        engine.dispose()
    assert [events[i].status for i in ids] == ["pending", "pending", "unmatched"]
    assert [events[i].targets for i in ids] == [2, 1, 0]
    assert sorted((i.event_id == ids[0], i.function, i.rule) for i in invocations) == [
        (False, FN + "other", "sms-any"), (True, FN + "echo", "sms-status"), (True, FN + "other", "sms-any")]
    body = json.loads(events[ids[0]].body)
    assert set(body) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                         "detail"}
    assert body["detail"] == {"command_type": "status", "camera": "lobby"}
    assert all(json.loads(i.payload)["id"] == i.event_id for i in invocations)
    assert all(i.status == "pending" and i.attempts == 0 and i.trigger == "events" for i in invocations)


def test_publish_helper_and_optional_entry_keys(bus: LocalBus, sessions: sessionmaker) -> None:
    event_id = publish(bus, "corb.sms", "SMS Command", {"command_type": "status"})
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    [second] = bus.put_events([{**entry("corb.sms", "X", {}), "Time": when, "Resources": ["arn:x"],
                                "EventBusName": "arn:aws:events:us-east-1:000000000000:event-bus/default"}])
    with sessions() as s:
        assert s.get(BusEvent, event_id).targets == 2
        body = json.loads(s.get(BusEvent, second).body)
    assert body["time"] == "2026-01-02T03:04:05Z" and body["resources"] == ["arn:x"]


@pytest.mark.parametrize(("entries", "message"), [
    ({"Source": "a"}, "takes a list"),
    ([{"DetailType": "b", "Detail": "{}"}], "Source is required"),
    ([{"Source": "a", "DetailType": "", "Detail": "{}"}], "DetailType is required"),
    ([{"Source": "a", "DetailType": "b"}], "MalformedDetail"),
    ([{"Source": "a", "DetailType": "b", "Detail": "{not json"}], "MalformedDetail"),
    ([{"Source": "a", "DetailType": "b", "Detail": "[1, 2]"}], "must be a JSON object"),
    ([{"Source": "a", "DetailType": "b", "Detail": "{}", "Colour": "red"}], "unknown key"),
    ([{"Source": "a", "DetailType": "b", "Detail": "{}", "Resources": "arn:x"}], "Resources must be a list"),
    ([{**entry("a", "b", {}), "EventBusName": "other-bus"}], "no event bus named 'other-bus'"),
    ([{**entry("a", "b", {}), "Time": 12}], "Time must be"),
    ([entry("a", "b", {"blob": "x" * (256 * 1024)})], "at most 262144"),
], ids=["not a list", "no source", "empty detail-type", "no detail", "bad json", "array detail",
        "unknown key", "resources", "other bus", "time", "too big"])
def test_invalid_entries_are_rejected(entries: list, message: str) -> None:
    good = entry("corb.sms", "SMS Command", {"command_type": "status"})
    batch = [good, *entries] if isinstance(entries, list) else entries
    with pytest.raises(BusError, match=None) as info:
        validate_entries(batch)
    assert message in str(info.value)


def test_any_number_of_entries_like_the_eventbridge_bus(bus: LocalBus, sessions: sessionmaker) -> None:
    """EventBridgeBus sends 10 entries a request; the local bus stores any number in one transaction."""
    assert bus.put_events([]) == []
    ids = bus.put_events([entry("corb.x", "X", {"i": i, "blob": "x" * 100_000}) for i in range(25)])
    assert len(ids) == 25 == _count(sessions, BusEvent)


def test_a_batch_with_one_bad_entry_stores_nothing(bus: LocalBus, sessions: sessionmaker) -> None:
    with pytest.raises(BusError, match="MalformedDetail"):
        bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"}),
                        {"Source": "a", "DetailType": "b", "Detail": "{oops"}])
    assert _count(sessions, BusEvent) == 0 and _count(sessions, Invocation) == 0


def test_entry_size_follows_aws() -> None:
    e = {"Source": "abc", "DetailType": "de", "Detail": '{"k":1}', "Resources": ["r1", "r22"], "Time": "x"}
    assert entry_size(e) == 14 + 3 + 2 + 7 + 2 + 3
    assert entry_size({"Source": "é", "DetailType": "", "Detail": ""}) == 2  # UTF-8 bytes


def test_put_events_in_joins_the_callers_transaction(bus: LocalBus, sessions: sessionmaker) -> None:
    with sessions() as s, s.begin():
        bus.put_events_in(s, [entry("corb.sms", "SMS Command", {"command_type": "status"})])
        s.rollback()
    assert _count(sessions, BusEvent) == 0
    with sessions() as s, s.begin():
        [event_id] = bus.put_events_in(s, [entry("corb.sms", "SMS Command", {"command_type": "status"})])
    assert _count(sessions, BusEvent) == 1 and _count(sessions, Invocation) == 2
    assert event_id


def test_storage_errors_are_raised_not_swallowed(tmp_path: Path, declare: Callable[..., Declaration]) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    try:
        bus = LocalBus(make_sessionmaker(engine), declare(RULES))
        with pytest.raises(BusError, match="could not store"):
            bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
    finally:
        engine.dispose()


def test_listeners_are_woken_after_commit(bus: LocalBus) -> None:
    calls: list[int] = []

    class Listener:
        def wake(self) -> None:
            calls.append(1)

    listener = Listener()
    local_bus.add_listener(listener.wake)
    try:
        bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
        assert calls == [1]
    finally:
        local_bus.remove_listener(listener.wake)
    bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
    assert calls == [1]
    local_bus.add_listener(Listener().wake)  # held weakly: a dropped listener is simply forgotten
    bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
    assert calls == [1]


def test_from_config_reads_the_stage_declaration(corb_env: dict[str, str], sessions: sessionmaker) -> None:
    bus = LocalBus.from_config(load_config(), sessions=sessions)
    assert bus.name == "default"
    assert "corb-dev-cleaning-report" in {r.name for r in bus.declaration.rules}
    [event_id] = bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "request_cleaning"})])
    with sessions() as s:
        [inv] = s.scalars(select(Invocation).where(Invocation.event_id == event_id))
    assert inv.function == "bot.handlers.cleaning.record_request"


def test_import_stays_light() -> None:
    """The webhook imports the bus on its cold start: no boto3, no runtime machinery."""
    import subprocess
    import sys

    code = ("import sys, cloud.local_bus, cloud.patterns; "
            "print([m for m in ('boto3', 'botocore', 'cloud.runtime', 'cloud.aws') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
