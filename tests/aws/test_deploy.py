"""``corb deploy`` against the moto server, after Zappa's own ``schedule`` step has run on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from cloud.aws import session
from cloud.aws.deploy import TARGET_ID, plan_stage
from cloud.aws.lambda_handler import ROUTE
from cloud.declaration import load_declaration

from .conftest import create_lambdas

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = {"corb-dev": "corb-dev-web", "corb-dev-detection": "corb-dev-detection"}


def zappa(monkeypatch: pytest.MonkeyPatch, *argv: str) -> None:
    """Run Zappa's own CLI in-process (its settings callback included), without its PyPI version check."""
    from zappa import cli as zappa_cli

    monkeypatch.setattr(zappa_cli, "check_new_version_available", lambda version: False)
    monkeypatch.chdir(ROOT)
    zappa_cli.ZappaCLI().handle(list(argv))


@pytest.fixture
def deployed(aws: str, bucket_name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The account as `zappa deploy dev && zappa deploy dev_detection` leaves it (code, roles, schedule)."""
    arns = create_lambdas(LAMBDAS)
    zappa(monkeypatch, "schedule", "dev")
    zappa(monkeypatch, "schedule", "dev_detection")
    return arns


def deploy(*args: str) -> Any:
    return CliRunner().invoke(main, ["deploy", "dev", *args], catch_exceptions=False)


def test_zappa_is_left_only_what_it_handles(deployed: dict[str, str], events: Any, s3: Any) -> None:
    """With the settings callback, `zappa schedule` makes the S3 notification and the schedule, no rules."""
    names = {r["Name"] for r in events.list_rules()["Rules"]}
    assert names == {"corb-dev-bot.handlers.retention.purge"}
    conf = s3.get_bucket_notification_configuration(Bucket="corb-video")["LambdaFunctionConfigurations"]
    assert [c["LambdaFunctionArn"] for c in conf] == [deployed["corb-dev-detection"]]


def test_dry_run_prints_the_plan_and_changes_nothing(deployed: dict[str, str], events: Any) -> None:
    result = deploy("--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    decl = load_declaration("dev")
    for rule in decl.rules:
        assert f"create    rule             {rule.name}  (-> {rule.function})" in lines
        assert any(line.startswith("create    target           " + rule.name) for line in lines)
        assert f"create    permission       corb-dev <- {rule.name}  (events.amazonaws.com)" in lines
    assert any(line.startswith("create    async-config     corb-dev ") for line in lines)
    assert any(line.startswith("create    async-config     corb-dev-detection ") for line in lines)
    assert "unchanged s3-notification  s3://corb-video -> corb-dev-detection" in lines  # Zappa made it
    assert "unchanged schedule         corb-dev-bot.handlers.retention.purge" in lines
    assert ("create    s3-lifecycle     s3://corb-video  (cameras/ 1 d, footage/ 7 d, snapshots/ 30 d, "
            "results/ 30 d, * - d)") in lines
    assert lines[-1].startswith("dry run, nothing applied: stage dev: 30 to create, 0 to update")
    assert {r["Name"] for r in events.list_rules()["Rules"]} == {"corb-dev-bot.handlers.retention.purge"}


def test_deploy_creates_rules_targets_permissions_destinations_then_is_a_no_op(
        deployed: dict[str, str], events: Any, s3: Any) -> None:
    first = deploy()
    assert first.exit_code == 0, first.output
    lam = session.client("lambda")
    bus_arn = events.describe_event_bus(Name="default")["Arn"]
    policy = json.loads(lam.get_policy(FunctionName="corb-dev")["Policy"])["Statement"]
    for rule in load_declaration("dev").rules:
        described = events.describe_rule(Name=rule.name)
        assert json.loads(described["EventPattern"]) == rule.pattern
        assert described["State"] == "ENABLED"
        [target] = events.list_targets_by_rule(Rule=rule.name)["Targets"]
        assert target["Id"] == TARGET_ID and target["Arn"] == deployed["corb-dev"]
        template = target["InputTransformer"]["InputTemplate"]
        assert template.endswith('"event": <aws.events.event.json>}')
        assert json.loads(template.replace("<aws.events.event.json>", "{}")) == {
            "command": ROUTE, "function": rule.function, "rule": rule.name, "event": {}}
        [st] = [s for s in policy if s["Sid"] == f"corb-{rule.name}"]
        assert st["Principal"] == {"Service": "events.amazonaws.com"}
        assert st["Condition"]["ArnLike"]["AWS:SourceArn"] == described["Arn"]
    for name in LAMBDAS:
        conf = lam.get_function_event_invoke_config(FunctionName=name)
        assert conf["MaximumRetryAttempts"] == 2
        assert conf["DestinationConfig"] == {"OnSuccess": {"Destination": bus_arn},
                                             "OnFailure": {"Destination": bus_arn}}
    [notif] = s3.get_bucket_notification_configuration(Bucket="corb-video")["LambdaFunctionConfigurations"]
    rules = {r["Name"].lower(): r["Value"] for r in notif["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "cameras/", "suffix": ".mkv"}
    assert notif["Events"] == ["s3:ObjectCreated:*"]
    lifecycle = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="corb-video")["Rules"]}
    assert lifecycle["corb-expire-cameras"]["Filter"] == {"Prefix": "cameras/"}
    assert lifecycle["corb-expire-cameras"]["Expiration"] == {"Days": 1}
    assert lifecycle["corb-expire-footage"]["Expiration"] == {"Days": 7}
    assert lifecycle["corb-expire-results"]["Expiration"] == {"Days": 30}

    second = deploy()
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[-1].startswith("stage dev: nothing to change")
    assert all(line.startswith("unchanged") for line in second.output.splitlines()[:-1])


def test_after_zappa_update_deleted_the_rules_corb_deploy_restores_them(
        deployed: dict[str, str], events: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert deploy().exit_code == 0
    zappa(monkeypatch, "schedule", "dev")  # what `zappa update dev` does last: unschedule everything, re-add
    assert {r["Name"] for r in events.list_rules()["Rules"]} == {"corb-dev-bot.handlers.retention.purge"}
    plan = plan_stage("dev")
    assert {c.kind for c in plan.pending} == {"rule", "target", "permission"}
    assert deploy().exit_code == 0
    assert len(events.list_rules()["Rules"]) == 10
    assert plan_stage("dev").pending == []


def test_a_changed_pattern_and_a_stale_raw_target_are_updated(deployed: dict[str, str], events: Any) -> None:
    assert deploy().exit_code == 0
    events.put_rule(Name="corb-dev-status", EventPattern=json.dumps({"source": ["corb.sms"]}),
                    State="ENABLED",
                    Description="corb: bot.handlers.status.handle")
    events.put_targets(Rule="corb-dev-status", Targets=[{"Id": "zappa-raw", "Arn": deployed["corb-dev"]}])
    lines = deploy("--dry-run").output.splitlines()
    assert "update    rule             corb-dev-status  (pattern)" in lines
    assert "update    target           corb-dev-status  (remove stale target(s) zappa-raw)" in lines
    assert deploy().exit_code == 0
    [target] = events.list_targets_by_rule(Rule="corb-dev-status")["Targets"]
    assert target["Id"] == TARGET_ID


def test_missing_lambdas_are_reported_and_fail_the_command(aws: str, bucket_name: str) -> None:
    create_lambdas({"corb-dev": "corb-dev-web"})  # dev_detection not deployed yet
    result = deploy()
    assert result.exit_code != 0
    assert "missing   async-config     corb-dev-detection  (Lambda not deployed yet)" in result.output
    assert "could not be applied yet" in result.output
    assert session.client("events").describe_rule(Name="corb-dev-status")["State"] == "ENABLED"
