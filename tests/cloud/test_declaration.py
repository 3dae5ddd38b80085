"""The one declaration: the real zappa_settings.json + destinations.json, and what a bad one reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cloud_helpers import FN, STAGE, rule, s3_trigger, write_declaration

from cloud.declaration import (
    AsyncConfig,
    Declaration,
    DeclarationError,
    S3Trigger,
    load_declaration,
    parse_schedule,
)
from cloud.events import destination_event, destination_record, eventbridge_event

# -- the real declaration ------------------------------------------------------------------------------


def test_real_declaration_loads_dev_and_its_companion_stages() -> None:
    d = load_declaration("dev")
    assert d.stages == ("dev", "dev_detection")
    names = {r.name for r in d.rules}
    assert {"corb-dev-status", "corb-dev-cleaning-report", "corb-dev-dead-letters"} <= names
    assert d.s3_triggers == (S3Trigger(function="detection.handler.handle", bucket="corb-video",
                                       events=("s3:ObjectCreated:*",), prefix="cameras/", suffix=".mkv",
                                       stage="dev_detection"),)
    assert [(s.function, s.expression) for s in d.schedules] == [
        ("bot.handlers.retention.purge", "rate(1 hour)"),
        ("bot.handlers.camera_health.check", "rate(1 minute)"), ("cloud.reconcile.run", "rate(15 minutes)")]
    assert "cloud.dead_letters.record" in d.functions
    assert d.app_functions == ("bot.wsgi.app",)
    # The detection Lambda's own settings reach the runtime (timeout, memory); others get dev's.
    assert d.settings("detection.handler.handle").timeout_s == 300
    assert d.settings("detection.handler.handle").memory_mb == 1024  # what bench/cost.py prices
    assert d.settings("bot.handlers.status.handle").timeout_s == 30
    assert d.async_config("bot.handlers.status.handle") == AsyncConfig(2, "bus", "bus")


def test_real_cleaning_rules_chain_on_destination_records() -> None:
    """The original design's rule, unchanged, routes parse's result to the report generator."""
    d = load_declaration("dev")
    report = next(r for r in d.rules if r.name == "corb-dev-cleaning-report")
    assert report.pattern == {"detail": {"responsePayload": {"command_type": ["request_cleaning"]}}}
    record = destination_record(function="bot.handlers.cleaning.record_request", request_id="r-1",
                                request_payload={}, response_payload={"command_type": "request_cleaning"},
                                success=True, attempts=1)
    targets = [r.function for r in d.rules_for(destination_event(record, success=True))]
    assert targets == ["bot.handlers.cleaning.generate_report"]
    sms = eventbridge_event("corb.sms", "SMS Command", {"command_type": "request_cleaning"})
    assert [r.function for r in d.rules_for(sms)] == ["bot.handlers.cleaning.record_request"]
    failure = destination_record(function="x.y", request_id="r-2", request_payload={}, success=False,
                                 response_payload={"errorMessage": "boom"}, attempts=3)
    assert [r.function for r in d.rules_for(destination_event(failure, success=False))] == [
        "cloud.dead_letters.record"]


def test_every_declared_function_is_importable() -> None:
    """``corb serve`` runs this check at start-up: every function and the WSGI app must import."""
    load_declaration("dev").check_functions()


# -- merging stages ------------------------------------------------------------------------------------


def test_companion_stages_merge_and_others_do_not(tmp_path: Path) -> None:
    root = write_declaration(tmp_path, [rule("r-main", "echo", {"source": ["a"]})], stages={
        f"{STAGE}_detection": {"extends": "base", "timeout_seconds": 300,
                               "events": [s3_trigger("other", prefix="cameras/")]},
        "prod": {"extends": STAGE, "events": [rule("r-prod", "echo", {"source": ["b"]})]},
        "testing": {"events": [rule("r-testing", "echo", {"source": ["c"]})]},  # not "test_*"
    }, destinations={"stages": {STAGE: {}, f"{STAGE}_detection": {}, "prod": {}}})
    d = load_declaration(STAGE, root)
    assert d.stages == (STAGE, f"{STAGE}_detection")
    assert [r.name for r in d.rules] == ["r-main"]
    assert [t.function for t in d.s3_triggers] == [FN + "other"]
    assert d.settings(FN + "other").timeout_s == 300
    # "prod" extends "test" but replaces its events, as Zappa's shallow merge does.
    assert [r.name for r in load_declaration("prod", root).rules] == ["r-prod"]


def test_extends_errors(tmp_path: Path) -> None:
    (tmp_path / "zappa_settings.json").write_text(json.dumps({
        STAGE: {"extends": "loop"}, "loop": {"extends": STAGE}}))
    (tmp_path / "destinations.json").write_text("{}")
    with pytest.raises(DeclarationError, match="circular 'extends'"):
        load_declaration(STAGE, tmp_path)
    (tmp_path / "zappa_settings.json").write_text(json.dumps({STAGE: {"extends": "nowhere"}}))
    with pytest.raises(DeclarationError, match="unknown stage 'nowhere'"):
        load_declaration(STAGE, tmp_path)
    with pytest.raises(DeclarationError, match="no stage 'missing'"):
        load_declaration("missing", tmp_path)


def test_disabled_events_are_skipped(declare: Callable[..., Declaration]) -> None:
    d = declare([{**rule("r1", "echo", {"source": ["a"]}), "enabled": False},
                 rule("r2", "echo", {"source": ["a"]})])
    assert [r.name for r in d.rules] == ["r2"]


# -- what a bad declaration reports --------------------------------------------------------------------


def test_every_problem_is_reported_at_once(declare: Callable[..., Declaration]) -> None:
    bad_rule = rule("r-bad", "echo", {"source": "not-a-list"})
    typo = {"function": FN + "echo", "event_source": {"arn": "arn:aws:s3:::b", "prefx": "cameras/"}}
    with pytest.raises(DeclarationError) as info:
        declare([bad_rule, typo, {"function": FN + "echo", "expresion": "rate(1 hour)"},
                 {"function": "no_dots", "expression": "rate(1 hour)"},
                 {"function": FN + "echo", "expression": "rate(1 hour)",
                  "event_source": {"arn": "arn:aws:events:::rule/x"}},
                 {"function": FN + "echo", "event_source": {"arn": "arn:aws:sqs:us-east-1:0:queue"}}])
    problems = info.value.problems
    text = str(info.value)
    assert "events[0].event_source: rule r-bad: invalid event_pattern: source: must be an object" in text
    assert "events[1].event_source: unknown key(s) 'prefx'" in text
    assert "events[2]: unknown key(s) 'expresion'" in text
    assert "'function' must be a dotted" in text
    assert "needs exactly one of 'expression(s)' or 'event_source'" in text
    assert "ARN service 'sqs' is not supported" in text
    assert len(problems) >= 6


def test_pattern_given_as_json_text(declare: Callable[..., Declaration]) -> None:
    d = declare([{"function": FN + "echo", "event_source": {
        "arn": "arn:aws:events:us-east-1:0:rule/r", "rule_name": "r", "event_pattern": '{"source": ["a"]}'}}])
    assert d.rules[0].pattern == {"source": ["a"]}


def test_duplicate_rule_names(declare: Callable[..., Declaration]) -> None:
    with pytest.raises(DeclarationError, match="rule name 'r' is declared twice"):
        declare([rule("r", "echo", {"source": ["a"]}), rule("r", "other", {"source": ["b"]})])


@pytest.mark.parametrize(("expression", "message"), [
    ("rate(1 minutes)", "rate(1 minute)"),
    ("rate(5 minute)", "rate(1 minute)"),
    ("rate(0 hours)", "rate(1 hour)"),
    ("rate(2 weeks)", "not a schedule expression"),
    ("cron(0 10 * * ?)", "6 fields"),
    ("cron(0 10 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 10 L * ? *)", "not supported by the embedded runtime"),
    ("cron(0 10 ? * 6#3 *)", "not supported by the embedded runtime"),
    ("cron(61 10 * * ? *)", "not in 0-59"),
    ("cron(0 10 * FOO ? *)", "not in 1-12"),
    ("every hour", "not a schedule expression"),
])
def test_bad_schedules(declare: Callable[..., Declaration], expression: str, message: str) -> None:
    with pytest.raises(DeclarationError, match=None) as info:
        declare([{"function": FN + "echo", "expression": expression}])
    assert message in str(info.value)


def test_check_functions_names_what_is_missing(declare: Callable[..., Declaration]) -> None:
    d = declare([rule("r1", "echo", {"source": ["a"]}), rule("r2", "nope", {"source": ["a"]}),
                 rule("r3", "no_such_module_xyz.handle", {"source": ["a"]})], app_function=FN + "RUNS")
    with pytest.raises(DeclarationError) as info:
        d.check_functions()
    assert len(info.value.problems) == 2
    assert "functions_for_tests.nope" in str(info.value)
    assert "no_such_module_xyz" in str(info.value)
    declare([rule("r1", "echo", {"source": ["a"]})], app_function=FN + "RUNS").check_functions()


# -- destinations.json ---------------------------------------------------------------------------------


def test_destinations_precedence(declare: Callable[..., Declaration]) -> None:
    d = declare([rule("r1", "echo", {"source": ["a"]}), rule("r2", "fail", {"source": ["a"]}),
                 rule("r3", "other", {"source": ["a"]})],
                destinations={"_comment": "ignored", "defaults": {"maximum_retry_attempts": 2},
                              "stages": {STAGE: {"on_success": None, "functions": {
                                  FN + "fail": {"maximum_retry_attempts": 0, "on_failure": None},
                                  FN + "other": {"on_success": "bus"}}}}})
    assert d.async_config(FN + "echo") == AsyncConfig(2, None, "bus")
    assert d.async_config(FN + "fail") == AsyncConfig(0, None, None)
    assert d.async_config(FN + "other") == AsyncConfig(2, "bus", "bus")
    assert d.async_config("not.declared") == AsyncConfig(2, None, "bus")  # the stage's own settings


def test_destination_problems(declare: Callable[..., Declaration]) -> None:
    with pytest.raises(DeclarationError) as info:
        declare([rule("r1", "echo", {"source": ["a"]})], destinations={
            "defaults": {"maximum_retry_attempts": 3, "on_sucess": "bus"},
            "stages": {STAGE: {"on_failure": "arn:aws:sqs:us-east-1:0:dlq",
                               "functions": {"elsewhere.fn": {}}},
                       "nostage": {}}})
    text = str(info.value)
    assert "maximum_retry_attempts must be 0, 1 or 2" in text
    assert "unknown key(s) 'on_sucess'" in text
    assert "on_failure must be \"bus\" or null" in text
    assert "'elsewhere.fn' is not a function of stage" in text
    assert "stages not in zappa_settings.json: nostage" in text


# -- S3 triggers and schedules -------------------------------------------------------------------------


def test_s3_trigger_filters() -> None:
    t = S3Trigger(function="f.g", bucket="b", events=("s3:ObjectCreated:*",), prefix="cameras/",
                  suffix=".mkv", stage="dev")
    assert t.matches("cameras/lobby/2026-01-01T00:00:00Z.mkv")
    assert t.matches("cameras/a.mkv", "ObjectCreated:CompleteMultipartUpload")
    assert not t.matches("snapshots/a.mkv")
    assert not t.matches("cameras/a.mkv.part")
    assert not t.matches("cameras/a.mkv", "ObjectRemoved:Delete")
    exact = S3Trigger(function="f.g", bucket="b", events=("s3:ObjectCreated:Put",), prefix="", suffix="",
                      stage="dev")
    assert exact.matches("x") and not exact.matches("x", "ObjectCreated:Copy")


def test_bad_s3_event_names(declare: Callable[..., Declaration]) -> None:
    with pytest.raises(DeclarationError, match="is not an S3 event name"):
        declare([s3_trigger("echo", events=["ObjectCreated:*"])])


def test_rate_slots() -> None:
    hourly = parse_schedule("rate(1 hour)")
    assert hourly.slot(datetime(2026, 1, 1, 10, 0)) == hourly.slot(datetime(2026, 1, 1, 10, 59, 59))
    assert hourly.slot(datetime(2026, 1, 1, 10, 59)) != hourly.slot(datetime(2026, 1, 1, 11, 0))
    assert parse_schedule("rate(5 minutes)").seconds == 300
    assert parse_schedule("rate(2 days)").seconds == 2 * 86400


def test_cron_schedules() -> None:
    weekdays = parse_schedule("cron(15 12 ? * MON-FRI *)")
    assert weekdays.next_after(datetime(2026, 1, 3, 12, 0)) == datetime(2026, 1, 5, 12, 15)  # Sat -> Mon
    assert weekdays.slot(datetime(2026, 1, 5, 12, 15, 30)) == "cron:2026-01-05T12:15"
    assert weekdays.slot(datetime(2026, 1, 4, 12, 15)) is None  # Sunday
    quarter = parse_schedule("cron(0/15 * * * ? *)")
    assert quarter.minutes == frozenset({0, 15, 30, 45})
    sundays = parse_schedule("cron(0 8 ? * 1 2026)")  # AWS: 1 is Sunday
    assert sundays.next_after(datetime(2026, 1, 1)) == datetime(2026, 1, 4, 8, 0)
    assert sundays.next_after(datetime(2026, 12, 31)) is None  # the year field ends it
    monthly = parse_schedule("cron(0 0 1 JAN,JUL ? *)")
    assert monthly.next_after(datetime(2026, 2, 1)) == datetime(2026, 7, 1)
