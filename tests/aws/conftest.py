"""AWS tests talk to a real moto server over HTTP (``ThreadedMotoServer`` on a free loopback port), so
the wire protocol is exercised: boto3 signs, serialises and parses exactly as it would against AWS.

One server per test session; its state is reset before every test. Credentials are dummies in the
environment, so nothing can reach a real account.
"""

from __future__ import annotations

import io
import json
import os
import urllib.request
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from cloud.aws import session

from .wire import WireProxy

REGION = "us-east-1"
BUCKET = "corb-video"  # the bucket zappa_settings.json names, so Zappa's S3 mapping applies unchanged


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A clean moto account for this test; returns its endpoint URL (also in ``AWS_ENDPOINT_URL``)."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_REGION": REGION, "AWS_ENDPOINT_URL": moto_url,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    # Lambda functions exist in moto but never run there (no Docker): the tests' pump runs them.
    urllib.request.urlopen(urllib.request.Request(
        f"{moto_url}/moto-api/config", data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        method="POST")).read()
    session.clear_cache()
    yield moto_url
    session.clear_cache()


@pytest.fixture
def s3(aws: str) -> Any:
    return session.client("s3")


@pytest.fixture
def events(aws: str) -> Any:
    return session.client("events")


@pytest.fixture
def sqs(aws: str) -> Any:
    return session.client("sqs")


@pytest.fixture
def bucket_name(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def proxy(aws: str) -> Iterator[WireProxy]:
    p = WireProxy(aws).start()
    yield p
    p.stop()


def create_lambdas(roles: dict[str, str]) -> dict[str, str]:
    """Lambda functions (name -> role name) as ``zappa deploy`` leaves them; moto never runs their code."""
    iam = session.client("iam")
    lam = session.client("lambda")
    arns = {}
    for name, role_name in roles.items():
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
        arns[name] = lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"],
            Handler="cloud.aws.lambda_handler.lambda_handler",
            Code={"ZipFile": buf.getvalue()})["FunctionArn"]
    return arns


def tap(events_client: Any, sqs_client: Any, *, bus: str = "default", pattern: dict | None = None,
        name: str = "tap") -> str:
    """An SQS queue receiving every event on ``bus`` that matches ``pattern`` (moto evaluates the rule)."""
    queue_url = sqs_client.create_queue(QueueName=f"{name}-{bus}")["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=queue_url,
                                          AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name=name, EventBusName=bus,
                           EventPattern=json.dumps(pattern or {"source": [{"prefix": ""}]}))
    events_client.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return queue_url


def drain(sqs_client: Any, queue_url: str) -> list[dict]:
    """Every message on the queue, parsed (moto delivers immediately; one empty receive ends it)."""
    out: list[dict] = []
    while True:
        msgs = sqs_client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs_client.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
