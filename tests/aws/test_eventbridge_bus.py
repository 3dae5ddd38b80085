"""EventBridgeBus against the moto server, through a proxy that can fail entries the way AWS does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud.adapters import open_bus
from cloud.aws import session
from cloud.aws.eventbridge import MAX_ENTRY_BYTES, EventBridgeBus, entry_size, resolve_detail
from cloud.aws.s3 import S3Bucket
from cloud.bus import BusError, publish
from cloud.config import load_config
from cloud.events import entry

from .conftest import drain, tap
from .wire import WireProxy


def make_bus(proxy: WireProxy, *, name: str = "default", bucket: S3Bucket | None = None,
             sleeps: list[float] | None = None, max_attempts: int = 4) -> EventBridgeBus:
    client = session.client("events", endpoint_url=proxy.url)
    return EventBridgeBus(name, client, bucket=bucket, max_attempts=max_attempts,
                          sleep=(sleeps.append if sleeps is not None else (lambda s: None)))


def commands(n: int, **extra: Any) -> list[dict]:
    return [entry("corb.sms", "Command", {"command_type": "status", "n": i, **extra}) for i in range(n)]


def test_open_bus_names_eventbridge(aws: str, tmp_path: Path, events: Any, sqs: Any) -> None:
    config = load_config({"CORB_DATA_DIR": str(tmp_path), "CORB_BUS": "default", "CORB_SECRET_KEY": "k",
                          "TWILIO_AUTH_TOKEN": "t", "AWS_ENDPOINT_URL": aws})
    bus = open_bus(config)
    assert isinstance(bus, EventBridgeBus) and bus.name == "default"
    q = tap(events, sqs)
    event_id = publish(bus, "corb.sms", "Command", {"command_type": "help"})
    got = drain(sqs, q)
    assert [e["id"] for e in got] == [event_id]
    assert got[0]["detail"] == {"command_type": "help"} and got[0]["detail-type"] == "Command"


def test_batches_of_at_most_ten_and_every_event_arrives(proxy: WireProxy, events: Any, sqs: Any) -> None:
    q = tap(events, sqs)
    ids = make_bus(proxy).put_events(commands(23))
    sizes = [len(r.json()["Entries"]) for r in proxy.records("AWSEvents.PutEvents")]
    assert sizes == [10, 10, 3]
    assert len(set(ids)) == 23
    got = drain(sqs, q)
    assert sorted(e["detail"]["n"] for e in got) == list(range(23))
    assert {e["id"]: e["detail"]["n"] for e in got} == {i: n for n, i in enumerate(ids)}  # ids in input order


def test_batches_also_stay_under_256kb_in_total(proxy: WireProxy, events: Any, sqs: Any) -> None:
    q = tap(events, sqs)
    big = "x" * (100 * 1024)
    make_bus(proxy).put_events(commands(3, blob=big))
    sizes = [len(r.json()["Entries"]) for r in proxy.records("AWSEvents.PutEvents")]
    assert sizes == [2, 1]
    assert len(drain(sqs, q)) == 3


def test_entry_size_is_computed_as_aws_does() -> None:
    e = {"Source": "corb.sms", "DetailType": "Command", "Detail": '{"a":"é"}', "Resources": ["arn:x"]}
    assert entry_size(e) == 8 + 7 + len('{"a":"é"}'.encode()) + 5
    assert entry_size({**e, "Time": "2026-01-01T00:00:00Z"}) == entry_size(e) + 14


def test_a_large_detail_goes_to_the_bucket_and_routing_fields_stay(proxy: WireProxy, events: Any, sqs: Any,
                                                                  bucket_name: str) -> None:
    bucket = S3Bucket(bucket_name, session.client("s3"))
    q = tap(events, sqs, pattern={"source": ["corb.sms"], "detail": {"command_type": ["request_cleaning"]}})
    detail = {"command_type": "request_cleaning", "area": "lobby", "note": "y" * (300 * 1024),
              "nested": {"k": "v"}}
    [event_id] = make_bus(proxy, bucket=bucket).put_events([entry("corb.sms", "Command", detail)])
    sent = proxy.records("AWSEvents.PutEvents")[0].json()["Entries"][0]
    assert entry_size(sent) <= MAX_ENTRY_BYTES
    [got] = drain(sqs, q)  # the rule on detail.command_type still matched
    assert got["id"] == event_id
    ref = got["detail"]["detail_ref"]
    assert ref["bucket"] == bucket_name
    assert ref["key"].startswith("events/large/") and ref["key"].endswith(".json")
    assert got["detail"]["area"] == "lobby" and "note" not in got["detail"] and "nested" not in got["detail"]
    assert resolve_detail(got, bucket)["detail"] == detail
    assert resolve_detail(got)["detail"] == detail  # without a bucket: opened from the reference
    small = {"detail": {"a": 1}, "id": "x"}
    assert resolve_detail(small) == small


def test_large_detail_without_a_bucket_raises(proxy: WireProxy) -> None:
    with pytest.raises(BusError, match="no bucket"):
        make_bus(proxy).put_events(commands(1, blob="z" * MAX_ENTRY_BYTES))
    assert proxy.records("AWSEvents.PutEvents") == []


def test_an_entry_too_large_even_without_its_detail_raises(proxy: WireProxy, bucket_name: str) -> None:
    bucket = S3Bucket(bucket_name, session.client("s3"))
    huge = entry("corb.sms", "Command", {"a": 1})
    huge["Resources"] = ["arn:aws:s3:::" + "r" * 1024] * 300
    with pytest.raises(BusError, match="exceeds 256 KB"):
        make_bus(proxy, bucket=bucket).put_events([huge])


def test_partial_failure_is_resent_with_backoff_and_nothing_is_lost(proxy: WireProxy, events: Any,
                                                                   sqs: Any) -> None:
    q = tap(events, sqs)
    proxy.plan = lambda call, pos, e: "InternalFailure" if call == 0 and pos in (1, 3) else None
    sleeps: list[float] = []
    ids = make_bus(proxy, sleeps=sleeps).put_events(commands(5))
    calls = [[json.loads(x["Detail"])["n"] for x in r.json()["Entries"]]
             for r in proxy.records("AWSEvents.PutEvents")]
    assert calls == [[0, 1, 2, 3, 4], [1, 3]]  # only the failed entries were resent
    assert len(sleeps) == 1 and 0.05 <= sleeps[0] <= 0.1  # base 0.1 s, equal jitter
    got = drain(sqs, q)
    assert sorted(e["detail"]["n"] for e in got) == [0, 1, 2, 3, 4]  # each exactly once
    assert sorted(e["id"] for e in got) == sorted(ids)


def test_entries_that_keep_failing_raise_bus_error_naming_them(proxy: WireProxy, events: Any,
                                                               sqs: Any) -> None:
    q = tap(events, sqs)
    proxy.plan = lambda call, pos, e: "ThrottlingException" if json.loads(e["Detail"])["n"] == 2 else None
    sleeps: list[float] = []
    with pytest.raises(BusError) as err:
        make_bus(proxy, sleeps=sleeps, max_attempts=4).put_events(commands(3))
    assert "#2 corb.sms/Command (ThrottlingException" in str(err.value)
    assert [f.index for f in err.value.failed] == [2]  # type: ignore[attr-defined]
    assert len(proxy.records("AWSEvents.PutEvents")) == 4
    assert len(sleeps) == 3 and sleeps == sorted(sleeps)  # exponential backoff, jittered within each step
    assert all(0.1 * 2**i / 2 <= s <= 0.1 * 2**i for i, s in enumerate(sleeps))
    assert sorted(e["detail"]["n"] for e in drain(sqs, q)) == [0, 1]  # the others did get through


def test_permanent_errors_are_not_retried(proxy: WireProxy) -> None:
    proxy.plan = lambda call, pos, e: "MalformedDetail" if pos == 0 else None
    with pytest.raises(BusError, match="MalformedDetail"):
        make_bus(proxy).put_events(commands(2))
    assert len(proxy.records("AWSEvents.PutEvents")) == 1


def test_a_named_bus(proxy: WireProxy, events: Any, sqs: Any) -> None:
    events.create_event_bus(Name="corb-test")
    q_named = tap(events, sqs, bus="corb-test", name="named")
    q_default = tap(events, sqs, name="dflt")
    make_bus(proxy, name="corb-test").put_events(commands(2))
    sent = proxy.records("AWSEvents.PutEvents")[0].json()["Entries"]
    assert {r["EventBusName"] for r in sent} == {"corb-test"}
    assert len(drain(sqs, q_named)) == 2
    assert drain(sqs, q_default) == []
