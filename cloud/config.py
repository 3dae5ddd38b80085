"""Configuration from the environment: one place that knows every variable's name and default.

Embedded defaults need no account: SQLite, a folder bucket and the local bus all live under
``CORB_DATA_DIR``. Setting the AWS or Twilio variables switches the matching adapter on.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    public_url: str | None
    port: int
    twilio_auth_token: str
    twilio_account_sid: str | None
    twilio_from: str | None
    bucket: str  # "folder" (embedded, under data_dir/bucket) or an S3 bucket name
    bus: str  # "local" or an EventBridge bus name ("default" for the default bus)
    stage: str  # which stage of zappa_settings.json declares the functions
    secret_key: str
    aws_endpoint_url: str | None = None  # e.g. a moto server in tests
    aws_region: str = "us-east-1"
    media_url_ttl: int = 3600  # seconds a media link stays valid
    alert_cooldown_s: int = 600
    retention_days: int = 30
    camera_grace_s: int = 120  # silence after which a camera is offline and admins are texted
    segment_days: int = 1  # segments where nobody was detected (quiet/, cameras/: S3 lifecycle)
    segment_streams: str = "sub"  # of those: "sub", the sub-stream alone (quiet/); "all", the whole segment
    footage_days: int = 3  # raw segments where people were detected (moved to footage/): a long weekend
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def bucket_dir(self) -> Path:
        return self.data_dir / "bucket"

    @property
    def uses_twilio(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_from)

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")


def _secret(data_dir: Path, name: str, env_value: str | None) -> str:
    """Use the environment's secret, else one generated once into the data directory (never the repo)."""
    if env_value:
        return env_value
    path = data_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    # O_EXCL: two processes starting together agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


SEGMENT_STREAMS = ("sub", "all")  # CORB_SEGMENT_STREAMS: what is kept of a segment in which nobody was seen


class ConfigError(ValueError):
    """A setting with a value Corb cannot use; the message names the variable and what it must be."""


def _one_of(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """The setting's value (the first choice when unset), or a clear error naming the choices."""
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: it must be one of {', '.join(choices)}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: it must be a whole number") from None


def load_config(env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    data_dir = Path(env.get("CORB_DATA_DIR", "./var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _int(env, "CORB_PORT", 8000)
    return Config(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'corb.db'}",
        public_url=env.get("CORB_PUBLIC_URL") or None,
        port=port,
        twilio_auth_token=_secret(data_dir, "twilio_auth_token", env.get("TWILIO_AUTH_TOKEN")),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
        twilio_from=env.get("TWILIO_FROM") or None,
        bucket=env.get("CORB_BUCKET", "folder"),
        bus=env.get("CORB_BUS", "local"),
        stage=env.get("CORB_STAGE", "dev"),
        secret_key=_secret(data_dir, "secret_key", env.get("CORB_SECRET_KEY")),
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        aws_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
        media_url_ttl=_int(env, "CORB_MEDIA_TTL", 3600),
        alert_cooldown_s=_int(env, "CORB_ALERT_COOLDOWN", 600),
        retention_days=_int(env, "CORB_RETENTION_DAYS", 30),
        camera_grace_s=_int(env, "CORB_CAMERA_GRACE", 120),
        segment_days=_int(env, "CORB_SEGMENT_DAYS", 1),
        segment_streams=_one_of(env, "CORB_SEGMENT_STREAMS", SEGMENT_STREAMS),
        footage_days=_int(env, "CORB_FOOTAGE_DAYS", 3),
        extra={k: v for k, v in env.items() if k.startswith("CORB_")},
    )
