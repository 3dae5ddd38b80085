"""The one place that chooses an implementation for each port: bus, bucket, invoker, detector.

Each interface module (``cloud.bus``, ``cloud.bucket``, ``cloud.dead_letters.Invoker``,
``detection.detectors.base``) defines what its implementations must do and knows none of them; each
implementation imports its interface. Only this module imports both sides, and only inside the function
that builds one, so importing it costs nothing: the webhook's cold start never pays for boto3, LiteRT or
the local runtime, and the embedded path never imports boto3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from cloud.bucket import Bucket
    from cloud.bus import Bus
    from cloud.config import Config
    from cloud.dead_letters import Invoker
    from detection.detectors.base import Detector


def open_bus(config: Config, **kwargs: Any) -> Bus:
    """The bus the configuration names: the local durable bus by default, EventBridge otherwise."""
    if config.bus == "local":
        from cloud.local_bus import LocalBus

        return LocalBus.from_config(config, **kwargs)
    from cloud.aws.eventbridge import EventBridgeBus

    return EventBridgeBus.from_config(config)


def open_bucket(config: Config) -> Bucket:
    """The bucket the configuration names: the folder by default, S3 for any other name."""
    if config.bucket == "folder":
        from cloud.bucket import FolderBucket

        return FolderBucket(config.bucket_dir, name="local", url_base=config.base_url,
                            secret_key=config.secret_key, default_ttl=config.media_url_ttl)
    from cloud.aws.s3 import S3Bucket

    return S3Bucket.from_config(config)


def open_invoker(config: Config, sessions: sessionmaker | None) -> Invoker:
    """Where an asynchronous invocation goes: the local runtime's queue with the local bus (it needs the
    database's ``sessions``), Lambda's async invoke on AWS."""
    if config.bus == "local":
        if sessions is None:
            raise ValueError("the local invoker queues invocations in the database: pass its sessions")
        from cloud.runtime import LocalInvoker

        return LocalInvoker(sessions)
    from cloud.aws.lambda_invoker import LambdaInvoker

    return LambdaInvoker.from_config(config)


def open_detector(model: str | None = None, *, score_threshold: float = 0.35, nms_iou: float = 0.6,
                  threads: int | None = None) -> Detector:
    """Load a person detector.

    ``model``: ``None`` for the shipped default, a shipped or built short name (``"nanodet-m-448x352"``), a
    ``.tflite`` path (LiteRT backend) or a directory holding ``saved_model.pb`` (TensorFlow backend).
    ``threads``: inference threads; ``None`` lets the backend use the machine's cores.
    """
    from detection.detectors.base import LOWER_HEIGHTS, MODELS_DIR, resolve_model

    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be within [0, 1], got {score_threshold}")
    if not 0.0 < nms_iou <= 1.0:
        raise ValueError(f"nms_iou must be within (0, 1], got {nms_iou}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    path = resolve_model(model)
    if path.is_file() and path.suffix.lower() == ".tflite":
        from detection.detectors.nanodet import NanoDetLiteRT

        shipped = path.parent.resolve() == MODELS_DIR.resolve()
        return NanoDetLiteRT(path, score_threshold=score_threshold, nms_iou=nms_iou, threads=threads,
                             lower_heights=LOWER_HEIGHTS.get(path.stem, ()) if shipped else ())
    if path.is_dir() and (path / "saved_model.pb").exists():
        from detection.detectors.tensorflow_od import TensorFlowODDetector

        return TensorFlowODDetector(path, score_threshold=score_threshold, nms_iou=nms_iou, threads=threads)
    raise ValueError(
        f"unsupported model {path}: expected a .tflite file (LiteRT) "
        "or a SavedModel directory containing saved_model.pb (TensorFlow)"
    )
