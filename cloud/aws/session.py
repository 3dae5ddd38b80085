"""One place that makes boto3 clients from the configuration: endpoint, region, retries, timeouts.

Clients are cached per (service, endpoint, region): making one costs tens of milliseconds and a warm Lambda
should pay that once. boto3 is imported here, lazily, so that importing an adapter module stays cheap.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from cloud.config import Config

# "standard" retries throttling and transient 5xx errors with jittered backoff, per request. Per-entry
# PutEvents failures are not request errors: EventBridgeBus retries those itself.
RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 5}
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60


def _region(config: Config | None, region: str | None) -> str:
    if region:
        return region
    if config is not None:
        return config.aws_region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def client(service: str, config: Config | None = None, *, endpoint_url: str | None = None,
           region: str | None = None) -> BaseClient:
    """A boto3 client for ``service`` that honours ``config.aws_endpoint_url`` (moto in tests) and region."""
    endpoint = endpoint_url or (config.aws_endpoint_url if config is not None else None)
    if endpoint is None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    return _client(service, endpoint, _region(config, region))


@functools.lru_cache(maxsize=32)
def _client(service: str, endpoint_url: str | None, region: str) -> BaseClient:
    import boto3
    from botocore.config import Config as BotoConfig

    options: dict[str, Any] = {
        "region_name": region,
        "retries": dict(RETRIES),
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
    }
    if service == "s3":
        # SigV4 presigned URLs (required outside us-east-1, max 7 days); path style against a local
        # endpoint, whose host is not a wildcard DNS name.
        options["signature_version"] = "s3v4"
        options["s3"] = {"addressing_style": "path" if endpoint_url else "virtual"}
    return boto3.session.Session().client(service, endpoint_url=endpoint_url, config=BotoConfig(**options))


@functools.lru_cache(maxsize=8)
def _account_id(endpoint_url: str | None, region: str) -> str:
    return str(_client("sts", endpoint_url, region).get_caller_identity()["Account"])


def account_id(config: Config | None = None) -> str:
    """The account the credentials belong to (needed to build ARNs for rules, buses and functions)."""
    endpoint = (config.aws_endpoint_url if config is not None else None) or os.environ.get("AWS_ENDPOINT_URL")
    return _account_id(endpoint or None, _region(config, None))


def clear_cache() -> None:
    """Forget cached clients (tests that change credentials or endpoints)."""
    _client.cache_clear()
    _account_id.cache_clear()
