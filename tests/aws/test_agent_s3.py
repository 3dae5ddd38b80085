"""The agent's uploader on S3 (moto's server over HTTP): segments leave the spool in capture order, each key
once, with the file's MD5 as eTag; while S3 is down they wait, and go up in order when it returns."""

from __future__ import annotations

import hashlib
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from agent.spool import Spool
from agent.status import StatusBoard
from agent.uploader import Uploader
from agent.writer import segment_key
from cloud.aws import session
from cloud.aws.s3 import S3Bucket

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests/data/empty-scene.mkv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_down_and_up(aws: str) -> Iterator[tuple[S3Bucket, ThreadedMotoServer, int]]:
    """Its own moto server (the shared one must stay up), so that S3 can go away and come back."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = session.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
    client.create_bucket(Bucket="corb-video-prod")
    yield S3Bucket("corb-video-prod", client), server, port
    server.stop()


def spool_segment(spool: Spool, slug: str, t: float, data: bytes) -> str:
    key = segment_key(slug, t)
    part = spool.part_path(key)
    part.write_bytes(data)
    spool.commit(part, key)
    return key


def test_segments_wait_for_s3_and_go_up_in_order_once(s3_down_and_up: tuple, tmp_path: Path) -> None:
    bucket, server, port = s3_down_and_up
    spool = Spool(tmp_path / "spool", cap_bytes=1 << 30)
    uploaded: list[str] = []
    uploader = Uploader(bucket, spool, [StatusBoard("lobby", 1796011173.0)], on_uploaded=uploaded.append)
    data = CLIP.read_bytes()
    first = spool_segment(spool, "lobby", 1796011173.0, data)
    assert uploader.run_once() and uploaded == [first]
    head = bucket.client.head_object(Bucket=bucket.name, Key=first)
    assert head["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    assert head["ServerSideEncryption"] == "AES256"
    assert b'"state": "connecting"' in bucket.get("cameras/lobby/agent.json")

    server.stop()  # S3 unreachable
    later = [spool_segment(spool, slug, t, data[: 1000 + int(t) % 997])
             for t, slug in [(1796011233.0, "lobby"), (1796011234.5, "kitchen"), (1796011293.0, "lobby")]]
    assert not uploader.run_once()
    assert spool.pending() == later and uploaded == [first]

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # back (same state)
    server.start()
    try:
        assert uploader.run_once()
        assert uploaded == [first, *later] and spool.pending() == []
        # A crash after an upload but before its spool file was deleted: the same key goes up again with the
        # same bytes, so S3 holds one object with the same eTag (what detection dedupes on), not a second.
        shutil.copy(CLIP, spool.path_for(first))
        assert uploader.run_once()
        keys = [o.key for o in bucket.list("cameras/") if o.key.endswith(".mkv")]
        assert sorted(keys) == sorted([first, *later])
        assert bucket.head(first).etag == hashlib.md5(data).hexdigest()
    finally:
        server.stop()
