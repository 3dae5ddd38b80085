"""``corb deploy``: apply with boto3 every trigger of the declaration, on resources Zappa never touches.

Zappa deploys the code, API Gateway, the IAM role (with ``attach_policy``) and the schedules. Everything
else that routes work to a function is Corb's, and is made so that ``zappa deploy/update/schedule/
unschedule`` cannot remove it even for a moment (see docs/deploy.md, "Deploys without loss"):

- the stage's own **bus** (``corb-dev``; Zappa only ever lists and deletes rules on the default bus);
- an **alias** ``live`` -> ``$LATEST`` on each Lambda: every trigger below invokes the alias, whose
  resource policy and async-invocation config Zappa never reads or rewrites (its ``_clear_policy`` and
  ``remove_permission`` calls name the unqualified function);
- each declared **rule** on that bus, its target (the alias, with Corb's input transformer; Id ``1``)
  and ``lambda:AddPermission`` on the alias for ``events.amazonaws.com`` from that rule (Sid
  ``corb-<rule>``: a fixed Sid, so a deploy replaces rather than adds);
- each Lambda's **async config** (retries from destinations.json, onSuccess/onFailure = the stage bus),
  on the alias and on the function (Zappa's schedules invoke the function itself);
- each **S3 trigger**: the bucket notification to the alias, with Zappa's Id format
  ``<lambda>:<function>`` (Zappa's handler routes an S3 record by it), its permission on the alias, and
  the removal of what older, Zappa-managed deploys left (the notification Zappa made and the S3
  permissions its ``schedule`` piled up on the function);
- schedules stay Zappa's, and are only reported.

Every resource is read first and compared: the plan says create / update / unchanged for each, ``--dry-run``
stops there, and a second run changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.aws import session
from cloud.aws.lambda_handler import input_transformer
from cloud.aws.stages import ALIAS, Deployment, StageBusError
from cloud.declaration import Declaration, load_declaration

ClientFactory = Callable[[str], Any]
TARGET_ID = "1"  # Zappa's target Id for event sources: put_targets replaces its raw target in place

CREATE, UPDATE, UNCHANGED, MISSING = "create", "update", "unchanged", "missing"


class DeployError(RuntimeError):
    """The declaration cannot be applied as it stands (e.g. conflicting async settings in one Lambda)."""


@dataclass
class Change:
    kind: str
    name: str
    action: str
    detail: str = ""
    run: Callable[[], None] | None = field(default=None, repr=False)

    def line(self) -> str:
        return f"{self.action:<9} {self.kind:<16} {self.name}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    stage: str
    changes: list[Change]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action in (CREATE, UPDATE)]

    @property
    def missing(self) -> list[Change]:
        """What this run cannot do: a Lambda not deployed yet, a schedule Zappa has not made."""
        return [c for c in self.changes if c.action == MISSING]

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action == a)
                  for a in (CREATE, UPDATE, UNCHANGED, MISSING)}
        if not self.pending and not self.missing:
            return f"stage {self.stage}: nothing to change ({counts[UNCHANGED]} resources up to date)"
        return (f"stage {self.stage}: {counts[CREATE]} to create, {counts[UPDATE]} to update, "
                f"{counts[UNCHANGED]} unchanged, {counts[MISSING]} missing")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class Planner:
    """Reads the account and compares it with the declaration, one resource at a time."""

    def __init__(self, declaration: Declaration, deployment: Deployment, clients: ClientFactory) -> None:
        self.decl = declaration
        self.deployment = deployment
        self.events = clients("events")
        self.lam = clients("lambda")
        self.s3 = clients("s3")
        self._arns: dict[str, str | None] = {}
        self._policies: dict[tuple[str, str | None], list[dict]] = {}
        try:
            self.bus = deployment.bus
        except StageBusError as exc:
            raise DeployError(str(exc)) from exc

    # -- reading ---------------------------------------------------------------------------------------
    def lambda_arn(self, name: str) -> str | None:
        if name not in self._arns:
            try:
                conf = self.lam.get_function(FunctionName=name)["Configuration"]
                self._arns[name] = str(conf["FunctionArn"])
            except Exception as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                self._arns[name] = None
        return self._arns[name]

    def alias_arn(self, name: str) -> str | None:
        arn = self.lambda_arn(name)
        return f"{arn}:{ALIAS}" if arn else None

    def policy(self, name: str, qualifier: str | None = ALIAS) -> list[dict]:
        """The resource policy of the alias (``qualifier``) or of the function itself (None)."""
        key = (name, qualifier)
        if key not in self._policies:
            kwargs = {"Qualifier": qualifier} if qualifier else {}
            try:
                policy = self.lam.get_policy(FunctionName=name, **kwargs)["Policy"]
                self._policies[key] = json.loads(policy)["Statement"]
            except Exception as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                self._policies[key] = []
        return self._policies[key]

    def bus_arn(self) -> str | None:
        try:
            return str(self.events.describe_event_bus(Name=self.bus)["Arn"])
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return None

    # -- planning --------------------------------------------------------------------------------------
    def plan(self) -> Plan:
        changes: list[Change] = []
        for name in self.deployment.lambda_names:  # their ARNs also give the account, with no STS call
            self.lambda_arn(name)
        bus_arn = self.bus_arn()
        if bus_arn is None:
            changes.append(Change("event-bus", self.bus, CREATE, "custom bus",
                                  lambda: self.events.create_event_bus(Name=self.bus)))
            region = self.lam.meta.region_name
            account = self._account()
            bus_arn = f"arn:aws:events:{region}:{account}:event-bus/{self.bus}"
        else:
            changes.append(Change("event-bus", self.bus, UNCHANGED))
        for lambda_name in self.deployment.lambda_names:
            changes.append(self._alias(lambda_name))
        for rule in self.decl.rules:
            changes.extend(self._rule(rule.name, rule.function, rule.pattern))
        for lambda_name in self.deployment.lambda_names:
            changes.extend(self._async_config(lambda_name, bus_arn, qualifier) for qualifier in (ALIAS, None))
        for trigger in self.decl.s3_triggers:
            changes.extend(self._s3(trigger.function, trigger.bucket, list(trigger.events), trigger.prefix,
                                    trigger.suffix))
        for bucket in sorted({t.bucket for t in self.decl.s3_triggers}):
            changes.append(self._lifecycle(bucket))
        for schedule in self.decl.schedules:
            changes.append(self._schedule(schedule.function, schedule.expression))
        return Plan(self.decl.stage, changes)

    def _account(self) -> str:
        for arn in self._arns.values():
            if arn:
                return arn.split(":")[4]
        return session.account_id()

    def _alias(self, lambda_name: str) -> Change:
        if self.lambda_arn(lambda_name) is None:
            return Change("alias", f"{lambda_name}:{ALIAS}", MISSING, "Lambda not deployed yet")
        try:
            current = self.lam.get_alias(FunctionName=lambda_name, Name=ALIAS)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            current = None

        def create() -> None:
            self.lam.create_alias(FunctionName=lambda_name, Name=ALIAS, FunctionVersion="$LATEST",
                                  Description="corb: every trigger Corb owns invokes this alias")

        def point() -> None:
            self.lam.update_alias(FunctionName=lambda_name, Name=ALIAS, FunctionVersion="$LATEST",
                                  RoutingConfig={"AdditionalVersionWeights": {}})

        name = f"{lambda_name}:{ALIAS}"
        if current is None:
            return Change("alias", name, CREATE, "-> $LATEST", create)
        same = current.get("FunctionVersion") == "$LATEST" and not (current.get("RoutingConfig") or {}).get(
            "AdditionalVersionWeights")
        return Change("alias", name, UNCHANGED if same else UPDATE, "" if same else "-> $LATEST", point)

    def _rule(self, name: str, function: str, pattern: dict) -> list[Change]:
        lambda_name = self.deployment.lambda_for(function)
        fn_arn = self.alias_arn(lambda_name)
        if fn_arn is None:
            return [Change("rule", name, MISSING, f"Lambda {lambda_name} not deployed yet")]
        out: list[Change] = []
        description = f"corb: {function}"
        try:
            current = self.events.describe_rule(Name=name, EventBusName=self.bus)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            current = None

        def put_rule() -> None:
            self.events.put_rule(Name=name, EventBusName=self.bus, EventPattern=json.dumps(pattern),
                                 State="ENABLED", Description=description)

        if current is None:
            out.append(Change("rule", name, CREATE, f"-> {function}", put_rule))
        else:
            diffs = []
            if json.loads(current.get("EventPattern") or "null") != pattern:
                diffs.append("pattern")
            if current.get("State") != "ENABLED":
                diffs.append("state")
            if current.get("Description") != description:
                diffs.append("description")
            out.append(Change("rule", name, UPDATE if diffs else UNCHANGED, ", ".join(diffs), put_rule))
        out.append(self._target(name, function, fn_arn, exists=current is not None))
        out.append(self._rule_permission(name, lambda_name, current))
        return out

    def _target(self, rule: str, function: str, fn_arn: str, *, exists: bool) -> Change:
        desired = {"Id": TARGET_ID, "Arn": fn_arn, "InputTransformer": input_transformer(function, rule)}
        targets = (self.events.list_targets_by_rule(Rule=rule, EventBusName=self.bus)["Targets"]
                   if exists else [])
        function_arn = fn_arn.rsplit(":", 1)[0]
        stale = [t["Id"] for t in targets
                 if t["Id"] != TARGET_ID and t.get("Arn", "").split(":$")[0] in (fn_arn, function_arn)]
        mine = next((t for t in targets if t["Id"] == TARGET_ID), None)

        def put() -> None:
            self.events.put_targets(Rule=rule, EventBusName=self.bus, Targets=[desired])
            if stale:
                self.events.remove_targets(Rule=rule, EventBusName=self.bus, Ids=stale)

        if mine is None:
            name = ":".join(fn_arn.split(":")[6:])  # corb-dev:live
            return Change("target", rule, CREATE, f"{name} via input transformer", put)
        got = dict(mine.get("InputTransformer") or {})
        got.setdefault("InputPathsMap", {})
        diffs = []
        if mine.get("Arn") != fn_arn:
            diffs.append("function")
        if got != desired["InputTransformer"]:
            diffs.append("input transformer")
        if stale:
            diffs.append(f"remove stale target(s) {', '.join(stale)}")
        return Change("target", rule, UPDATE if diffs else UNCHANGED, ", ".join(diffs), put)

    def _statements(self, lambda_name: str, principal: str, source_arn: str,
                    qualifier: str | None = ALIAS) -> list[dict]:
        """Allow statements of that policy for ``principal`` from ``source_arn``, on exactly that resource
        (moto keeps one policy per function, so the resource tells the alias's statements apart)."""
        arn = self.lambda_arn(lambda_name) or ""
        resource = f"{arn}:{qualifier}" if qualifier else arn
        found = []
        for st in self.policy(lambda_name, qualifier):
            p = st.get("Principal")
            service = p.get("Service") if isinstance(p, dict) else p
            cond = st.get("Condition") or {}
            arns = [v.get("AWS:SourceArn") for v in cond.values() if isinstance(v, dict)]
            if (service == principal and source_arn in arns and st.get("Effect") == "Allow"
                    and st.get("Resource", resource) == resource):
                found.append(st)
        return found

    def _rule_permission(self, rule: str, lambda_name: str, current: dict | None) -> Change:
        rule_arn = (current or {}).get("Arn") or self._rule_arn(rule)
        sid = f"corb-{rule}"[:100]
        found = [st for st in self._statements(lambda_name, "events.amazonaws.com", rule_arn)
                 if st.get("Sid") == sid]

        def add() -> None:
            self._replace_permission(lambda_name, sid, Principal="events.amazonaws.com", SourceArn=rule_arn)

        name = f"{lambda_name}:{ALIAS} <- {rule}"
        return Change("permission", name, UNCHANGED if found else CREATE, "events.amazonaws.com", add)

    def _replace_permission(self, lambda_name: str, sid: str, **statement: str) -> None:
        """Add the alias's statement under a fixed Sid, replacing an older one of that Sid."""
        if any(st.get("Sid") == sid for st in self.policy(lambda_name)):
            self.lam.remove_permission(FunctionName=lambda_name, StatementId=sid, Qualifier=ALIAS)
        self.lam.add_permission(FunctionName=lambda_name, StatementId=sid, Action="lambda:InvokeFunction",
                                Qualifier=ALIAS, **statement)

    def _rule_arn(self, rule: str) -> str:
        region = self.lam.meta.region_name
        bus_part = "" if self.bus == "default" else f"{self.bus}/"
        return f"arn:aws:events:{region}:{self._account()}:rule/{bus_part}{rule}"

    def _async_config(self, lambda_name: str, bus_arn: str, qualifier: str | None) -> Change:
        name = f"{lambda_name}:{qualifier}" if qualifier else lambda_name
        if self.lambda_arn(lambda_name) is None:
            return Change("async-config", name, MISSING, "Lambda not deployed yet")
        functions = [f for f in self.decl.functions if self.deployment.lambda_for(f) == lambda_name]
        configs = {self.decl.async_config(f) for f in functions} or {self.decl.default_async}
        if len(configs) > 1:
            raise DeployError(f"functions sharing Lambda {lambda_name} declare different async settings in "
                              f"destinations.json ({', '.join(functions)}): Lambda has one per function")
        conf = configs.pop()
        dest: dict[str, Any] = {}
        if conf.on_success == "bus":
            dest["OnSuccess"] = {"Destination": bus_arn}
        if conf.on_failure == "bus":
            dest["OnFailure"] = {"Destination": bus_arn}
        where = {"Qualifier": qualifier} if qualifier else {}
        try:
            current = self.lam.get_function_event_invoke_config(FunctionName=lambda_name, **where)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            current = None

        def put() -> None:
            self.lam.put_function_event_invoke_config(FunctionName=lambda_name, **where,
                                                      MaximumRetryAttempts=conf.max_retries,
                                                      DestinationConfig=dest)

        detail = f"retries {conf.max_retries}, onSuccess/onFailure -> {self.bus}"
        if current is None:
            return Change("async-config", name, CREATE, detail, put)
        got = {k: v for k, v in (current.get("DestinationConfig") or {}).items() if v.get("Destination")}
        same = current.get("MaximumRetryAttempts") == conf.max_retries and got == dest
        return Change("async-config", name, UNCHANGED if same else UPDATE, "" if same else detail, put)

    def _s3(self, function: str, bucket: str, events: list[str], prefix: str, suffix: str) -> list[Change]:
        lambda_name = self.deployment.lambda_for(function)
        fn_arn = self.lambda_arn(lambda_name)
        alias_arn = self.alias_arn(lambda_name)
        name = f"s3://{bucket} -> {lambda_name}:{ALIAS}"
        if fn_arn is None or alias_arn is None:
            return [Change("s3-notification", name, MISSING, f"Lambda {lambda_name} not deployed yet")]
        rules = [{"Name": "prefix", "Value": prefix}] if prefix else []
        rules += [{"Name": "suffix", "Value": suffix}] if suffix else []
        # Zappa's Id format: its handler routes an S3 record to the function after the last ':'.
        desired: dict[str, Any] = {"Id": f"{lambda_name}:{function}", "LambdaFunctionArn": alias_arn,
                                   "Events": events}
        if rules:
            desired["Filter"] = {"Key": {"FilterRules": rules}}
        current = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        current.pop("ResponseMetadata", None)
        configs = current.get("LambdaFunctionConfigurations", [])
        ids = {desired["Id"], lambda_name}  # lambda_name: the Id Zappa gave the notification it managed
        mine = [c for c in configs if c.get("Id") in ids
                or c.get("LambdaFunctionArn", "").split(":$")[0] in (fn_arn, alias_arn)]
        others = [c for c in configs if c not in mine]

        def norm(c: dict) -> tuple:
            fr = c.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            return (c.get("Id"), c.get("LambdaFunctionArn"), tuple(sorted(c.get("Events", []))),
                    tuple(sorted((r["Name"].lower(), r["Value"]) for r in fr)))

        def put() -> None:
            # One call replaces the whole configuration: S3 never sees the bucket without this trigger.
            new = dict(current)
            new["LambdaFunctionConfigurations"] = [*others, desired]
            self.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=new)

        detail = f"{','.join(events)} prefix={prefix!r} suffix={suffix!r}"
        if not mine:
            notif = Change("s3-notification", name, CREATE, detail, put)
        elif len(mine) == 1 and norm(mine[0]) == norm(desired):
            notif = Change("s3-notification", name, UNCHANGED)
        else:
            notif = Change("s3-notification", name, UPDATE, detail, put)
        bucket_arn = f"arn:aws:s3:::{bucket}"
        sid = f"corb-s3-{bucket}"[:100]
        found = [st for st in self._statements(lambda_name, "s3.amazonaws.com", bucket_arn)
                 if st.get("Sid") == sid]
        account = fn_arn.split(":")[4]

        def add() -> None:
            self._replace_permission(lambda_name, sid, Principal="s3.amazonaws.com", SourceArn=bucket_arn,
                                     SourceAccount=account)

        # The permission goes first: S3 validates that it may invoke the function when the
        # notification is put.
        perm = Change("permission", f"{lambda_name}:{ALIAS} <- s3://{bucket}", UNCHANGED if found else CREATE,
                      "s3.amazonaws.com", add)
        return [perm, notif, self._legacy_s3_permissions(lambda_name, bucket_arn)]

    def _legacy_s3_permissions(self, lambda_name: str, bucket_arn: str) -> Change:
        """S3 permissions on the function itself: what Zappa's ``schedule`` added (a random Sid each run,
        never removed) before the notification moved to the alias. Nothing invokes the function from S3
        any more, so they only grow the policy towards Lambda's 20 KB limit."""
        stale = [str(st["Sid"]) for st in self._statements(lambda_name, "s3.amazonaws.com", bucket_arn, None)]

        def remove() -> None:
            for sid in stale:
                self.lam.remove_permission(FunctionName=lambda_name, StatementId=sid)

        name = f"{lambda_name} <- {bucket_arn.split(':::')[-1]} (Zappa's)"
        if not stale:
            return Change("stale-permission", name, UNCHANGED)
        return Change("stale-permission", name, UPDATE, f"remove {len(stale)}: {', '.join(stale)}", remove)

    def _lifecycle(self, bucket: str) -> Change:
        """The bucket's expiry rules (cloud.lifecycle), from the main stage's CORB_*_DAYS variables."""
        from cloud.lifecycle import Retention, s3_rules

        rules = s3_rules(Retention.from_env(self.deployment.stages[0].environment))
        try:
            current = self.s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except Exception as exc:
            if _code(exc) != "NoSuchLifecycleConfiguration":
                raise
            current = None
        kept = [r for r in current or [] if not str(r.get("ID", "")).startswith("corb-")]

        def put() -> None:
            self.s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                                       LifecycleConfiguration={"Rules": [*kept, *rules]})

        mine = sorted((r for r in current or [] if str(r.get("ID", "")).startswith("corb-")),
                      key=lambda r: r["ID"])
        same = mine == sorted(rules, key=lambda r: r["ID"])
        detail = ", ".join(f"{r['Filter']['Prefix'] or '*'} {r.get('Expiration', {}).get('Days', '-')} d"
                           for r in rules)
        state = CREATE if current is None else (UNCHANGED if same else UPDATE)
        return Change("s3-lifecycle", f"s3://{bucket}", state, "" if same else detail, put)

    def _schedule(self, function: str, expression: str) -> Change:
        lambda_name = self.deployment.lambda_for(function)
        rule = f"{lambda_name}-{function}"[:64]
        try:
            current = self.events.describe_rule(Name=rule)
        except Exception as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
            return Change("schedule", rule, MISSING, f"{expression}: Zappa's; run `zappa schedule`")
        same = current.get("ScheduleExpression") == expression
        return Change("schedule", rule, UNCHANGED if same else MISSING,
                      "" if same else
                      f"{current.get('ScheduleExpression')} != {expression}: run `zappa schedule`")


def default_clients(region: str | None = None) -> ClientFactory:
    return lambda service: session.client(service, region=region)


def plan_stage(stage: str, *, root: Path | None = None, clients: ClientFactory | None = None) -> Plan:
    decl = load_declaration(stage, root)
    deployment = Deployment.load(stage, root)
    region = str(deployment.stages[0].config.get("aws_region") or "") or None
    return Planner(decl, deployment, clients or default_clients(region)).plan()


def apply_plan(plan: Plan, echo: Callable[[str], None] = print) -> Plan:
    for change in plan.changes:
        if change.action in (CREATE, UPDATE) and change.run is not None:
            change.run()
        echo(change.line())
    echo(plan.summary())
    return plan


def apply_stage(stage: str, *, root: Path | None = None, clients: ClientFactory | None = None,
                boto_session: Any = None, echo: Callable[[str], None] = print) -> Plan:
    """Plan and apply in one go (``corb deploy`` and Zappa's ``post`` callback, with Zappa's session)."""
    if clients is None and boto_session is not None:
        clients = boto_session.client
    return apply_plan(plan_stage(stage, root=root, clients=clients), echo)
