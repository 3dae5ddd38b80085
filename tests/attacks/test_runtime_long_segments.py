"""Over-long segments (issue 13, defect 4) with the real detection function in sandboxes: a segment whose
analysis would outlast the function's timeout is analysed as far as its time budget allows, ends inside
the timeout and says so, leaving no process or temp copy behind; a segment that fits is analysed as usual."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from runtime_helpers import alive, runtime, sessions_for
from sqlalchemy import select

from cloud.bucket import FolderBucket
from cloud.declaration import load_declaration
from cloud.events import s3_record
from cloud.models import Invocation
from cloud.results import extract
from cloud.sandbox import TMP_PREFIX

CLIP = Path(__file__).resolve().parents[1] / "data" / "vtest-clip.mkv"
DETECT = "detection.handler.handle"


def detection_declaration(root: Path, timeout_s: int) -> object:

    root.mkdir(parents=True)
    trigger = {"function": DETECT, "event_source": {"arn": "arn:aws:s3:::local", "prefix": "cameras/",
                                                    "events": ["s3:ObjectCreated:*"], "suffix": ".mkv"}}
    (root / "zappa_settings.json").write_text(json.dumps({
        "base": {"project_name": "corb", "runtime": "python3.11"},
        "test": {"extends": "base", "events": []},
        "test_detection": {"extends": "base", "timeout_seconds": timeout_s, "events": [trigger]}}))
    (root / "destinations.json").write_text(json.dumps({
        "defaults": {"maximum_retry_attempts": 0, "on_success": "bus", "on_failure": "bus"},
        "stages": {"test": {}, "test_detection": {}}}))
    return load_declaration("test", root)


def looped(seconds: int, out: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(seconds // 7 + 1), "-i", str(CLIP),
                    "-c", "copy", "-t", str(seconds), str(out)], check=True)
    return out


@pytest.fixture
def bucket(corb_env: dict[str, str]) -> FolderBucket:
    return FolderBucket(Path(corb_env["CORB_DATA_DIR"]) / "bucket", name="local")


def invoke(rt: object, bucket: FolderBucket, key: str) -> None:
    info = bucket.head(key)
    assert info is not None
    record = s3_record("local", key, size=info.size, etag=info.etag, sequencer="1")
    rt.invoke_async(DETECT, {"Records": [record]}, trigger="s3")  # type: ignore[attr-defined]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # video handling: one database is enough
def test_a_segment_longer_than_the_timeout_allows_is_analysed_as_far_as_time_allows(
        tmp_path: Path, database_url: str, bucket: FolderBucket) -> None:
    """The function's time budget (its timeout, less a reserve for the snapshot and uploads) stops decoding:
    the invocation ends inside its timeout with a result that says it was cut, not killed and retried in
    vain. (A function that overruns anyway is killed at its timeout: test_runtime_timeouts.py.)"""
    key = "cameras/lobby/2026-11-30T10:00:00Z.mkv"
    bucket.upload(looped(600, tmp_path / "long.mkv"), key)  # 10 minutes: far more than 20 s of analysis
    tmp_root = tmp_path / "sandboxes"
    with runtime(database_url, detection_declaration(tmp_path / "decl", timeout_s=20), isolation="process",
                 tmp_root=tmp_root) as rt:
        invoke(rt, bucket, key)
        assert rt.run_until_idle(120)
        pids = [p for p in (int(d.name[len(TMP_PREFIX):]) for d in tmp_root.iterdir()) if alive(p)]
    with sessions_for(database_url)() as s:
        [inv] = s.scalars(select(Invocation).where(Invocation.function == DETECT)).all()
    assert inv.status == "succeeded", inv.last_error
    [snapshot] = [o.key for o in bucket.list() if o.key.startswith("snapshots/")]
    payload = extract(bucket.get(snapshot))
    assert payload["capped"] == "time limit (the function's timeout)"
    assert 0 < payload["duration_s"] < 600  # the part that was analysed, and only that
    assert pids == [] and list(tmp_root.iterdir()) == []  # no sandbox, no segment copy left


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_segment_that_fits_is_analysed_in_a_sandbox(tmp_path: Path, database_url: str,
                                                      bucket: FolderBucket) -> None:
    key = "cameras/lobby/2026-11-30T10:00:00Z.mkv"
    bucket.upload(CLIP, key)
    with runtime(database_url, detection_declaration(tmp_path / "decl", timeout_s=120), isolation="process",
                 tmp_root=tmp_path / "sandboxes") as rt:
        invoke(rt, bucket, key)
        assert rt.run_until_idle(120)
    with sessions_for(database_url)() as s:
        [inv] = s.scalars(select(Invocation).where(Invocation.function == DETECT)).all()
    assert inv.status == "succeeded", inv.last_error
    # People were seen: the segment is moved to footage (CORB_FOOTAGE_DAYS) beside its one snapshot.
    assert {o.key.split("/")[0] for o in bucket.list()} == {"footage", "snapshots"}
