"""Helpers the runtime tests share: declarations written on the fly (imported by the tests directly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STAGE = "test"
FN = "functions_for_tests."  # the test functions' module, on sys.path as pytest runs this folder


def rule(name: str, function: str, pattern: dict) -> dict:
    """A zappa_settings.json events[] entry for an EventBridge rule."""
    return {"function": FN + function if "." not in function else function,
            "event_source": {"arn": f"arn:aws:events:us-east-1:000000000000:rule/{name}",
                             "rule_name": name, "event_pattern": pattern}}


def s3_trigger(function: str, *, prefix: str = "", suffix: str = "",
               events: list[str] | None = None) -> dict:
    source: dict[str, Any] = {"arn": "arn:aws:s3:::corb-video", "events": events or ["s3:ObjectCreated:*"]}
    if prefix:
        source["prefix"] = prefix
    if suffix:
        source["suffix"] = suffix
    return {"function": FN + function, "event_source": source}


def write_declaration(root: Path, events: list[dict], *, destinations: dict | None = None,
                      stages: dict | None = None, **settings: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    conf = {"base": {"project_name": "corb", "runtime": "python3.11"},
            STAGE: {"extends": "base", "events": events, **settings}, **(stages or {})}
    (root / "zappa_settings.json").write_text(json.dumps(conf))
    (root / "destinations.json").write_text(json.dumps(destinations or {
        "defaults": {"maximum_retry_attempts": 2, "on_success": "bus", "on_failure": "bus"},
        "stages": {STAGE: {}}}))
    return root
