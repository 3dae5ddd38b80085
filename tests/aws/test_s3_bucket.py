"""S3Bucket against the moto server: the Bucket protocol's behaviour, over HTTP."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cloud.adapters import open_bucket
from cloud.aws import session
from cloud.aws.s3 import S3Bucket
from cloud.bucket import NoSuchKey
from cloud.config import load_config

# A minimal JPEG (SOI, APP0 JFIF, EOI) is enough: the test is about the bytes, not the picture.
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")


@pytest.fixture
def bucket(bucket_name: str) -> S3Bucket:
    return S3Bucket(bucket_name, session.client("s3"))


def test_from_config_is_what_open_bucket_returns(aws: str, bucket_name: str, tmp_path: Path) -> None:
    config = load_config({"CORB_DATA_DIR": str(tmp_path), "CORB_BUCKET": bucket_name, "CORB_SECRET_KEY": "k",
                          "TWILIO_AUTH_TOKEN": "t", "AWS_ENDPOINT_URL": aws, "CORB_MEDIA_TTL": "120"})
    b = open_bucket(config)
    assert isinstance(b, S3Bucket)
    assert b.name == bucket_name and b.default_ttl == 120
    b.put("snapshots/x.jpg", JPEG)
    assert b.get("snapshots/x.jpg") == JPEG


def test_put_get_head_with_encryption_and_content_type(bucket: S3Bucket, s3: Any) -> None:
    info = bucket.put("snapshots/lobby/1.jpg", JPEG)
    assert info.etag == hashlib.md5(JPEG).hexdigest()
    assert info.size == len(JPEG) and info.content_type == "image/jpeg"
    assert bucket.get("snapshots/lobby/1.jpg") == JPEG
    raw = s3.head_object(Bucket=bucket.name, Key="snapshots/lobby/1.jpg")
    assert raw["ServerSideEncryption"] == "AES256"
    assert raw["ContentType"] == "image/jpeg"
    head = bucket.head("snapshots/lobby/1.jpg")
    assert head is not None and head.etag == info.etag and head.size == len(JPEG)
    assert head.last_modified.tzinfo is not None


def test_explicit_content_type_wins(bucket: S3Bucket, s3: Any) -> None:
    bucket.put("results/a", b"{}", content_type="application/json")
    assert s3.head_object(Bucket=bucket.name, Key="results/a")["ContentType"] == "application/json"


def test_missing_keys(bucket: S3Bucket, tmp_path: Path) -> None:
    with pytest.raises(NoSuchKey):
        bucket.get("nope")
    with pytest.raises(NoSuchKey):
        bucket.download("nope", tmp_path / "nope")
    assert bucket.head("nope") is None
    bucket.delete("nope")  # deleting what is not there is fine, as on S3


def test_upload_and_streamed_download(bucket: S3Bucket, s3: Any, tmp_path: Path) -> None:
    src = Path(__file__).parents[1] / "data" / "vtest-clip.mkv"
    info = bucket.upload(src, "cameras/lobby/seg.mkv")
    assert info.content_type == "video/x-matroska"
    assert info.etag == hashlib.md5(src.read_bytes()).hexdigest()  # single part: the eTag is the MD5
    assert s3.head_object(Bucket=bucket.name, Key="cameras/lobby/seg.mkv")["ServerSideEncryption"] == "AES256"
    dest = tmp_path / "seg.mkv"
    got = bucket.download("cameras/lobby/seg.mkv", dest)
    assert dest.read_bytes() == src.read_bytes()
    assert got.size == src.stat().st_size


def test_list_is_paginated_and_prefixed(bucket_name: str) -> None:
    client = session.client("s3")
    calls: list[str] = []
    client.meta.events.register("after-call.s3.ListObjectsV2", lambda **kw: calls.append("list"))
    try:
        b = S3Bucket(bucket_name, client, page_size=2)
        for i in range(5):
            b.put(f"snapshots/{i}.jpg", JPEG)
        b.put("cameras/other.mkv", b"x")
        keys = [o.key for o in b.list("snapshots/")]
    finally:
        client.meta.events.unregister("after-call.s3.ListObjectsV2")
    assert keys == [f"snapshots/{i}.jpg" for i in range(5)]
    assert len(calls) == 3  # 2 + 2 + 1 keys: every page was fetched
    assert {o.key for o in b.list()} == set(keys) | {"cameras/other.mkv"}


def test_delete(bucket: S3Bucket) -> None:
    bucket.put("snapshots/d.jpg", JPEG)
    bucket.delete("snapshots/d.jpg")
    assert bucket.head("snapshots/d.jpg") is None


def test_presigned_url_serves_the_jpeg_over_http(bucket: S3Bucket) -> None:
    bucket.put("snapshots/lobby/best.jpg", JPEG)
    url = bucket.presigned_url("snapshots/lobby/best.jpg", expires_in=60)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    with urllib.request.urlopen(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "image/jpeg"
        assert resp.read() == JPEG
    # moto checks neither signature nor expiry (AWS answers 403): what can be checked here is what was
    # signed: SigV4, the default lifetime, the host header only.
    query = parse_qs(urlsplit(bucket.presigned_url("snapshots/lobby/best.jpg")).query)
    assert query["X-Amz-Expires"] == [str(bucket.default_ttl)]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-SignedHeaders"] == ["host"]


def test_presigned_url_refuses_impossible_lifetimes(bucket: S3Bucket) -> None:
    with pytest.raises(ValueError):
        bucket.presigned_url("snapshots/x.jpg", expires_in=8 * 24 * 3600)
