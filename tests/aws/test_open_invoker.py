"""Replays go where the functions run: the local runtime's queue, or Lambda's asynchronous invoke."""

from __future__ import annotations

from dataclasses import replace

from cloud.adapters import open_invoker
from cloud.aws.lambda_invoker import LambdaInvoker
from cloud.config import load_config
from cloud.runtime import LocalInvoker


def test_the_bus_setting_chooses_the_invoker(corb_env, sqlite_url, monkeypatch) -> None:
    from cloud.db import make_engine, make_sessionmaker

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = load_config()
    sessions = make_sessionmaker(make_engine(sqlite_url))
    assert isinstance(open_invoker(config, sessions), LocalInvoker)
    aws = open_invoker(replace(config, bus="corb-dev", stage="dev"), sessions)
    assert isinstance(aws, LambdaInvoker)
    # a bot function is sent to the stage's bot Lambda, wrapped so Zappa's handler routes it
    name, payload = aws.request("bot.handlers.status.handle", {"detail": {}})
    assert name == "corb-dev" and payload["command"] == "cloud.aws.lambda_handler.route"
    assert aws.request("detection.handler.handle", {"Records": []})[0] == "corb-dev-detection"
