"""Which Lambda runs which Corb function: Zappa's stages read from ``zappa_settings.json``.

A Corb deployment is a stage group: stage ``dev`` (the web app and every bot handler, one Lambda) plus its
``dev_*`` companions (``dev_detection``, the detection Lambda). Zappa names each stage's Lambda
``slugify(project_name + "-" + stage)``: ``corb-dev``, ``corb-dev-detection``. This module is the one place
that knows that mapping, for the invoker, the deploy step and the tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_FILE = "zappa_settings.json"
# The alias every trigger Corb owns invokes (rule targets, the S3 notification, async invokes). It points at
# $LATEST, so it always runs the code Zappa last uploaded, but it has its own resource policy and its own
# async-invocation config, which Zappa's update/schedule/unschedule never read or rewrite.
ALIAS = "live"


class StageBusError(ValueError):
    """A stage names a bus Corb cannot own (Zappa deletes rules on the default bus)."""


def lambda_name(project_name: str, stage: str) -> str:
    """Zappa's Lambda name for a stage (``slugify`` on ASCII names: lower case, runs of others to ``-``)."""
    return re.sub(r"[^a-z0-9]+", "-", f"{project_name}-{stage}".lower()).strip("-")


def read_settings(root: Path | None = None) -> dict[str, Any]:
    return json.loads(((root or ROOT) / SETTINGS_FILE).read_text())


def stage_config(settings: dict[str, Any], stage: str) -> dict[str, Any]:
    """A stage with its ``extends`` chain applied the way Zappa does (a shallow merge; the child wins)."""
    chain: list[str] = []
    current: str | None = stage
    while current is not None:
        if current in chain or current not in settings:
            raise KeyError(f"stage {current!r} is unknown or extends itself ({' -> '.join(chain)})")
        chain.append(current)
        current = settings[current].get("extends")
    merged: dict[str, Any] = {}
    for name in reversed(chain):
        merged.update(settings[name])
    return merged


def stage_group(settings: dict[str, Any], stage: str) -> tuple[str, ...]:
    """``stage`` and its ``stage_*`` companions, as ``cloud.declaration.load_declaration`` groups them."""
    if stage not in settings:
        raise KeyError(f"no stage {stage!r} in {SETTINGS_FILE}")
    return (stage, *sorted(s for s in settings if s.startswith(stage + "_")))


@dataclass(frozen=True)
class Stage:
    name: str
    lambda_name: str
    config: dict[str, Any] = field(hash=False, repr=False)

    @property
    def functions(self) -> tuple[str, ...]:
        """Every function this stage's events name (its Lambda runs them), in declaration order."""
        seen: dict[str, None] = {}
        for event in self.config.get("events") or []:
            if isinstance(event, dict) and isinstance(event.get("function"), str):
                seen.setdefault(event["function"], None)
        return tuple(seen)

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.config.get("environment_variables") or {})


@dataclass(frozen=True)
class Deployment:
    """A stage group as deployed: its stages, their Lambdas, and which Lambda runs each function."""

    stage: str
    stages: tuple[Stage, ...]

    @classmethod
    def load(cls, stage: str, root: Path | None = None, settings: dict[str, Any] | None = None) -> Deployment:
        settings = settings if settings is not None else read_settings(root)
        out = []
        for name in stage_group(settings, stage):
            conf = stage_config(settings, name)
            out.append(Stage(name, lambda_name(str(conf.get("project_name", "corb")), name), conf))
        return cls(stage, tuple(out))

    def lambda_for(self, function: str) -> str:
        """The Lambda that runs ``function``; functions no event names run in the main stage's Lambda."""
        for st in self.stages:
            if function in st.functions:
                return st.lambda_name
        return self.stages[0].lambda_name

    @property
    def bus(self) -> str:
        """The stage's own EventBridge bus: ``CORB_BUS`` of the main stage, else ``<project>-<stage>``.

        Never ``default``: Zappa's ``unschedule_events`` deletes every rule on the default bus that
        targets the Lambda, and two stages on one bus would receive each other's events.
        """
        main = self.stages[0]
        name = main.environment.get("CORB_BUS") or main.lambda_name
        if name == "default" or name.startswith("arn:"):
            raise StageBusError(f"stage {self.stage}: CORB_BUS must name the stage's own bus (e.g. "
                                f"{main.lambda_name!r}), not {name!r}: Zappa deletes rules on the default "
                                "bus and stages sharing a bus receive each other's events")
        return name

    @property
    def lambda_names(self) -> tuple[str, ...]:
        return tuple(st.lambda_name for st in self.stages)

    def by_name(self, stage: str) -> Stage:
        for st in self.stages:
            if st.name == stage:
                return st
        raise KeyError(stage)
