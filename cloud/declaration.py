"""The one declaration of functions and triggers (contract 1), read by the local runtime and the deploy.

``zappa_settings.json`` says which function runs on which trigger, in Zappa's own keys: for a stage,
``events[]`` entries with ``function`` and either ``event_source`` (S3 when the ARN's service is ``s3``:
``events``, ``prefix``, ``suffix``; EventBridge when it is ``events``: ``rule_name``, ``event_pattern``)
or ``expression(s)`` (schedules). ``destinations.json`` beside it adds what Zappa has no key for: async
retries and onSuccess / onFailure per stage and function, over defaults.

``load_declaration("dev")`` merges stage ``dev`` with every ``dev_*`` stage (``dev_detection`` is the
detection Lambda), validates everything it can without importing anything, and reports every problem
at once. ``Declaration.check_functions()`` imports the functions (``corb serve`` does at start-up).
"""

from __future__ import annotations

import calendar
import functools
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cloud import patterns

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = "zappa_settings.json"
DESTINATIONS_FILE = "destinations.json"
DESTINATION_TARGETS = ("bus", None)  # "bus": the event bus (EventBridge / the local bus); None: nowhere

# Zappa's stage settings (zappa/cli.py); an unknown one is most likely a typo, so it is reported.
_ZAPPA_STAGE_KEYS_TEXT = """
additional_text_mimetypes alb_enabled alb_vpc_config api_key api_key_required apigateway_description
apigateway_enabled apigateway_lambda_qualifier apigateway_version app_function app_type architecture
assume_policy async_resources async_response_table async_response_table_read_capacity
async_response_table_write_capacity async_source attach_policy authorizer aws_endpoint_urls
aws_environment_variables aws_kms_key_arn aws_region base_path binary_support bot_events
cache_cluster_enabled cache_cluster_encrypted cache_cluster_size cache_cluster_ttl callbacks certificate
certificate_arn certificate_chain certificate_key cloudwatch_data_trace cloudwatch_log_level
cloudwatch_metrics_enabled cognito context_header_mappings cors cors_options dead_letter_arn debug
delete_local_zip delete_s3_zip delete_zip django_settings domain efs_config endpoint_configuration
environment_variables ephemeral_storage events exception_handler exclude exclude_glob extends
extra_permissions function_url_cloudfront_config function_url_config function_url_domains
function_url_enabled iam_authorization include keep_warm keep_warm_expression lambda_concurrency
lambda_description lambda_handler layers lets_encrypt_key log_level manage_roles memory_size
num_retained_versions parameter_depth payload_compression payload_minimum_compression_size
prebuild_script profile_name project_name provisioned_concurrency remote_env remote_env_bucket
remote_env_file role_arn role_name route53_enabled runtime s3_bucket settings_file slim_handler
snap_start tags timeout_seconds touch touch_path use_apigateway use_precompiled_packages vpc_config
websocket_handler_module xray_tracing
"""
ZAPPA_STAGE_KEYS = frozenset(_ZAPPA_STAGE_KEYS_TEXT.split())
EVENT_KEYS = frozenset({"function", "event_source", "expression", "expressions", "name", "description",
                        "enabled", "kwargs"})
S3_SOURCE_KEYS = frozenset({"arn", "events", "prefix", "suffix", "enabled"})
RULE_SOURCE_KEYS = frozenset({"arn", "rule_name", "name", "event_pattern", "pattern", "rule_description",
                              "description", "enabled"})
ASYNC_KEYS = frozenset({"maximum_retry_attempts", "on_success", "on_failure"})
S3_EVENT_NAMES = ("ObjectCreated:", "ObjectRemoved:", "ObjectRestore:", "ReducedRedundancyLostObject",
                  "Replication:", "LifecycleExpiration:", "LifecycleTransition", "IntelligentTiering",
                  "ObjectTagging:", "ObjectAcl:Put")


class DeclarationError(ValueError):
    """The declaration is invalid; ``problems`` lists every problem found, each saying where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid declaration:\n  - " + "\n  - ".join(self.problems))


@dataclass(frozen=True)
class S3Trigger:
    """An S3 ``ObjectCreated`` (etc.) notification to a function, filtered by key prefix and suffix."""

    function: str
    bucket: str
    events: tuple[str, ...]
    prefix: str
    suffix: str
    stage: str

    def matches(self, key: str, event_name: str = "ObjectCreated:Put") -> bool:
        """Whether S3 would notify this function of ``event_name`` on ``key`` (the decoded key)."""
        return key.startswith(self.prefix) and key.endswith(self.suffix) and any(
            _s3_event_matches(pattern, event_name) for pattern in self.events)


def _s3_event_matches(pattern: str, event_name: str) -> bool:
    pattern = pattern.removeprefix("s3:")
    if pattern.endswith("*"):
        return event_name.startswith(pattern[:-1])
    return event_name == pattern


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule on the bus: events matching ``pattern`` invoke ``function``."""

    name: str
    function: str
    pattern: dict = field(hash=False)
    stage: str

    def matches(self, event: dict) -> bool:
        return patterns.matches(self.pattern, event)


@dataclass(frozen=True)
class Schedule:
    """A scheduled rule: ``rate(N unit)`` or ``cron(min hour dom month dow year)``, UTC like AWS."""

    function: str
    expression: str
    stage: str
    kwargs: dict = field(default_factory=dict, hash=False)

    @property
    def rule_name(self) -> str:
        # Zappa's handler finds a scheduled function as the part of the rule name after the last '-'.
        return f"corb-{self.stage}-{self.function}"

    def slot(self, now: datetime) -> str | None:
        """The firing slot ``now`` falls in, or None if this minute is not one (cron); keys dedupe."""
        return parse_schedule(self.expression).slot(now)


@dataclass(frozen=True)
class AsyncConfig:
    """Lambda's asynchronous invocation config: retries (0 to 2) and destinations."""

    max_retries: int = 2
    on_success: str | None = "bus"
    on_failure: str | None = "bus"


@dataclass(frozen=True)
class FunctionSettings:
    """What the stage that deploys a function gives its Lambda (the local runtime mimics both)."""

    stage: str
    timeout_s: float = 30.0
    memory_mb: int = 512


@dataclass
class Declaration:
    """Everything the stage declares; built by ``load_declaration``."""

    stage: str
    stages: tuple[str, ...]
    s3_triggers: tuple[S3Trigger, ...] = ()
    rules: tuple[Rule, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    app_functions: tuple[str, ...] = ()
    default_async: AsyncConfig = AsyncConfig()
    function_async: dict[str, AsyncConfig] = field(default_factory=dict)
    function_settings: dict[str, FunctionSettings] = field(default_factory=dict)
    default_settings: FunctionSettings | None = None
    warnings: tuple[str, ...] = ()

    @property
    def functions(self) -> tuple[str, ...]:
        """Every function a trigger names, each once, in declaration order."""
        seen: dict[str, None] = {}
        for item in (*self.s3_triggers, *self.rules, *self.schedules):
            seen.setdefault(item.function, None)
        return tuple(seen)

    def async_config(self, function: str) -> AsyncConfig:
        return self.function_async.get(function, self.default_async)

    def settings(self, function: str) -> FunctionSettings:
        return self.function_settings.get(function) or self.default_settings or FunctionSettings(self.stage)

    def rules_for(self, event: dict) -> list[Rule]:
        return [rule for rule in self.rules if rule.matches(event)]

    def s3_targets(self, key: str, event_name: str = "ObjectCreated:Put") -> list[S3Trigger]:
        return [t for t in self.s3_triggers if t.matches(key, event_name)]

    def check_functions(self) -> None:
        """Import every declared function (and the WSGI app); raise one error naming all that fail."""
        from cloud.functions import FunctionNotFound, resolve

        problems = []
        for name in self.functions:
            try:
                resolve(name)
            except FunctionNotFound as exc:
                problems.append(f"function {name}: {exc}")
        for name in self.app_functions:
            try:
                resolve(name, callable_only=False)
            except FunctionNotFound as exc:
                problems.append(f"app_function {name}: {exc}")
        if problems:
            raise DeclarationError(problems)


# -- loading -----------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeclarationError([f"{path.name}: not found in {path.parent}"]) from None
    except json.JSONDecodeError as exc:
        raise DeclarationError([f"{path.name}: invalid JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise DeclarationError([f"{path.name}: must be a JSON object"])
    return data


def _resolve_stage(settings: dict, name: str, problems: list[str]) -> dict:
    """A stage with its ``extends`` chain applied (Zappa's shallow merge: the child's keys win)."""
    chain: list[str] = []
    current: str | None = name
    while current is not None:
        if current in chain:
            problems.append(f"{SETTINGS_FILE}: circular 'extends' through {' -> '.join([*chain, current])}")
            return {}
        if current not in settings or not isinstance(settings[current], dict):
            problems.append(f"{SETTINGS_FILE}: stage {chain[-1] if chain else name!r} extends unknown "
                            f"stage {current!r}")
            return {}
        chain.append(current)
        current = settings[current].get("extends")
    merged: dict = {}
    for stage in reversed(chain):
        merged.update(settings[stage])
    return merged


def _unknown(keys: Iterable[str], known: frozenset[str], where: str, problems: list[str]) -> None:
    extra = sorted(set(keys) - known)
    if extra:
        problems.append(f"{where}: unknown key(s) {', '.join(map(repr, extra))} "
                        f"(known: {', '.join(sorted(known))})")


def load_declaration(stage: str = "dev", root: Path | None = None) -> Declaration:
    """Read and validate the declaration for ``stage`` and its ``stage_*`` companions."""
    root = Path(root) if root is not None else ROOT
    settings = _read_json(root / SETTINGS_FILE)
    destinations = _read_json(root / DESTINATIONS_FILE)
    problems: list[str] = []
    warnings: list[str] = []
    if stage not in settings:
        raise DeclarationError([f"{SETTINGS_FILE}: no stage {stage!r} (stages: {', '.join(settings)})"])
    stages = (stage, *sorted(s for s in settings if s.startswith(stage + "_")))

    s3_triggers: list[S3Trigger] = []
    rules: list[Rule] = []
    schedules: list[Schedule] = []
    app_functions: list[str] = []
    function_settings: dict[str, FunctionSettings] = {}
    default_settings = FunctionSettings(stage=stage)
    for name in stages:
        conf = _resolve_stage(settings, name, problems)
        extra = sorted(set(conf) - ZAPPA_STAGE_KEYS)
        if extra:
            warnings.append(f"{SETTINGS_FILE}: stage {name!r}: keys Zappa does not know: {', '.join(extra)}")
        fs = FunctionSettings(stage=name, timeout_s=float(conf.get("timeout_seconds", 30)),
                              memory_mb=int(conf.get("memory_size", 512)))
        if name == stage:
            default_settings = fs
        if conf.get("app_function"):
            app_functions.append(conf["app_function"])
        events = conf.get("events", [])
        if not isinstance(events, list):
            problems.append(f"{SETTINGS_FILE}: {name}.events must be a list")
            continue
        for i, ev in enumerate(events):
            where = f"{SETTINGS_FILE}: {name}.events[{i}]"
            for item in _parse_event(ev, name, where, problems):
                if item.function in function_settings and function_settings[item.function].stage != name:
                    problems.append(f"{where}: {item.function} is already deployed by stage "
                                    f"{function_settings[item.function].stage!r}")
                function_settings[item.function] = fs
                {S3Trigger: s3_triggers, Rule: rules, Schedule: schedules}[type(item)].append(item)

    seen_rules: dict[str, Rule] = {}
    for rule in rules:
        if rule.name in seen_rules:
            problems.append(f"{SETTINGS_FILE}: rule name {rule.name!r} is declared twice")
        seen_rules[rule.name] = rule

    default_async, function_async = _parse_destinations(destinations, stages, function_settings, problems)
    stray = sorted(set(destinations.get("stages") or {}) - set(settings)) if isinstance(
        destinations.get("stages"), dict) else []
    if stray:
        problems.append(f"{DESTINATIONS_FILE}: stages not in {SETTINGS_FILE}: {', '.join(stray)}")
    if problems:
        raise DeclarationError(problems)
    for w in warnings:
        log.warning("%s", w)
    return Declaration(stage=stage, stages=stages, s3_triggers=tuple(s3_triggers), rules=tuple(rules),
                       schedules=tuple(schedules), app_functions=tuple(app_functions),
                       default_async=default_async, function_async=function_async,
                       function_settings=function_settings, default_settings=default_settings,
                       warnings=tuple(warnings))


def _parse_event(ev: Any, stage: str, where: str, problems: list[str]) -> list[S3Trigger | Rule | Schedule]:
    if not isinstance(ev, dict):
        problems.append(f"{where}: must be an object")
        return []
    _unknown(ev, EVENT_KEYS, where, problems)
    function = ev.get("function")
    if not isinstance(function, str) or "." not in function:
        problems.append(f"{where}: 'function' must be a dotted 'module.function' name, got {function!r}")
        return []
    if ev.get("enabled", True) is False:
        return []
    expressions = ev.get("expressions") or ([ev["expression"]] if "expression" in ev else [])
    source = ev.get("event_source")
    if bool(expressions) == bool(source):
        problems.append(f"{where}: needs exactly one of 'expression(s)' or 'event_source'")
        return []
    if expressions:
        out: list[S3Trigger | Rule | Schedule] = []
        for expr in expressions:
            try:
                parse_schedule(expr)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
                continue
            out.append(Schedule(function=function, expression=expr, stage=stage,
                                kwargs=ev.get("kwargs") or {}))
        return out
    if not isinstance(source, dict) or not isinstance(source.get("arn"), str):
        problems.append(f"{where}.event_source: must be an object with an 'arn'")
        return []
    if source.get("enabled", True) is False:
        return []
    parts = source["arn"].split(":", 5)
    service = parts[2] if len(parts) > 2 else ""
    if service == "s3":
        return _parse_s3(source, function, stage, f"{where}.event_source", problems)
    if service == "events":
        return _parse_rule(source, function, stage, f"{where}.event_source", problems)
    problems.append(f"{where}.event_source: ARN service {service!r} is not supported locally (s3, events)")
    return []


def _parse_s3(source: dict, function: str, stage: str, where: str, problems: list[str]) -> list:
    _unknown(source, S3_SOURCE_KEYS, where, problems)
    bucket = source["arn"].split(":::", 1)[-1]
    events = source.get("events", ["s3:ObjectCreated:*"])
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        problems.append(f"{where}: 'events' must be a non-empty list of S3 event names")
        return []
    for e in events:
        if not e.startswith("s3:") or not e[3:].startswith(S3_EVENT_NAMES) or "*" in e[:-1]:
            problems.append(f"{where}: {e!r} is not an S3 event name such as 's3:ObjectCreated:*'")
    prefix, suffix = source.get("prefix", ""), source.get("suffix", "")
    if not isinstance(prefix, str) or not isinstance(suffix, str):
        problems.append(f"{where}: 'prefix' and 'suffix' must be strings")
        return []
    return [S3Trigger(function=function, bucket=bucket, events=tuple(events), prefix=prefix, suffix=suffix,
                      stage=stage)]


def _parse_rule(source: dict, function: str, stage: str, where: str, problems: list[str]) -> list:
    _unknown(source, RULE_SOURCE_KEYS, where, problems)
    name = source.get("rule_name", source.get("name"))
    pattern = source.get("event_pattern", source.get("pattern"))
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: 'rule_name' is required")
        return []
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: rule {name}: event_pattern is not JSON: {exc}")
            return []
    try:
        patterns.validate(pattern)
    except patterns.InvalidPattern as exc:
        problems.append(f"{where}: rule {name}: invalid event_pattern: {exc}")
        return []
    return [Rule(name=name, function=function, pattern=pattern, stage=stage)]


def _parse_async(conf: Any, base: AsyncConfig, where: str, problems: list[str],
                 extra_keys: frozenset[str] = frozenset()) -> AsyncConfig:
    if not isinstance(conf, dict):
        problems.append(f"{where}: must be an object")
        return base
    _unknown(conf, ASYNC_KEYS | extra_keys, where, problems)
    retries = conf.get("maximum_retry_attempts", base.max_retries)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 2:
        problems.append(f"{where}: maximum_retry_attempts must be 0, 1 or 2 (Lambda's range), "
                        f"got {retries!r}")
        retries = base.max_retries
    on_success = conf.get("on_success", base.on_success)
    on_failure = conf.get("on_failure", base.on_failure)
    for key, value in (("on_success", on_success), ("on_failure", on_failure)):
        if value not in DESTINATION_TARGETS:
            problems.append(f"{where}: {key} must be \"bus\" or null, got {value!r}")
    return AsyncConfig(max_retries=retries, on_success=on_success, on_failure=on_failure)


def _parse_destinations(data: dict, stages: tuple[str, ...], function_settings: dict[str, FunctionSettings],
                        problems: list[str]) -> tuple[AsyncConfig, dict[str, AsyncConfig]]:
    """``{"defaults": {...}, "stages": {stage: {..., "functions": {name: {...}}}}}``.

    A function's settings are its own entry, over its stage's, over the defaults.
    """
    where = DESTINATIONS_FILE
    _unknown((k for k in data if not k.startswith("_")), frozenset({"defaults", "stages"}), where, problems)
    defaults = _parse_async(data.get("defaults", {}), AsyncConfig(), f"{where}: defaults", problems)
    stage_confs = data.get("stages", {})
    if not isinstance(stage_confs, dict):
        problems.append(f"{where}: 'stages' must be an object")
        return defaults, {}
    per_stage = {s: _parse_async(stage_confs.get(s, {}), defaults, f"{where}: stages.{s}", problems,
                                 frozenset({"functions"})) for s in stages}
    function_async = {fn: per_stage[fs.stage] for fn, fs in function_settings.items()}
    for s in stages:
        conf = stage_confs.get(s, {})
        funcs = conf.get("functions", {}) if isinstance(conf, dict) else {}
        if not isinstance(funcs, dict):
            problems.append(f"{where}: stages.{s}.functions must be an object")
            continue
        for fn, fn_conf in funcs.items():
            if fn not in function_settings or function_settings[fn].stage != s:
                problems.append(f"{where}: stages.{s}.functions: {fn!r} is not a function of stage {s!r}")
                continue
            function_async[fn] = _parse_async(fn_conf, per_stage[s], f"{where}: stages.{s}.functions.{fn}",
                                              problems)
    return per_stage[stages[0]], function_async


# -- schedules ---------------------------------------------------------------------------------------

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}  # AWS: 1 = SUN


@dataclass(frozen=True)
class RateSchedule:
    seconds: int

    def slot(self, now: datetime) -> str | None:
        epoch = calendar.timegm(now.utctimetuple())
        return f"rate:{epoch // self.seconds}"


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # day of month; None for '?'
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = Sunday (AWS); None for '?'
    years: frozenset[int] | None  # None for '*'

    def fires_at(self, t: datetime) -> bool:
        return t.minute in self.minutes and t.hour in self.hours and self._day_matches(t)

    def slot(self, now: datetime) -> str | None:
        return f"cron:{now:%Y-%m-%dT%H:%M}" if self.fires_at(now) else None

    def next_after(self, now: datetime, *, limit_days: int = 366 * 5) -> datetime | None:
        """The first firing minute after ``now`` (day by day, then the allowed hours and minutes)."""
        start = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        for _ in range(limit_days + 1):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        t = day.replace(hour=hour, minute=minute)
                        if t >= start:
                            return t
            day += timedelta(days=1)
        return None

    def _day_matches(self, t: datetime) -> bool:
        aws_dow = (t.isoweekday() % 7) + 1  # Sunday -> 1 ... Saturday -> 7
        return (t.month in self.months and (self.days is None or t.day in self.days)
                and (self.weekdays is None or aws_dow in self.weekdays)
                and (self.years is None or t.year in self.years))


def _cron_value(s: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    v = int(s) if s.isdigit() else names.get(s.upper())
    if v is None or not lo <= v <= hi:
        raise ValueError(f"cron {what}: {s!r} is not in {lo}-{hi}")
    return v


def _cron_field(text: str, lo: int, hi: int, names: dict[str, int], what: str, *,
                optional: bool = False) -> frozenset[int] | None:
    """One cron field as the set of values it allows (None for '?', where ``optional``)."""
    if text == "?" and optional:
        return None
    values: set[int] = set()
    for part in text.split(","):
        for token in re.split(r"[-/]", part):
            if token.upper() not in names and any(c in token.upper() for c in "LW#"):
                raise ValueError(f"cron {what} {part!r}: L, W and # are not supported by the embedded "
                                 "runtime")
        body, _, step_text = part.partition("/")
        if step_text and not step_text.isdigit() or step_text == "0":
            raise ValueError(f"cron {what}: bad step in {part!r}")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = lo, hi
        else:
            a, _, b = body.partition("-")
            start = _cron_value(a, lo, hi, names, what)
            end = _cron_value(b, lo, hi, names, what) if b else (hi if step_text else start)
        if start > end:
            raise ValueError(f"cron {what}: range {part!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@functools.lru_cache(maxsize=128)
def parse_schedule(expression: str) -> RateSchedule | CronSchedule:
    """Parse an EventBridge schedule expression; ``ValueError`` says what is wrong."""
    if not isinstance(expression, str):
        raise ValueError(f"schedule expression must be a string, got {expression!r}")
    m = _RATE.fullmatch(expression.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            raise ValueError(f"{expression!r}: AWS wants 'rate(1 {unit.rstrip('s')})' or "
                             f"'rate(N {unit.rstrip('s')}s)' with N > 1")
        return RateSchedule(n * _UNIT_S[unit.rstrip("s")])
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split()
        if len(fields) != 6:
            raise ValueError(f"{expression!r}: cron needs 6 fields (minutes hours day-of-month month "
                             "day-of-week year)")
        mi, h, dom, mon, dow, yr = fields
        if (dom == "?") == (dow == "?"):
            raise ValueError(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
        return CronSchedule(
            minutes=_cron_field(mi, 0, 59, {}, "minutes") or frozenset(),
            hours=_cron_field(h, 0, 23, {}, "hours") or frozenset(),
            days=_cron_field(dom, 1, 31, {}, "day-of-month", optional=True),
            months=_cron_field(mon, 1, 12, _MONTHS, "month") or frozenset(),
            weekdays=_cron_field(dow, 1, 7, _DAYS, "day-of-week", optional=True),
            years=None if yr == "*" else _cron_field(yr, 1970, 2199, {}, "year"),
        )
    raise ValueError(f"{expression!r} is not a schedule expression: use rate(N unit) or cron(...)")
