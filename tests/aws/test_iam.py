"""The Lambda roles' policies (deploy/iam/*.json): parse, are referenced by their stage, grant no wildcard
action or resource, and give each function only the bucket prefixes, bus and functions it uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.aws import session
from cloud.aws.stages import ALIAS, Deployment, read_settings, stage_config

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["dev", "dev_detection", "prod", "prod_detection"]


def policy(stage: str) -> dict:
    conf = stage_config(read_settings(), stage)
    return json.loads((ROOT / conf["attach_policy"]).read_text())


def grants(doc: dict) -> dict[str, set[str]]:
    """action -> resources, over every Allow statement."""
    out: dict[str, set[str]] = {}
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
        resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
        for a in actions:
            out.setdefault(a, set()).update(resources)
    return out


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_its_own_role_and_policy_file(stage: str) -> None:
    conf = stage_config(read_settings(), stage)
    assert conf["attach_policy"] == f"deploy/iam/{stage}.json"
    assert conf["role_name"].startswith(f"corb-{stage.split('_')[0]}-")
    doc = policy(stage)
    assert doc["Version"] == "2012-10-17"
    assert all(set(st) <= {"Sid", "Effect", "Action", "Resource"} for st in doc["Statement"])
    assert len({st["Sid"] for st in doc["Statement"]}) == len(doc["Statement"])


@pytest.mark.parametrize("stage", STAGES)
def test_no_wildcard_actions_or_resources(stage: str) -> None:
    for action, resources in grants(policy(stage)).items():
        assert "*" not in action, action
        for r in resources:
            assert r != "*" and not r.endswith(":*:*") and ":::*" not in r, r
            service = action.split(":")[0]
            assert r.startswith(f"arn:aws:{service}:"), (action, r)
            # the account is the only wildcard segment (the policy files are shared by accounts), beside
            # the log streams of one named log group
            parts = r.split(":")
            allowed = [4, len(parts) - 1] if service == "logs" else [4]
            assert [i for i, part in enumerate(parts) if part == "*"] in ([], [4], allowed), r


@pytest.mark.parametrize("group", ["dev", "prod"])
def test_each_function_gets_only_what_it_uses(group: str) -> None:
    settings = read_settings()
    bucket = stage_config(settings, group)["environment_variables"]["CORB_BUCKET"]
    b = f"arn:aws:s3:::{bucket}"
    deployment = Deployment.load(group)
    web, detection = deployment.stages[0].lambda_name, deployment.stages[1].lambda_name
    bus = {f"arn:aws:events:us-east-1:*:event-bus/{deployment.bus}"}  # the stage's own bus

    d = grants(policy(f"{group}_detection"))
    # reads segments, its stored results (inside snapshots; results/ from versions before) and zones
    assert d["s3:GetObject"] == {f"{b}/cameras/*", f"{b}/snapshots/*", f"{b}/results/*",
                                 f"{b}/config/cameras/*"}
    # one object + the footage copy (people) or the sub-stream copy (nobody)
    assert d["s3:PutObject"] == {f"{b}/snapshots/*", f"{b}/footage/*", f"{b}/quiet/*"}
    # the move; an uncommitted copy
    assert d["s3:DeleteObject"] == {f"{b}/cameras/*", f"{b}/footage/*", f"{b}/quiet/*"}
    assert d["s3:ListBucket"] == {b}  # without it a missing key is 403, not NoSuchKey
    assert d["events:PutEvents"] == bus  # its onSuccess / onFailure destinations
    assert {r.rsplit("/", 1)[-1] for r in d["logs:PutLogEvents"]} == {f"{detection}:*"}
    # the reconciler queues the detection function again, through the alias every trigger invokes
    assert d["lambda:InvokeFunction"] == {f"arn:aws:lambda:us-east-1:*:function:{detection}:{ALIAS}"}

    w = grants(policy(group))
    assert f"{b}/cameras/*" not in w["s3:GetObject"]  # the web never reads video
    assert f"{b}/cameras/*/agent.json" in w["s3:GetObject"]  # only the camera agents' status objects
    assert w["s3:PutObject"] == {f"{b}/events/large/*", f"{b}/config/cameras/*"}  # + counting zones
    assert f"{b}/config/cameras/*" in w["s3:GetObject"] and f"{b}/config/cameras/*" in w["s3:DeleteObject"]
    assert w["events:PutEvents"] == bus
    assert w["lambda:InvokeFunction"] == {f"arn:aws:lambda:us-east-1:*:function:{name}:{ALIAS}"
                                          for name in (web, detection)}  # replay
    assert {r.rsplit("/", 1)[-1] for r in w["logs:PutLogEvents"]} == {f"{web}:*"}


@pytest.mark.parametrize("stage", STAGES)
def test_iam_accepts_the_documents(aws: str, stage: str) -> None:
    """Put over the wire as Zappa puts them (an inline role policy); moto validates the grammar."""
    iam = session.client("iam")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]}))
    doc: Any = policy(stage)
    iam.put_role_policy(RoleName="r", PolicyName="zappa-permissions", PolicyDocument=json.dumps(doc))
    got = iam.get_role_policy(RoleName="r", PolicyName="zappa-permissions")["PolicyDocument"]
    assert got == doc


class RecordingBucket:
    """A real FolderBucket that notes each S3 action the detection function would take, and on what key
    (CopyObject needs GetObject on its source and PutObject on its destination)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name, self.calls = inner, inner.name, []

    def get(self, key: str) -> bytes:
        self.calls.append(("s3:GetObject", key))
        return self.inner.get(key)

    def download(self, key: str, path: Path) -> Any:
        self.calls.append(("s3:GetObject", key))
        return self.inner.download(key, path)

    def head(self, key: str) -> Any:
        self.calls.append(("s3:GetObject", key))  # HeadObject is authorised as GetObject
        return self.inner.head(key)

    def put(self, key: str, data: bytes, content_type: str | None = None) -> Any:
        self.calls.append(("s3:PutObject", key))
        return self.inner.put(key, data, content_type)

    def upload(self, path: Path, key: str, content_type: str | None = None) -> Any:
        self.calls.append(("s3:PutObject", key))
        return self.inner.upload(path, key, content_type)

    def copy(self, src: str, dst: str) -> Any:
        self.calls += [("s3:GetObject", src), ("s3:PutObject", dst)]
        return self.inner.copy(src, dst)

    def delete(self, key: str) -> Any:
        self.calls.append(("s3:DeleteObject", key))
        return self.inner.delete(key)


@pytest.mark.parametrize("group", ["dev", "prod"])
@pytest.mark.parametrize("keep", [True, False], ids=["segments-kept", "segments-deleted"])
def test_the_detection_policy_grants_every_call_the_function_makes(group: str, keep: bool,
                                                                   tmp_path: Path) -> None:
    """Moto does not enforce IAM: the function's own calls, on a real bucket, are checked against the
    policy document here (a footage copy without PutObject would fail only on AWS)."""
    import fnmatch

    from agent.offline import split
    from agent.segmenter import SegmentPolicy
    from cloud.bucket import FolderBucket
    from cloud.events import s3_record
    from detection.handler import handle_records
    from scripts.camera_feed import make_feed

    bucket_name = stage_config(read_settings(), group)["environment_variables"]["CORB_BUCKET"]
    clip = Path(__file__).resolve().parents[1] / "data" / "vtest-clip.mkv"
    bucket = RecordingBucket(FolderBucket(tmp_path / "bucket", name=bucket_name))
    allowed = grants(policy(f"{group}_detection"))
    # A segment as the agent writes it (main + sub-stream tracks), nobody in it: its sub-stream is kept.
    make_feed(tmp_path / "feed.mkv", [("empty", 3.0)], size="320x180", fps=10, gop=10, bitrate="300k",
              sub_size="160x90", sub_bitrate="100k")
    (quiet, *_) = split(tmp_path / "feed.mkv", tmp_path / "feed.sub.mkv", SegmentPolicy(), tmp_path / "segs",
                        camera="lobby", start=datetime(2026, 11, 30, 10, 2, tzinfo=UTC))
    for key, video in (("cameras/lobby/2026-11-30T10-00-00.000Z.mkv", clip),
                       ("cameras/lobby/2026-11-30T10-01-00.000Z.mkv", clip),
                       ("cameras/lobby/2026-11-30T10-02-00.000Z.mkv", quiet.path)):
        info = bucket.inner.upload(video, key)
        record = s3_record(bucket.name, key, size=info.size, etag=info.etag, sequencer="01")
        payload = handle_records([record], bucket, keep_segments=keep)
        assert payload["kind"] == "segment_analysed"
        # people: the footage move; nobody: the sub-stream move when segments are kept
        assert payload["peak"] > 0 if video == clip else ("quiet_key" in payload) is keep
        assert handle_records([record], bucket, keep_segments=keep)["duplicate"] is True
    assert {a for a, _ in bucket.calls} == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}
    for action, key in bucket.calls:
        arn = f"arn:aws:s3:::{bucket_name}/{key}"
        assert any(fnmatch.fnmatchcase(arn, r) for r in allowed[action]), (action, key)
