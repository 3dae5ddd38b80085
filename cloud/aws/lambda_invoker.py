"""Asynchronous Lambda invocation (``InvocationType="Event"``): the AWS ``Invoker`` for dead-letter replay
and for any code that queues a function rather than calling it.

An async invocation is what makes Lambda's retries and destinations apply: its result (or its failure,
after the retries) becomes a destination record on the bus, so chains continue as they would have.

``function`` may be a Corb function (``bot.handlers.snapshot.handle``): the invoker finds the Lambda of
the Zappa stage that runs it (``corb-dev``) and sends the envelope Zappa's handler routes to it (see
``cloud.aws.lambda_handler``). It may also be a Lambda name or ARN (a dead letter recorded on AWS names the
Lambda, e.g. ``corb-dev``): then the payload goes as it is, since a recorded request payload is already
what that Lambda routes (an envelope, or an S3 notification Zappa routes by its configuration Id).

A Lambda of the deployment is invoked through its ``live`` alias, like every trigger ``corb deploy`` makes,
so that the alias's async config (retries, destinations on the stage's bus) applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.aws import session
from cloud.aws.lambda_handler import envelope, unwrap
from cloud.aws.stages import ALIAS, Deployment

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from cloud.config import Config


class InvokeError(RuntimeError):
    """Lambda did not accept the asynchronous invocation."""


def is_corb_function(name: str) -> bool:
    """Dotted names are Corb functions; Lambda names cannot contain dots, ARNs contain colons."""
    return "." in name and ":" not in name


class LambdaInvoker:
    """Queues invocations on the Lambdas of one deployment (a Zappa stage group)."""

    def __init__(self, deployment: Deployment, client: BaseClient) -> None:
        self.deployment = deployment
        self.client = client

    @classmethod
    def from_config(cls, config: Config, root: Path | None = None) -> LambdaInvoker:
        return cls(Deployment.load(config.stage, root), session.client("lambda", config))

    def request(self, function: str, payload: Any) -> tuple[str, Any]:
        """``(Lambda name, payload)`` for invoking ``function`` on ``payload``."""
        if is_corb_function(function):
            return self.deployment.lambda_for(function), envelope(function, payload)
        inner_function, _ = unwrap(payload)
        if inner_function is not None and is_corb_function(inner_function):
            # An envelope names its function: send it to that function's Lambda, whatever was recorded.
            return self.deployment.lambda_for(inner_function), payload
        return function, payload

    def invoke_async(self, function: str, payload: Any, trigger: str = "direct") -> str:
        """Queue one invocation; returns Lambda's request id (the destination record's ``requestId``)."""
        name, body = self.request(function, payload)
        where = {"Qualifier": ALIAS} if name in self.deployment.lambda_names else {}
        resp = self.client.invoke(FunctionName=name, InvocationType="Event", **where,
                                  Payload=json.dumps(body, default=str).encode())
        status = resp.get("StatusCode")
        if status != 202:
            raise InvokeError(f"Lambda {name} answered {status} to an asynchronous invocation of {function}")
        return str(resp["ResponseMetadata"]["RequestId"])
