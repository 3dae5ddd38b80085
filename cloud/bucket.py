"""The bucket: where segments arrive and snapshots are kept. S3 in production, a folder on one machine.

Both implementations share one small interface so that handlers never know which they talk to.
Keys are S3-style ("cameras/lobby/2026-11-27T10:00:00Z.mkv"); the folder maps them to paths and refuses
any key that would escape it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

if TYPE_CHECKING:
    from cloud.config import Config


class NoSuchKey(KeyError):
    """The object does not exist (S3's NoSuchKey)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # hex MD5 without quotes, as S3 reports for single-part uploads
    content_type: str
    last_modified: datetime


class Bucket(Protocol):
    name: str

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo: ...

    def get(self, key: str) -> bytes: ...

    def download(self, key: str, path: Path) -> ObjectInfo:
        """Stream an object to a local file (videos can be large; never hold them in memory)."""
        ...

    def upload(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None: ...

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy an object inside the bucket (S3: server-side, one request, no bytes through the caller)."""
        ...

    def presigned_url(self, key: str, expires_in: int | None = None) -> str:
        """A link anyone holding it may GET until it expires: how pictures leave the system."""
        ...


def guess_type(key: str) -> str:
    if key.endswith(".mkv"):
        return "video/x-matroska"
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def md5_file(path: Path) -> str:
    """The eTag S3 gives a single-part upload: hex MD5, read in chunks (segments can be large)."""
    h = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class FolderBucket:
    """A directory that behaves like an S3 bucket: atomic writes, MD5 eTags, signed expiring links."""

    def __init__(self, root: Path, *, name: str = "local", url_base: str = "", secret_key: str = "",
                 default_ttl: int = 3600) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.url_base = url_base.rstrip("/")
        self.default_ttl = default_ttl
        self._signer = URLSafeTimedSerializer(secret_key or "unset", salt="corb-media")

    # -- keys and paths -------------------------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in key.split("/")):
            raise ValueError(f"invalid object key: {key!r}")
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"invalid object key: {key!r}")
        return path

    def key_for(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key=key, size=st.st_size, etag=md5_file(path), content_type=guess_type(key),
                          last_modified=datetime.fromtimestamp(st.st_mtime, UTC))

    # -- the interface ---------------------------------------------------------------------------------
    def _write_atomically(self, key: str, fill: Callable[[BinaryIO], object]) -> ObjectInfo:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: readers and the watcher never see half an object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fill(fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(key, path)

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        return self._write_atomically(key, lambda fh: fh.write(data))

    def upload(self, path: Path, key: str, content_type: str | None = None) -> ObjectInfo:
        def fill(fh: BinaryIO) -> None:
            with Path(path).open("rb") as src:
                shutil.copyfileobj(src, fh, 1 << 20)

        return self._write_atomically(key, fill)

    def get(self, key: str) -> bytes:
        path = self.path_for(key)
        if not path.is_file():
            raise NoSuchKey(key)
        return path.read_bytes()

    def download(self, key: str, path: Path) -> ObjectInfo:
        src = self.path_for(key)
        if not src.is_file():
            raise NoSuchKey(key)
        shutil.copyfile(src, path)
        return self._info(key, src)

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        return self._info(key, path) if path.is_file() else None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith(".incoming-"):
                key = self.key_for(path)
                if key.startswith(prefix):
                    yield self._info(key, path)

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        source = self.path_for(src)
        if not source.is_file():
            raise NoSuchKey(src)
        return self.upload(source, dst)

    def presigned_url(self, key: str, expires_in: int | None = None) -> str:
        self.path_for(key)  # validates
        token = self._signer.dumps({"k": key, "e": int(time.time()) + (expires_in or self.default_ttl)})
        return f"{self.url_base}/media/{token}"

    def resolve_token(self, token: str) -> str:
        """The key a media token grants, or ``PermissionError`` if forged or expired."""
        try:
            data = self._signer.loads(token)
        except (BadSignature, SignatureExpired) as exc:
            raise PermissionError("invalid media link") from exc
        if int(data["e"]) < time.time():
            raise PermissionError("media link expired")
        return str(data["k"])


def open_bucket(config: "Config") -> Bucket:
    """Kept for older call sites: ``cloud.adapters.open_bucket`` chooses the implementation."""
    from cloud import adapters

    return adapters.open_bucket(config)
