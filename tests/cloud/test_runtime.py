"""The local runtime: rules invoke functions, destinations chain them, retries end in dead letters, two
runtimes share one queue safely, leases recover what a dead runtime left running."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import functions_for_tests as fns
import pytest
from cloud_helpers import FN, STAGE, rule
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from cloud import dead_letters
from cloud.config import load_config
from cloud.db import make_engine, make_sessionmaker, utcnow
from cloud.declaration import Declaration
from cloud.events import FAILURE, SUCCESS, destination_event, destination_record, entry, function_arn
from cloud.local_bus import enqueue
from cloud.models import BusEvent, DeadLetter, Invocation
from cloud.runtime import LocalInvoker, LocalRuntime, purge_history, start_embedded

SMS = {"source": ["corb.sms"]}
ORIGINAL_RULE = {"detail": {"responsePayload": {"command_type": ["request_cleaning"]}}}  # verbatim
FAILURES = {"source": ["lambda"], "detail-type": [FAILURE]}

MakeRuntime = Callable[..., LocalRuntime]
Declare = Callable[..., Declaration]


def lambda_events(sessions: sessionmaker, detail_type: str) -> list[dict]:
    with sessions() as s:
        rows = s.scalars(select(BusEvent).where(BusEvent.source == "lambda",
                                                BusEvent.detail_type == detail_type).order_by(BusEvent.time))
        return [json.loads(r.body) for r in rows]


def invocations(sessions: sessionmaker, function: str | None = None) -> list[Invocation]:
    with sessions() as s:
        stmt = select(Invocation).order_by(Invocation.id)
        if function:
            stmt = stmt.where(Invocation.function == FN + function)
        return list(s.scalars(stmt))


def event_status(sessions: sessionmaker, event_id: str) -> str:
    with sessions() as s:
        return s.get(BusEvent, event_id).status


# -- rules, contexts, destinations ---------------------------------------------------------------------


def test_rule_invokes_function_and_success_record_goes_on_the_bus(declare: Declare, make_runtime: MakeRuntime,
                                                                  sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "echo", SMS)]))
    [event_id] = runtime.bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
    assert runtime.run_until_idle(10)
    [(request_id, event)] = fns.runs("echo")
    assert event["id"] == event_id and event["detail"] == {"command_type": "status"}
    [inv] = invocations(sessions, "echo")
    assert (inv.request_id, inv.status, inv.attempts, inv.rule) == (request_id, "succeeded", 1, "sms")
    assert json.loads(inv.result) == {"kind": "echo", "source": "corb.sms",
                                      "detail": {"command_type": "status"}}
    assert event_status(sessions, event_id) == "delivered"
    [success] = lambda_events(sessions, SUCCESS)
    assert success["resources"] == [function_arn(FN + "echo")]
    detail = success["detail"]
    assert detail["requestContext"] == {"requestId": request_id, "functionArn": function_arn(FN + "echo"),
                                        "condition": "Success", "approximateInvokeCount": 1}
    assert detail["requestPayload"] == event
    assert detail["responsePayload"] == json.loads(inv.result)
    assert detail["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}


def test_destination_records_chain_functions(declare: Declare, make_runtime: MakeRuntime) -> None:
    after_echo = {"source": ["lambda"], "detail": {"responsePayload": {"kind": ["echo"]}}}
    runtime = make_runtime(declare([rule("sms", "echo", SMS), rule("after-echo", "on_echo", after_echo)]))
    runtime.bus.put_events([entry("corb.sms", "SMS Command", {"command_type": "status"})])
    assert runtime.run_until_idle(10)
    [(echo_rid, _)] = fns.runs("echo")
    [(_, destination)] = fns.runs("on_echo")
    assert destination["source"] == "lambda" and destination["detail-type"] == SUCCESS
    assert destination["detail"]["requestContext"]["requestId"] == echo_rid


def test_original_request_cleaning_rule_chains_parse_generate_send(
        declare: Declare, make_runtime: MakeRuntime, sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([
        rule("cleaning-request", "parse_sms", SMS),
        rule("cleaning-report", "generate_report", ORIGINAL_RULE),
        rule("cleaning-send", "send_report",
             {"source": ["lambda"], "detail": {"responsePayload": {"command_type": ["cleaning_report"]}}}),
    ]))
    sms = entry("corb.sms", "SMS Received", {"body": "request cleaning kitchen"})
    [event_id] = runtime.bus.put_events([sms])
    assert runtime.run_until_idle(10)
    assert [len(fns.runs(f)) for f in ("parse_sms", "generate_report", "send_report")] == [1, 1, 1]
    [(_, sent_from)] = fns.runs("send_report")
    assert sent_from["detail"]["responsePayload"]["report"] == "kitchen: 3 people"
    [inv] = invocations(sessions, "send_report")
    assert json.loads(inv.result) == {"sent": "kitchen: 3 people"}
    assert event_status(sessions, event_id) == "delivered"
    assert len(lambda_events(sessions, SUCCESS)) == 3  # send's own record matches no rule: "unmatched"


def test_context_is_lambda_like(declare: Declare, make_runtime: MakeRuntime, sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([], memory_size=1024, timeout_seconds=20))
    request_id = runtime.invoke_async(FN + "context_probe", {"hello": "world"})
    assert runtime.run_until_idle(10)
    [inv] = invocations(sessions, "context_probe")
    result = json.loads(inv.result)
    assert inv.request_id == request_id and inv.trigger == "direct"
    assert result["aws_request_id"] == request_id
    assert result["function_name"] == "corb-functions_for_tests-context_probe"
    assert result["invoked_function_arn"] == function_arn(FN + "context_probe").rsplit(":", 1)[0]
    assert result["memory_limit_in_mb"] == "1024"
    assert 15_000 < result["remaining_ms"] <= 20_000
    [(_, payload)] = fns.runs("context_probe")
    assert payload == {"hello": "world"}
    assert lambda_events(sessions, SUCCESS)[0]["detail"]["requestPayload"] == {"hello": "world"}


def test_on_success_null_publishes_nothing(declare: Declare, make_runtime: MakeRuntime,
                                           sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "echo", SMS)], destinations={
        "defaults": {"on_success": None}, "stages": {STAGE: {}}}))
    runtime.bus.put_events([entry("corb.sms", "SMS Command", {})])
    assert runtime.run_until_idle(10)
    assert len(fns.runs("echo")) == 1
    assert lambda_events(sessions, SUCCESS) == []


# -- retries, dead letters, replay ---------------------------------------------------------------------


def test_failure_is_retried_twice_with_backoff_then_dead_lettered(declare: Declare, make_runtime: MakeRuntime,
                                                                  sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "fail", SMS),
                                    rule("dead-letters", "record_dead_letter", FAILURES)]), backoff_base=0.1)
    times: list[float] = []
    original = fns._record

    def timed(function: str, event: Any, context: Any) -> None:
        if function == "fail":
            times.append(time.monotonic())
        original(function, event, context)

    fns._record = timed
    try:
        [event_id] = runtime.bus.put_events([entry("corb.sms", "SMS Command", {"n": 7})])
        assert runtime.run_until_idle(10)
    finally:
        fns._record = original
    runs = fns.runs("fail")
    assert len(runs) == 3 and len({rid for rid, _ in runs}) == 1  # one request, three attempts
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2  # backoff: base, then twice base
    [inv] = invocations(sessions, "fail")
    assert (inv.status, inv.attempts) == ("dead_letter", 3)
    assert inv.last_error.startswith("ValueError: boom 7")
    with sessions() as s:
        [letter] = s.scalars(select(DeadLetter))
    assert (letter.request_id, letter.function, letter.attempts) == (inv.request_id, FN + "fail", 3)
    assert json.loads(letter.payload)["id"] == event_id
    assert "ValueError: boom 7" in letter.error and 'in fail' in letter.error
    assert event_status(sessions, event_id) == "failed"
    [failure] = lambda_events(sessions, FAILURE)
    detail = failure["detail"]
    assert detail["requestContext"]["condition"] == "RetriesExhausted"
    assert detail["requestContext"]["approximateInvokeCount"] == 3
    assert detail["responseContext"]["functionError"] == "Unhandled"
    assert detail["requestPayload"]["id"] == event_id
    payload = detail["responsePayload"]
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "boom 7")
    assert any("in fail" in frame for frame in payload["stackTrace"])
    [(_, seen)] = fns.runs("record_dead_letter")  # the onFailure record reached the rule that wants it
    assert seen["id"] == failure["id"]


def test_success_on_the_last_retry(declare: Declare, make_runtime: MakeRuntime,
                                   sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "flaky", SMS)]))
    [event_id] = runtime.bus.put_events([entry("corb.sms", "SMS Command", {})])
    assert runtime.run_until_idle(10)
    assert len(fns.runs("flaky")) == 3
    [inv] = invocations(sessions, "flaky")
    assert (inv.status, inv.attempts, inv.last_error) == ("succeeded", 3, None)
    [success] = lambda_events(sessions, SUCCESS)
    assert success["detail"]["requestContext"]["approximateInvokeCount"] == 3
    assert event_status(sessions, event_id) == "delivered"
    with sessions() as s:
        assert s.scalars(select(DeadLetter)).all() == []


def test_retries_follow_destinations_json(declare: Declare, make_runtime: MakeRuntime,
                                          sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "fail", SMS)], destinations={
        "stages": {STAGE: {"functions": {FN + "fail": {"maximum_retry_attempts": 0, "on_failure": None}}}}}))
    runtime.bus.put_events([entry("corb.sms", "SMS Command", {})])
    assert runtime.run_until_idle(10)
    assert len(fns.runs("fail")) == 1
    assert lambda_events(sessions, FAILURE) == []
    with sessions() as s:
        assert len(s.scalars(select(DeadLetter)).all()) == 1  # the local record of the failure stays


@pytest.mark.parametrize(("function", "error_type"), [("not_json", "Runtime.MarshalError"),
                                                       ("does_not_exist", "Runtime.ImportModuleError")])
def test_runtime_errors_are_function_errors(declare: Declare, make_runtime: MakeRuntime,
                                            sessions: sessionmaker, function: str, error_type: str) -> None:
    runtime = make_runtime(declare([rule("sms", function, SMS)]))
    runtime.bus.put_events([entry("corb.sms", "SMS Command", {})])
    assert runtime.run_until_idle(10)
    [inv] = invocations(sessions, function)
    assert (inv.status, inv.attempts) == ("dead_letter", 3)
    assert inv.last_error.startswith(error_type)
    [failure] = lambda_events(sessions, FAILURE)
    assert failure["detail"]["responsePayload"]["errorType"] == error_type


def test_replay_redelivers_a_dead_letter(declare: Declare, make_runtime: MakeRuntime,
                                         sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "fragile", SMS)]))
    [event_id] = runtime.bus.put_events([entry("corb.sms", "SMS Command", {"body": "status"})])
    assert runtime.run_until_idle(10)
    assert len(fns.runs("fragile")) == 3
    with sessions() as s:
        [letter] = dead_letters.list_dead_letters(s)
    fns.BROKEN["on"] = False  # the dependency is back
    [replayed] = dead_letters.replay(sessions, runtime)
    assert (replayed.dead_letter_id, replayed.function) == (letter.id, FN + "fragile")
    assert runtime.run_until_idle(10)
    (_, last) = fns.runs("fragile")[-1]
    assert last["id"] == event_id and last["detail"] == {"body": "status"}  # the original request payload
    by_request = {i.request_id: i for i in invocations(sessions, "fragile")}
    assert by_request[letter.request_id].status == "replayed"
    assert (by_request[replayed.request_id].status, by_request[replayed.request_id].trigger) == ("succeeded",
                                                                                                  "replay")
    with sessions() as s:
        assert s.get(DeadLetter, letter.id).replayed_at is not None
        assert dead_letters.list_dead_letters(s) == []
        assert len(dead_letters.list_dead_letters(s, include_replayed=True)) == 1
    assert dead_letters.replay(sessions, runtime) == []  # nothing left to replay
    assert len(dead_letters.replay(sessions, LocalInvoker(sessions), [letter.id])) == 1  # asked for by id
    assert runtime.run_until_idle(10)
    assert len(fns.runs("fragile")) == 5
    with pytest.raises(KeyError, match="no dead letter"):
        dead_letters.replay(sessions, runtime, [letter.id + 1000])


def test_dead_letter_recorder_function(corb_env: dict[str, str], database_url: str, sessions: sessionmaker,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What AWS routes failure records to: idempotent, and it maps the ARN back to the dotted name."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    record = destination_record(function="bot.handlers.status.handle", request_id="req-1",
                                request_payload={"id": "evt-1", "detail": {"command_type": "status"}},
                                response_payload={"errorMessage": "db down", "errorType": "OperationalError",
                                                  "stackTrace": ["  File x, line 1\n"]},
                                success=False, attempts=3)
    event = destination_event(record, success=False)
    assert dead_letters.record(event, None)["new"] is True
    assert dead_letters.record(event, None)["new"] is False
    with sessions() as s:
        [letter] = s.scalars(select(DeadLetter))
    assert (letter.request_id, letter.function, letter.attempts) == ("req-1", "bot.handlers.status.handle", 3)
    assert json.loads(letter.payload) == {"id": "evt-1", "detail": {"command_type": "status"}}
    assert letter.error.startswith("OperationalError: db down\n  File x")
    zappa_arn = "arn:aws:lambda:us-east-1:1:function:corb-dev:$LATEST"
    assert dead_letters.function_from_arn(zappa_arn) == "corb-dev"
    with pytest.raises(ValueError, match="requestId"):
        dead_letters.record({"detail": {}}, None)


def test_a_failing_recorder_does_not_loop(declare: Declare, make_runtime: MakeRuntime,
                                          sessions: sessionmaker) -> None:
    recorder_rule = {**rule("dead-letters", "x", FAILURES), "function": dead_letters.RECORDER}
    runtime = make_runtime(declare([recorder_rule]))
    runtime.invoke_async(dead_letters.RECORDER, {"not": "a destination record"})
    assert runtime.run_until_idle(10)
    [inv] = invocations(sessions)
    assert inv.status == "dead_letter"
    assert lambda_events(sessions, FAILURE) == []


# -- event status --------------------------------------------------------------------------------------


def test_event_status_rolls_up_over_all_targets(declare: Declare, make_runtime: MakeRuntime,
                                                sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("a", "echo", SMS), rule("b", "other", SMS),
                                    rule("c", "fail", {"source": ["corb.sms"], "detail": {"fail": [True]}})]))
    ok, bad, unmatched = runtime.bus.put_events([entry("corb.sms", "SMS", {}),
                                                 entry("corb.sms", "SMS", {"fail": True}),
                                                 entry("corb.nobody", "X", {})])
    assert {event_status(sessions, i) for i in (ok, bad)} == {"pending"}
    assert runtime.run_until_idle(10)
    assert [event_status(sessions, i) for i in (ok, bad, unmatched)] == ["delivered", "failed", "unmatched"]


# -- claiming, leases, timeouts ------------------------------------------------------------------------


def test_two_runtimes_never_run_one_invocation_twice(
        declare: Declare, database_url: str, make_runtime: MakeRuntime, sessions: sessionmaker) -> None:
    """Two runtimes with their own engines (as two processes would be) drain one queue."""
    declaration = declare([rule("sms", "slow", SMS)], destinations={
        "defaults": {"on_success": None}, "stages": {STAGE: {}}})
    other_engine = make_engine(database_url)
    try:
        first = make_runtime(declaration, workers=3, poll_interval=0.01)
        second = make_runtime(declaration, workers=3, poll_interval=0.01,
                              sessions=make_sessionmaker(other_engine))
        first.start()
        second.start()
        for chunk in range(6):
            first.bus.put_events([entry("corb.sms", "SMS", {"sleep": 0.01, "n": chunk * 10 + i})
                                  for i in range(10)])
        assert first.run_until_idle(30) and second.run_until_idle(30)
        first.stop()
        second.stop()
    finally:
        other_engine.dispose()
    runs = fns.runs("slow")
    assert len(runs) == 60
    assert len({rid for rid, _ in runs}) == 60  # every request ran exactly once
    assert {(i.status, i.attempts) for i in invocations(sessions, "slow")} == {("succeeded", 1)}


def test_an_expired_lease_is_a_failed_attempt(declare: Declare, make_runtime: MakeRuntime,
                                              sessions: sessionmaker) -> None:
    """A row left ``running`` by a runtime that died is retried once its lease runs out."""
    runtime = make_runtime(declare([]))
    with sessions() as s, s.begin():
        retried = enqueue(s, FN + "echo", {"n": 1}, trigger="direct")
        exhausted = enqueue(s, FN + "echo", {"n": 2}, trigger="direct")
        alive = enqueue(s, FN + "echo", {"n": 3}, trigger="direct")
        past, future = utcnow() - timedelta(seconds=1), utcnow() + timedelta(hours=1)
        for rid, attempts, lease in ((retried, 1, past), (exhausted, 3, past), (alive, 1, future)):
            s.execute(update(Invocation).where(Invocation.request_id == rid)
                      .values(status="running", attempts=attempts, next_attempt_at=lease))
    assert runtime.run_until_idle(1) is False  # the live lease belongs to someone else: not idle
    by_request = {i.request_id: i for i in invocations(sessions, "echo")}
    assert (by_request[retried].status, by_request[retried].attempts) == ("succeeded", 2)
    assert by_request[exhausted].status == "dead_letter"
    assert by_request[exhausted].last_error.startswith("Runtime.ExitError")
    assert by_request[alive].status == "running"
    assert [e["n"] for _, e in fns.runs("echo")] == [1]


def test_a_function_past_its_timeout_loses_its_lease(declare: Declare, make_runtime: MakeRuntime,
                                                     sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([], timeout_seconds=0.2, destinations={
        "defaults": {"maximum_retry_attempts": 0}, "stages": {STAGE: {}}}), lease_s=0.3, timeout_grace_s=0.0)
    runtime.invoke_async(FN + "slow", {"detail": {"sleep": 1.0}})
    assert runtime.run_until_idle(5)
    [inv] = invocations(sessions, "slow")
    assert inv.status == "dead_letter"
    assert inv.last_error.startswith("Sandbox.Timedout: Task timed out after 0.20 seconds")
    deadline = time.monotonic() + 3
    while len(runtime._running) and time.monotonic() < deadline:  # the overrunning thread ends...
        time.sleep(0.02)
    [inv] = invocations(sessions, "slow")
    assert inv.status == "dead_letter" and inv.result is None  # ...and its late outcome is fenced off
    assert lambda_events(sessions, SUCCESS) == []


def test_stop_lets_running_invocations_finish(declare: Declare, make_runtime: MakeRuntime,
                                              sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([])).start()
    runtime.invoke_async(FN + "slow", {"detail": {"sleep": 0.3}})
    deadline = time.monotonic() + 5
    while not fns.runs("slow") and time.monotonic() < deadline:
        time.sleep(0.01)
    runtime.stop()
    [inv] = invocations(sessions, "slow")
    assert inv.status == "succeeded"
    runtime.invoke_async(FN + "echo", {})  # a stopped runtime claims nothing
    time.sleep(0.1)
    assert invocations(sessions, "echo")[0].status == "pending"


def test_run_until_idle_reports_a_timeout(declare: Declare, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(declare([]))
    runtime.invoke_async(FN + "slow", {"detail": {"sleep": 0.5}})
    assert runtime.run_until_idle(0.1) is False


def test_retries_due_after_the_horizon_do_not_count(declare: Declare, make_runtime: MakeRuntime,
                                                   sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "fail", SMS)]), backoff_base=60)
    runtime.bus.put_events([entry("corb.sms", "SMS", {})])
    assert runtime.run_until_idle(2)  # the first retry is a minute away
    [inv] = invocations(sessions, "fail")
    assert (inv.status, inv.attempts) == ("retrying", 1)


# -- schedules -----------------------------------------------------------------------------------------


def test_schedules_fire_once_per_slot_across_runtimes(declare: Declare, make_runtime: MakeRuntime,
                                                      sessions: sessionmaker) -> None:
    declaration = declare([{"function": FN + "echo", "expression": "rate(5 minutes)", "kwargs": {"k": 1}}])
    a, b = make_runtime(declaration, schedules=True), make_runtime(declaration, schedules=True)
    now = datetime(2026, 1, 1, 10, 1)
    assert a.fire_schedules(now) + b.fire_schedules(now) == 1
    assert a.fire_schedules(now + timedelta(minutes=3)) == 0  # same five-minute slot
    assert b.fire_schedules(now + timedelta(minutes=4)) == 1
    [first, _] = invocations(sessions, "echo")
    event = json.loads(first.payload)
    assert first.trigger == "schedule"
    assert (event["source"], event["detail-type"]) == ("aws.events", "Scheduled Event")
    assert event["kwargs"] == {"k": 1}
    # Zappa's handler finds a scheduled function after the last '-' of the rule's name.
    assert event["resources"][0].split("/")[-1].split("-")[-1] == FN + "echo"


def test_schedules_run_while_started(declare: Declare, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(declare([{"function": FN + "echo", "expression": "rate(1 hour)"}]), schedules=True)
    runtime.start()
    deadline = time.monotonic() + 5
    while not fns.runs("echo") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(fns.runs("echo")) == 1


# -- housekeeping --------------------------------------------------------------------------------------


def test_purge_history_keeps_failures(declare: Declare, make_runtime: MakeRuntime,
                                      sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([rule("sms", "echo", SMS), rule("bad", "fail", {"source": ["corb.bad"]})]))
    runtime.bus.put_events([entry("corb.sms", "SMS", {}), entry("corb.bad", "X", {})])
    assert runtime.run_until_idle(10)
    with sessions() as s, s.begin():
        assert purge_history(s, timedelta(hours=1)) == {"invocations": 0, "events": 0}
    with sessions() as s, s.begin():
        counts = purge_history(s, timedelta(seconds=-60))  # everything is "old"
    # echo's invocation; its event (delivered) and both destination records (matched no rule, unmatched)
    assert counts == {"invocations": 1, "events": 3}
    assert [i.status for i in invocations(sessions)] == ["dead_letter"]
    with sessions() as s:
        assert [e.status for e in s.scalars(select(BusEvent))] == ["failed"]


def test_invoke_is_thread_safe(declare: Declare, make_runtime: MakeRuntime, sessions: sessionmaker) -> None:
    runtime = make_runtime(declare([]))
    ids: list[str] = []
    def invoke() -> None:
        ids.append(runtime.invoke_async(FN + "echo", {}))

    threads = [threading.Thread(target=invoke) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runtime.run_until_idle(10)
    assert sorted(rid for rid, _ in fns.runs("echo")) == sorted(ids)


def test_start_embedded_wires_the_real_declaration(corb_env: dict[str, str], database_url: str,
                                                   sessions: sessionmaker,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``corb serve`` starts beside the web app: every function imports, runtime and watcher run."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    embedded = start_embedded(load_config(), sessions=sessions, schedules=False, poll_interval=0.05)
    try:
        assert embedded.runtime.started and embedded.watcher is not None
        assert embedded.watcher in embedded.runtime.pollers
        assert embedded.bus.declaration is embedded.runtime.declaration
        assert embedded.declaration.stage == "dev"
    finally:
        embedded.stop()
    assert not embedded.runtime.started
