"""Functions by dotted name (``package.module.function``, as zappa_settings.json names them) and the
Lambda-like context the local runtime passes them.

Names resolve once and are cached: a warm Lambda imports its module once too.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

from cloud.events import function_arn

__all__ = ["FunctionNotFound", "LambdaContext", "clear_cache", "resolve"]

Handler = Callable[[Any, Any], Any]

_cache: dict[str, Any] = {}
_lock = threading.Lock()


class FunctionNotFound(ImportError):
    """The dotted name does not lead to a callable (Lambda's ``Runtime.ImportModuleError``)."""


def _import(name: str) -> Any:
    module_name, _, attr = name.rpartition(".")
    if not module_name or not attr:
        raise FunctionNotFound(f"{name!r} is not a dotted 'module.function' name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise FunctionNotFound(f"cannot import module {module_name!r} for {name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise FunctionNotFound(f"module {module_name!r} has no attribute {attr!r}") from None


def resolve(name: str, *, callable_only: bool = True) -> Any:
    """The object ``name`` designates, imported on first use (``callable_only`` for handlers)."""
    with _lock:
        obj = _cache.get(name)
    if obj is None:
        obj = _import(name)
        with _lock:
            _cache[name] = obj
    if callable_only and not callable(obj):
        raise FunctionNotFound(f"{name!r} is not callable")
    return obj


def clear_cache() -> None:
    """Forget resolved names (tests that reload modules)."""
    with _lock:
        _cache.clear()


def lambda_name(function: str) -> str:
    """The Lambda function name the embedded mode gives ``function`` (as in its ARN)."""
    return function_arn(function).split(":function:", 1)[1].split(":", 1)[0]


class LambdaContext:
    """What a Python Lambda handler receives as ``context``: the attributes handlers actually read."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, function: str, request_id: str, *, timeout_s: float = 30.0,
                 memory_mb: int = 512) -> None:
        self.function = function
        self.aws_request_id = request_id
        self.function_name = lambda_name(function)
        self.invoked_function_arn = function_arn(function).rsplit(":", 1)[0]  # unqualified, as invoked
        self.memory_limit_in_mb = str(memory_mb)  # Lambda hands it over as a string
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[$LATEST]{request_id.replace('-', '')[:32]}"
        self.timeout_s = timeout_s
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.function!r}, {self.aws_request_id!r})"
