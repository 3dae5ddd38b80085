"""The camera agent's policy (deploy/iam/camera_agent.json): it may only put objects under its own cameras'
prefixes, and that is enough for everything the agent writes (segments, still segments under ``quiet/`` and
its status object)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from agent.status import status_key
from agent.writer import segment_key
from cloud.aws.stages import read_settings, stage_config
from cloud.lifecycle import quiet_key

ROOT = Path(__file__).resolve().parents[2]
POLICY = json.loads((ROOT / "deploy/iam/camera_agent.json").read_text())
CAMERAS = ["lobby", "kitchen"]


def resources() -> list[str]:
    [statement] = POLICY["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == ["s3:PutObject"]
    assert set(statement) == {"Sid", "Effect", "Action", "Resource"}
    return statement["Resource"]


def allowed(key: str, bucket: str) -> bool:
    return any(fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{key}", r) for r in resources())


def test_only_put_object_on_its_cameras_prefixes() -> None:
    bucket = stage_config(read_settings(), "prod")["environment_variables"]["CORB_BUCKET"]
    assert POLICY["Version"] == "2012-10-17"
    assert resources() == [f"arn:aws:s3:::{bucket}/{prefix}/{slug}/*" for slug in CAMERAS
                           for prefix in ("cameras", "quiet")]


def test_it_covers_what_the_agent_writes_and_nothing_else() -> None:
    bucket = stage_config(read_settings(), "prod")["environment_variables"]["CORB_BUCKET"]
    for slug in CAMERAS:
        assert allowed(segment_key(slug, 1796011173.0017), bucket)
        assert allowed(quiet_key(segment_key(slug, 1796011173.0017)), bucket)
        assert allowed(status_key(slug), bucket)
    for key in ["cameras/garage/2026-11-30T10-15-02.123Z.mkv", "quiet/garage/x.mkv", "results/lobby/x.json",
                "snapshots/lobby/x.jpg", "config/cameras/lobby.json", "cameras/lobby-2/x.mkv"]:
        assert not allowed(key, bucket), key
