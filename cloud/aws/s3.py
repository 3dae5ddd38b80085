"""S3 as Corb's bucket: the same interface as the folder bucket, so handlers never know which they use.

Every write asks for server-side encryption (SSE-S3, ``AES256``) and states its content type: snapshots of
people are personal data, and MMS media must be served with the right type. Missing keys raise
``cloud.bucket.NoSuchKey``, as the folder does. Segments are uploaded in one part up to 64 MB so that their
eTag stays the MD5 the detection handler dedupes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cloud.aws import session
from cloud.bucket import NoSuchKey, ObjectInfo, guess_type

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from cloud.config import Config

SSE = "AES256"
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's limit


def _missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in {"NoSuchKey", "404", "NotFound"}


def _etag(value: str) -> str:
    return value.strip('"')


class S3Bucket:
    """An S3 bucket behind the ``Bucket`` protocol."""

    def __init__(self, name: str, client: BaseClient, *, default_ttl: int = 3600,
                 server_side_encryption: str | None = SSE, page_size: int | None = None) -> None:
        self.name = name
        self.client = client
        self.default_ttl = default_ttl
        self.sse = server_side_encryption
        self.page_size = page_size  # keys per ListObjectsV2 request (S3's maximum, 1000, when None)

    @classmethod
    def from_config(cls, config: Config) -> S3Bucket:
        return cls(config.bucket, session.client("s3", config), default_ttl=config.media_url_ttl)

    # -- helpers ---------------------------------------------------------------------------------------
    def _write_args(self, key: str, content_type: str | None) -> dict[str, Any]:
        args: dict[str, Any] = {"ContentType": content_type or guess_type(key)}
        if self.sse:
            args["ServerSideEncryption"] = self.sse
        return args

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD,
                              multipart_chunksize=MULTIPART_THRESHOLD)

    # -- the interface ---------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        args = self._write_args(key, content_type)
        resp = self.client.put_object(Bucket=self.name, Key=key, Body=data, **args)
        date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        # S3's Last-Modified is the time it received the request, which the response's Date states.
        modified = parsedate_to_datetime(date) if date else datetime.now(UTC)
        return ObjectInfo(key=key, size=len(data), etag=_etag(resp["ETag"]), content_type=args["ContentType"],
                          last_modified=modified)

    def upload(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        self.client.upload_file(str(path), self.name, key, ExtraArgs=self._write_args(key, content_type),
                                Config=self._transfer_config())
        info = self.head(key)
        if info is None:  # pragma: no cover - S3 is read-after-write consistent
            raise NoSuchKey(key)
        return info

    def get(self, key: str) -> bytes:
        try:
            resp = self.client.get_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise NoSuchKey(key) from exc
            raise
        with resp["Body"] as body:
            return body.read()

    def download(self, key: str, path: Path) -> ObjectInfo:
        """Stream to ``path`` with the transfer manager (ranged, parallel GETs; never all in memory)."""
        info = self.head(key)
        if info is None:
            raise NoSuchKey(key)
        try:
            self.client.download_file(self.name, key, str(path), Config=self._transfer_config())
        except ClientError as exc:
            if _missing(exc):
                raise NoSuchKey(key) from exc
            raise
        return info

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return ObjectInfo(key=key, size=int(resp["ContentLength"]), etag=_etag(resp["ETag"]),
                          content_type=resp.get("ContentType") or guess_type(key),
                          last_modified=resp["LastModified"])

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page after page (S3 returns at most 1000 keys a request)."""
        paginator = self.client.get_paginator("list_objects_v2")
        paging = {"PageSize": self.page_size} if self.page_size else {}
        for page in paginator.paginate(Bucket=self.name, Prefix=prefix, PaginationConfig=paging):
            for obj in page.get("Contents", []):
                # Listings carry no content type; the key's extension is what the writer used too.
                yield ObjectInfo(key=obj["Key"], size=int(obj["Size"]), etag=_etag(obj["ETag"]),
                                 content_type=guess_type(obj["Key"]), last_modified=obj["LastModified"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Server-side copy (multipart above the threshold, as the transfer manager does)."""
        try:
            self.client.copy({"Bucket": self.name, "Key": src}, self.name, dst,
                             ExtraArgs=self._write_args(dst, None), Config=self._transfer_config())
        except ClientError as exc:
            if _missing(exc):
                raise NoSuchKey(src) from exc
            raise
        info = self.head(dst)
        if info is None:  # pragma: no cover - S3 is read-after-write consistent
            raise NoSuchKey(dst)
        return info

    def presigned_url(self, key: str, expires_in: int | None = None) -> str:
        """A SigV4 presigned GET: what an MMS carries, so the picture never needs a public bucket."""
        ttl = int(expires_in or self.default_ttl)
        if not 0 < ttl <= MAX_PRESIGN_S:
            raise ValueError(f"presigned URLs live between 1 s and 7 days, not {ttl} s")
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.name, "Key": key}, ExpiresIn=ttl))
