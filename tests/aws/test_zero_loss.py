"""Deploys without loss, proven with the real Zappa 0.63 CLI against moto's server.

SMS commands (through the webhook Lambda, as API Gateway delivers them) and camera segments (S3 PUTs)
arrive without pause while ``zappa update dev``, ``zappa update dev_detection``, ``zappa schedule dev``
and ``zappa unschedule dev`` run one after another, each followed by what docs/deploy.md tells an operator
to run. Then the Lambdas run (the pump; AWS's async queue would hold the invocations meanwhile): every
command is answered exactly once, every segment analysed exactly once, and each Lambda's resource policy
is the same after every deploy.

Zappa runs in a thread of this process, with a tiny stand-in zip (``--zip``: moto never runs the code;
the pump runs the real code through Zappa's handler) and two harness patches from
/work/shared/notes/zappa-on-moto.md: no touch of the API Gateway URL, no ``ListFunctionUrlConfigs``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.models import Camera, Message, Role, User
from cloud.aws import session
from cloud.aws.s3 import S3Bucket
from cloud.aws.stages import ALIAS

from .conftest import BUCKET
from .pump import LambdaPump
from .test_zappa_routing import api_gateway_post
from .zappa_lambda import ZappaLambdas

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests" / "data" / "empty-scene.mkv"
API = "https://zl0api.execute-api.us-east-1.amazonaws.com/dev"
TOKEN = "zero-loss-token"
MEMBERS = ("+15550000101", "+15550000102")
LAMBDAS = ("corb-dev", "corb-dev-detection")


def stand_in_zip(tmp_path: Path) -> Path:
    path = tmp_path / "stand-in.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    return path


@pytest.fixture
def zappa(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    from zappa import cli as zappa_cli
    from zappa import core as zappa_core

    monkeypatch.setattr(zappa_cli, "check_new_version_available", lambda version: False)
    monkeypatch.setattr(zappa_cli.ZappaCLI, "touch_endpoint", lambda self, url: None)
    monkeypatch.setattr(zappa_core.Zappa, "delete_lambda_function_url", lambda self, arn: None)
    monkeypatch.chdir(ROOT)

    def run(*argv: str) -> None:
        try:
            zappa_cli.ZappaCLI().handle(list(argv))
        except SystemExit as exc:  # Zappa exits 0 after some commands
            assert not exc.code, f"zappa {' '.join(argv)} exited {exc.code}"

    return run


def corb_deploy() -> None:
    from bot.cli import main

    result = CliRunner().invoke(main, ["deploy", "dev"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def policies() -> dict[str, list[str]]:
    """Each Lambda's resource policy, statement by statement; Zappa names its schedule's statement with a
    new random Sid on every run, so a Sid not Corb's is left out of the comparison."""
    lam = session.client("lambda")
    out = {}
    for name in LAMBDAS:
        statements = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
        out[name] = sorted(json.dumps({k: v for k, v in st.items()
                                       if k != "Sid" or str(v).startswith("corb-")}, sort_keys=True)
                           for st in statements)
    return out


class Traffic:
    """SMS commands through the webhook Lambda and segment uploads, back to back, until stopped."""

    def __init__(self, lambdas: ZappaLambdas, bucket: S3Bucket) -> None:
        self.lambdas, self.bucket = lambdas, bucket
        self.sent: list[str] = []  # MessageSids
        self.segments: list[str] = []
        self.errors: list[str] = []
        # when each send was in flight
        self.spans: dict[str, list[tuple[float, float]]] = {"sms": [], "segment": []}
        # set as each Zappa command starts: both senders go at once rather than finish their pause, so
        # traffic overlaps even a command shorter than the pause
        self.wake = {"sms": threading.Event(), "segment": threading.Event()}

    def command_started(self) -> None:
        for event in self.wake.values():
            event.set()

    def _pause(self, kind: str, seconds: float) -> None:
        self.wake[kind].wait(seconds)
        self.wake[kind].clear()

    def sms(self, sender: str, body: str) -> None:
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32, "From": sender,
                "To": "+15550001000", "Body": body, "NumMedia": "0", "ApiVersion": "2010-04-01"}
        event = api_gateway_post("/sms", form, RequestValidator(TOKEN).compute_signature(f"{API}/sms", form))
        event["headers"]["Host"] = event["requestContext"]["domainName"] = API.split("/")[2]
        event["multiValueHeaders"]["Host"] = [event["headers"]["Host"]]
        event["body"] = urlencode(form)
        started = time.monotonic()
        resp = self.lambdas.invoke("corb-dev", event)
        self.spans["sms"].append((started, time.monotonic()))
        if resp["statusCode"] != 200:
            self.errors.append(f"{sid}: {resp['statusCode']} {resp.get('body')}")
        self.sent.append(sid)

    def segment(self) -> None:
        key = f"cameras/lobby/2026-11-30T04-{len(self.segments):02d}-00Z.mkv"
        started = time.monotonic()
        self.bucket.upload(CLIP, key)
        self.spans["segment"].append((started, time.monotonic()))
        self.segments.append(key)

    def run_while(self, busy: Callable[[], bool], pause: float = 0.3) -> None:
        """Texts and uploads, each at its own pace, so a slow answer never leaves a deploy without uploads."""
        def uploads() -> None:
            while busy():
                self.segment()
                self._pause("segment", pause * 2)

        uploader = threading.Thread(target=uploads, daemon=True)
        uploader.start()
        n = 0
        while busy():
            self.sms(MEMBERS[n % 2], "status lobby")
            n += 1
            self._pause("sms", pause)
        uploader.join()


@pytest.fixture
def stage(aws: str, bucket_name: str, zappa: Callable[..., None], tmp_path: Path, database_url: str,
          corb_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Both stages deployed by `zappa deploy` (whose post callback runs `corb deploy`), the database ready
    (SQLite and PostgreSQL, as in production)."""
    from bot.services import Services, use_services
    from cloud.config import load_config

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    services = Services(load_config())
    with services.session() as s:
        s.add_all([User(phone=p, name=f"Member {i}", role=Role.member) for i, p in enumerate(MEMBERS)])
        s.add(Camera(slug="lobby", name="Lobby", area="lobby"))
    previous = use_services(services)
    iam = session.client("iam")  # `zappa deploy --zip` does not manage the role: made first, as Zappa would
    for role in ("corb-dev-web", "corb-dev-detection"):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    stand_in = stand_in_zip(tmp_path)
    zappa("deploy", "dev", "--zip", str(stand_in))
    zappa("deploy", "dev_detection", "--zip", str(stand_in))
    env = {"DATABASE_URL": database_url, "TWILIO_AUTH_TOKEN": TOKEN, "CORB_SECRET_KEY": "zl",
           "CORB_PUBLIC_URL": API, "CORB_DATA_DIR": str(tmp_path / "lambda")}
    lambdas = ZappaLambdas("dev", env)
    pump = LambdaPump(lambdas)
    pump.install()
    try:
        yield {"services": services, "lambdas": lambdas, "pump": pump, "zip": stand_in,
               "bucket": S3Bucket(BUCKET, session.client("s3"))}
    finally:
        pump.stop()
        lambdas.close()
        use_services(previous)
        services.close()


def test_sms_and_segments_flow_through_update_schedule_and_unschedule(
        stage: dict[str, Any], zappa: Callable[..., None]) -> None:
    lambdas, pump, services = stage["lambdas"], stage["pump"], stage["services"]
    zip_arg = ("--zip", str(stage["zip"]))
    after_deploy: list[dict[str, list[str]]] = [policies()]
    # (Zappa command, what docs/deploy.md says to run after it)
    steps: list[tuple[tuple[str, ...], Callable[[], None]]] = [
        (("update", "dev", *zip_arg), lambda: None),  # its post callback ran `corb deploy dev`
        (("update", "dev_detection", *zip_arg), lambda: None),
        (("schedule", "dev"), corb_deploy),
        (("unschedule", "dev"), lambda: (zappa("schedule", "dev"), corb_deploy())),
        (("update", "dev", *zip_arg), lambda: None),  # the third deploy after the first
    ]
    failures: list[BaseException] = []
    finished = threading.Event()
    ran: list[tuple[str, float, float]] = []

    def operator() -> None:
        try:
            for argv, then in steps:
                started = time.monotonic()
                traffic.command_started()
                zappa(*argv)
                ran.append((" ".join(argv[:2]), started, time.monotonic()))
                then()
                if argv[0] == "update":
                    after_deploy.append(policies())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            finished.set()

    traffic = Traffic(lambdas, stage["bucket"])
    thread = threading.Thread(target=operator)
    started = time.monotonic()
    thread.start()
    traffic.run_while(lambda: not finished.is_set())
    thread.join()
    elapsed = time.monotonic() - started
    assert not failures, failures
    for _ in range(3):  # and a little after
        traffic.sms(MEMBERS[0], "status lobby")
        traffic.segment()
    assert traffic.errors == []
    print(f"zero-loss: {len(traffic.sent)} SMS, {len(traffic.segments)} segments in {elapsed:.1f} s; "
          + ", ".join(f"{c} {e - s:.1f} s" for c, s, e in ran))

    for name in LAMBDAS:  # Lambda reads the async config at each invocation: it survived too
        pump.refresh(name)
        assert pump.configs[name].on_success and pump.configs[name].on_failure
    pump.run_until_idle(max_rounds=200)

    # every segment analysed exactly once, and nothing else ran the detection function
    analysed = Counter(r.result["segment_key"] for r in pump.runs if r.lambda_name == "corb-dev-detection"
                       and r.error is None and r.result.get("kind") == "segment_analysed"
                       and not r.result.get("duplicate"))
    assert analysed == Counter(traffic.segments)
    assert len(list(stage["bucket"].list("snapshots/lobby/"))) == len(traffic.segments)
    assert all(r.error is None for r in pump.runs), [r.error for r in pump.runs if r.error][:2]

    # every command answered exactly once
    with services.session() as s:
        inbound = s.scalars(select(Message.sid).where(Message.direction == "in")).all()
        replies = s.scalars(select(Message.to_number).where(Message.direction == "out")).all()
    assert sorted(inbound) == sorted(traffic.sent)
    assert Counter(replies) == Counter(MEMBERS[i % 2] for i in range(len(traffic.sent) - 3)) + Counter(
        {MEMBERS[0]: 3})
    status_runs = [r for r in pump.runs if r.lambda_name == "corb-dev" and r.error is None
                   and (r.payload or {}).get("function") == "bot.handlers.status.handle"]
    assert len(status_runs) == len(traffic.sent)

    # each Lambda's policy: the same after every deploy; the triggers' statements are on the alias
    assert all(p == after_deploy[0] for p in after_deploy), "a deploy changed a Lambda's policy"
    alias_arn = pump.configs["corb-dev"].function_arn + f":{ALIAS}"
    assert any(f'"Resource": "{alias_arn}"' in st and "corb-corb-dev-status" in st
               for st in after_deploy[-1]["corb-dev"])

    def overlapping(kind: str, start: float, end: float) -> int:
        return sum(1 for a, b in traffic.spans[kind] if a < end and b > start)

    for command, start, end in ran:  # traffic was in flight while each Zappa command ran
        assert overlapping("sms", start, end) >= 1, f"no SMS while `zappa {command}` ran"
        if command.startswith("update"):
            assert overlapping("segment", start, end) >= 1, f"no upload while `zappa {command}` ran"
