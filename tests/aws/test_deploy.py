"""``corb deploy`` against the moto server, after Zappa's own ``schedule`` step has run on it: the stage's
bus, the ``live`` alias, and every trigger on them, where Zappa's commands never reach."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.cli import main
from cloud.aws import session
from cloud.aws.deploy import TARGET_ID, DeployError, plan_stage
from cloud.aws.lambda_handler import ROUTE
from cloud.aws.stages import ALIAS, Deployment, StageBusError
from cloud.declaration import load_declaration

from .conftest import create_lambdas
from .wire import WireProxy

ROOT = Path(__file__).resolve().parents[2]
LAMBDAS = {"corb-dev": "corb-dev-web", "corb-dev-detection": "corb-dev-detection"}
SCHEDULES = {"corb-dev-bot.handlers.retention.purge", "corb-dev-bot.handlers.camera_health.check"}


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


def alias_arn(arn: str) -> str:
    return f"{arn}:{ALIAS}"


def test_zappa_is_left_only_the_schedules(deployed: dict[str, str], events: Any, s3: Any) -> None:
    """With the settings callback, `zappa schedule` makes the schedules: no rule, no S3 notification."""
    names = {r["Name"] for r in events.list_rules()["Rules"]}
    assert names == {"corb-dev-bot.handlers.retention.purge", "corb-dev-bot.handlers.camera_health.check",
                     "corb-dev-detection-cloud.reconcile.run"}
    conf = s3.get_bucket_notification_configuration(Bucket="corb-video")
    assert conf.get("LambdaFunctionConfigurations", []) == []


def test_dry_run_prints_the_plan_and_changes_nothing(deployed: dict[str, str], events: Any) -> None:
    result = deploy("--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    decl = load_declaration("dev")
    assert "create    event-bus        corb-dev  (custom bus)" in lines
    assert "create    alias            corb-dev:live  (-> $LATEST)" in lines
    for rule in decl.rules:
        assert f"create    rule             {rule.name}  (-> {rule.function})" in lines
        assert any(line.startswith("create    target           " + rule.name) for line in lines)
        assert f"create    permission       corb-dev:live <- {rule.name}  (events.amazonaws.com)" in lines
    for name in ("corb-dev:live", "corb-dev", "corb-dev-detection:live", "corb-dev-detection"):
        assert any(line.startswith(f"create    async-config     {name} ") for line in lines)
    assert any(line.startswith("create    s3-notification  s3://corb-video -> corb-dev-detection:live")
               for line in lines)
    assert "unchanged schedule         corb-dev-bot.handlers.retention.purge" in lines
    assert ("create    s3-lifecycle     s3://corb-video  (cameras/ 1 d, quiet/ 1 d, footage/ 3 d, "
            "snapshots/ 30 d, results/ 30 d, * - d)") in lines
    assert lines[-1].startswith("dry run, nothing applied: stage dev: 37 to create, 0 to update")
    assert [b["Name"] for b in events.list_event_buses()["EventBuses"]] == ["default"]


def test_deploy_creates_bus_alias_rules_targets_permissions_destinations_then_is_a_no_op(
        deployed: dict[str, str], events: Any, s3: Any) -> None:
    first = deploy()
    assert first.exit_code == 0, first.output
    lam = session.client("lambda")
    bus_arn = events.describe_event_bus(Name="corb-dev")["Arn"]
    for name, arn in deployed.items():
        alias = lam.get_alias(FunctionName=name, Name=ALIAS)
        assert alias["FunctionVersion"] == "$LATEST" and alias["AliasArn"] == alias_arn(arn)
    policy = json.loads(lam.get_policy(FunctionName="corb-dev", Qualifier=ALIAS)["Policy"])["Statement"]
    for rule in load_declaration("dev").rules:
        described = events.describe_rule(Name=rule.name, EventBusName="corb-dev")
        assert described["Arn"].endswith(f":rule/corb-dev/{rule.name}")
        assert json.loads(described["EventPattern"]) == rule.pattern
        assert described["State"] == "ENABLED"
        [target] = events.list_targets_by_rule(Rule=rule.name, EventBusName="corb-dev")["Targets"]
        assert target["Id"] == TARGET_ID and target["Arn"] == alias_arn(deployed["corb-dev"])
        template = target["InputTransformer"]["InputTemplate"]
        assert template.endswith('"event": <aws.events.event.json>}')
        assert json.loads(template.replace("<aws.events.event.json>", "{}")) == {
            "command": ROUTE, "function": rule.function, "rule": rule.name, "event": {}}
        [st] = [s for s in policy if s["Sid"] == f"corb-{rule.name}"]
        assert st["Principal"] == {"Service": "events.amazonaws.com"}
        assert st["Resource"] == alias_arn(deployed["corb-dev"])
        assert st["Condition"]["ArnLike"]["AWS:SourceArn"] == described["Arn"]
    assert events.list_rules()["Rules"] and all(  # the default bus holds Zappa's schedules only
        r.get("ScheduleExpression") for r in events.list_rules()["Rules"])
    for name in LAMBDAS:
        for where in ({}, {"Qualifier": ALIAS}):
            conf = lam.get_function_event_invoke_config(FunctionName=name, **where)
            assert conf["MaximumRetryAttempts"] == 2
            assert conf["DestinationConfig"] == {"OnSuccess": {"Destination": bus_arn},
                                                 "OnFailure": {"Destination": bus_arn}}
    [notif] = s3.get_bucket_notification_configuration(Bucket="corb-video")["LambdaFunctionConfigurations"]
    assert notif["Id"] == "corb-dev-detection:detection.handler.handle"  # Zappa's handler routes by it
    assert notif["LambdaFunctionArn"] == alias_arn(deployed["corb-dev-detection"])
    rules = {r["Name"].lower(): r["Value"] for r in notif["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "cameras/", "suffix": ".mkv"}
    assert notif["Events"] == ["s3:ObjectCreated:*"]
    lifecycle = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket="corb-video")["Rules"]}
    assert lifecycle["corb-expire-cameras"]["Filter"] == {"Prefix": "cameras/"}
    assert lifecycle["corb-expire-cameras"]["Expiration"] == {"Days": 1}
    assert lifecycle["corb-expire-footage"]["Expiration"] == {"Days": 3}
    assert lifecycle["corb-expire-results"]["Expiration"] == {"Days": 30}

    second = deploy()
    assert second.exit_code == 0, second.output
    assert second.output.splitlines()[-1].startswith("stage dev: nothing to change")
    assert all(line.startswith("unchanged") for line in second.output.splitlines()[:-1])


def test_zappa_schedule_leaves_corbs_triggers_where_they_are(
        deployed: dict[str, str], aws: str, events: Any, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`zappa schedule` / `unschedule` (what `zappa deploy` and `update` run last) leave every rule, target
    and notification of Corb's in place. On the wire: Zappa removes permissions from the bare function only
    (on AWS the alias has its own policy; moto shares one), deletes rules on the default bus only, and never
    writes the bucket's notification configuration."""
    assert deploy().exit_code == 0

    def triggers() -> tuple[dict, list]:
        rules = {r["Name"]: events.list_targets_by_rule(Rule=r["Name"], EventBusName="corb-dev")["Targets"]
                 for r in events.list_rules(EventBusName="corb-dev")["Rules"]}
        notification = s3.get_bucket_notification_configuration(Bucket="corb-video")
        return rules, notification["LambdaFunctionConfigurations"]

    before = triggers()
    proxy = WireProxy(aws).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # Zappa's own clients go through the recorder
    try:
        for command in ("schedule", "unschedule"):
            for stage in ("dev", "dev_detection"):
                zappa(monkeypatch, command, stage)
                assert triggers() == before
    finally:
        proxy.stop()
        monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    assert len(before[0]) == len(load_declaration("dev").rules)
    removed = [r.target for r in proxy.recorded
               if r.target.startswith("DELETE /2015-03-31/functions/") and "/policy/" in r.target]
    assert removed and not any("Qualifier" in t for t in removed)  # the schedules' statements, unqualified
    deleted = [r.json() for r in proxy.recorded if r.target == "AWSEvents.DeleteRule"]
    assert deleted and all(d.get("EventBusName", "default") == "default" for d in deleted)
    assert not any(r.target.startswith("PUT ") and "notification" in r.target for r in proxy.recorded)


def test_a_changed_pattern_and_a_stale_raw_target_are_updated(deployed: dict[str, str], events: Any) -> None:
    assert deploy().exit_code == 0
    events.put_rule(Name="corb-dev-status", EventBusName="corb-dev", EventPattern=json.dumps(
        {"source": ["corb.sms"]}), State="ENABLED", Description="corb: bot.handlers.status.handle")
    events.put_targets(Rule="corb-dev-status", EventBusName="corb-dev",
                       Targets=[{"Id": "zappa-raw", "Arn": deployed["corb-dev"]}])
    lines = deploy("--dry-run").output.splitlines()
    assert "update    rule             corb-dev-status  (pattern)" in lines
    assert "update    target           corb-dev-status  (remove stale target(s) zappa-raw)" in lines
    assert deploy().exit_code == 0
    [target] = events.list_targets_by_rule(Rule="corb-dev-status", EventBusName="corb-dev")["Targets"]
    assert target["Id"] == TARGET_ID


def test_what_zappa_managed_before_is_taken_over_and_the_policy_stops_growing(
        deployed: dict[str, str], s3: Any) -> None:
    """A stage deployed by an older Corb: Zappa's S3 notification, and the S3 permissions its `schedule`
    added under a new random Sid on every run (one of them without a SourceAccount condition)."""
    lam = session.client("lambda")
    s3.put_bucket_notification_configuration(Bucket="corb-video", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"Id": "corb-dev-detection", "Events": ["s3:ObjectCreated:*"],
                                          "LambdaFunctionArn": deployed["corb-dev-detection"]}]})
    for i, account in enumerate(("123456789012", "123456789012", None)):
        lam.add_permission(FunctionName="corb-dev-detection", StatementId=f"ZAPPA00{i}",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com",
                           SourceArn="arn:aws:s3:::corb-video",
                           **({"SourceAccount": account} if account else {}))
    lines = deploy("--dry-run").output.splitlines()
    assert any(line.startswith("update    s3-notification  s3://corb-video -> corb-dev-detection:live")
               for line in lines)
    assert ("update    stale-permission corb-dev-detection <- corb-video (Zappa's)  "
            "(remove 3: ZAPPA000, ZAPPA001, ZAPPA002)") in lines

    policies = []
    for _ in range(3):
        assert deploy().exit_code == 0
        policies.append({name: json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
                         for name in LAMBDAS})
    assert policies[0] == policies[1] == policies[2]
    from_s3 = [st for st in policies[0]["corb-dev-detection"]
               if st["Principal"] == {"Service": "s3.amazonaws.com"}]
    assert [st["Sid"] for st in from_s3] == ["corb-s3-corb-video"]  # the alias's, under a fixed Sid
    assert from_s3[0]["Resource"] == alias_arn(deployed["corb-dev-detection"])
    [notif] = s3.get_bucket_notification_configuration(Bucket="corb-video")["LambdaFunctionConfigurations"]
    assert notif["LambdaFunctionArn"] == alias_arn(deployed["corb-dev-detection"])


def test_the_default_bus_is_refused(aws: str, tmp_path: Path) -> None:
    settings = json.loads((ROOT / "zappa_settings.json").read_text())
    settings["dev"]["environment_variables"]["CORB_BUS"] = "default"
    with pytest.raises(StageBusError, match="default"):
        _ = Deployment.load("dev", settings=settings).bus
    (tmp_path / "zappa_settings.json").write_text(json.dumps(settings))
    (tmp_path / "destinations.json").write_text((ROOT / "destinations.json").read_text())
    with pytest.raises(DeployError, match="CORB_BUS must name the stage's own bus"):
        plan_stage("dev", root=tmp_path)  # what `corb deploy` reports, before any AWS call


def test_missing_lambdas_are_reported_and_fail_the_command(aws: str, bucket_name: str) -> None:
    create_lambdas({"corb-dev": "corb-dev-web"})  # dev_detection not deployed yet
    result = deploy()
    assert result.exit_code != 0
    assert "missing   async-config     corb-dev-detection  (Lambda not deployed yet)" in result.output
    assert "could not be applied yet" in result.output
    events = session.client("events")
    assert events.describe_rule(Name="corb-dev-status", EventBusName="corb-dev")["State"] == "ENABLED"
