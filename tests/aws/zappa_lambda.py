"""Zappa's own ``LambdaHandler``, loaded the way a deployed package loads it.

``zappa package`` writes ``ZappaCLI.get_zappa_settings_string()`` into the zip as ``zappa_settings.py``;
the Lambda's handler (``lambda_handler`` setting: ``cloud.aws.lambda_handler.lambda_handler``) hands every
event to ``zappa.handler.lambda_handler``, whose ``LambdaHandler`` singleton imports ``zappa_settings``.
Here the same string comes from the same Zappa code (after the same ``settings`` callback), becomes the
``zappa_settings`` module, and events go through the real entry point. ``LambdaHandler`` is a process
singleton, so switching stages resets it; what it writes into ``os.environ`` is undone by ``close``.

A new ``ZappaLambdas`` is a cold start: the per-process caches a Lambda container would start without
(the bot's services, the detection handler's bucket, resolved functions, the imported WSGI app) are
dropped, and restored by ``close``. Both stages' Lambdas then share this process and its caches.
"""

from __future__ import annotations

import logging
import os
import sys
import types
import uuid
from pathlib import Path
from typing import Any

from cloud.aws.stages import Deployment

ROOT = Path(__file__).resolve().parents[2]


def _cold_start() -> Any:
    """Drop per-process caches; returns the services that were installed (to restore)."""
    from bot.services import use_services
    from cloud import functions

    previous = use_services(None)
    sys.modules.pop("bot.wsgi", None)
    functions.clear_cache()
    if "detection.handler" in sys.modules:
        sys.modules["detection.handler"]._bucket = None  # type: ignore[attr-defined]
    return previous


def settings_text(stage: str, environment: dict[str, str] | None = None) -> str:
    """What `zappa package STAGE` writes as zappa_settings.py (extra env vars merged, as a deployer would)."""
    from zappa.cli import ZappaCLI

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        cli = ZappaCLI()
        cli.api_stage = stage
        cli.load_credentials = False  # what `zappa package` sets: no AWS call
        if environment:
            cli.load_settings_file(str(ROOT / "zappa_settings.json"))
            env = dict(cli.stage_config.get("environment_variables") or {}, **environment)
            cli.override_stage_config_setting("environment_variables", env)
        cli.load_settings(str(ROOT / "zappa_settings.json"))
        cli.callback("settings")
        return str(cli.get_zappa_settings_string())
    finally:
        os.chdir(cwd)


class FakeContext:
    """The attributes of a Python Lambda context that handlers read."""

    def __init__(self, function_name: str) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = "512"
        self.log_group_name = f"/aws/lambda/{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class ZappaLambdas:
    """Every Lambda of a stage group, each behind Zappa's handler with its own packaged settings."""

    def __init__(self, group: str, environment: dict[str, str] | None = None) -> None:
        self._previous_services = _cold_start()
        self.deployment = Deployment.load(group)
        self.modules: dict[str, types.ModuleType] = {}
        for st in self.deployment.stages:
            module = types.ModuleType("zappa_settings")
            exec(compile(settings_text(st.name, environment), f"<zappa_settings {st.name}>", "exec"),
                 module.__dict__)
            self.modules[st.lambda_name] = module
        self._env = dict(os.environ)
        self._root_level = logging.getLogger().level
        self._active: str | None = None

    def settings(self, lambda_name: str) -> types.ModuleType:
        return self.modules[lambda_name]

    def _activate(self, lambda_name: str) -> None:
        import zappa.handler as zh

        if self._active == lambda_name:
            return
        zh.LambdaHandler._LambdaHandler__instance = None  # type: ignore[attr-defined]
        sys.modules["zappa_settings"] = self.modules[lambda_name]
        self._active = lambda_name

    def invoke(self, lambda_name: str, event: Any, context: Any = None) -> Any:
        """Invoke as Lambda does: the configured entry point, with the event and a context."""
        from cloud.aws.lambda_handler import lambda_handler

        self._activate(lambda_name)
        return lambda_handler(event, context or FakeContext(lambda_name))

    def close(self) -> None:
        import zappa.handler as zh

        from bot.services import use_services

        zh.LambdaHandler._LambdaHandler__instance = None  # type: ignore[attr-defined]
        sys.modules.pop("zappa_settings", None)
        _cold_start()
        use_services(self._previous_services)
        os.environ.clear()
        os.environ.update(self._env)
        logging.getLogger().setLevel(self._root_level)
        self._active = None
