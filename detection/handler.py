"""The detection function: an S3 ``ObjectCreated`` notification in, a ``segment_analysed`` payload out.

For each new ``cameras/<camera>/<segment>`` object: read the camera's settings (its counting zone, see
:mod:`cloud.camera_settings`), download the segment to a temp file (streamed: segments can be large),
analyse it, keep its part with people under ``footage/`` when people were seen (kept longer, see
:mod:`cloud.lifecycle`), store the annotated best frame with the result inside, and return the result,
which the Lambda onSuccess destination carries onto the bus. A corrupt, empty or non-video object raises
:class:`detection.video.VideoError`; the runtime retries, then hands it to onFailure (dead letters).

Idempotent per bucket + key + eTag (S3 delivers at least once): one object is written per segment, the
annotated snapshot with the result JSON inside it (:mod:`cloud.results`), in a single PUT, so it is also the
commit marker: its name carries the eTag, and if it exists the stored result is returned without analysing
again. A failure before it leaves nothing behind (an uncommitted footage copy is removed again).

The snapshot is stored for every segment, with or without people, so that ``snapshot <camera>`` always has a
fresh picture; ``snapshot_key`` is therefore never null. A segment with people is moved to ``footage/``
(copied, then the raw one deleted once the snapshot is stored): kept longer, and never stored twice. Of a
segment in which nobody was detected, only its sub-stream is kept, under ``quiet/`` (``CORB_SEGMENT_STREAMS=
sub``, the default: a tenth of the bytes, and raw video is most of the storage bill); ``all`` keeps the whole
segment under ``cameras/``, and so does a segment without a sub-stream.

Heavy imports (PyAV, numpy, Pillow, LiteRT) happen on the first record, not when this module is imported.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from cloud import results
from cloud.bucket import NoSuchKey
from cloud.config import SEGMENT_STREAMS
from cloud.lifecycle import footage_key, quiet_key
from cloud.sandbox import alive

if TYPE_CHECKING:
    from cloud.bucket import Bucket
    from detection.detectors import Detector
    from detection.pipeline import SegmentResult

log = logging.getLogger(__name__)

KIND = "segment_analysed"
CAMERAS_PREFIX = "cameras/"
TMP_PREFIX = "corb-segment-"  # + the pid of the process that downloaded it
MAX_PICTURE_BYTES = 560_000  # the picture's share of an MMS (600 KB): the result inside takes the rest
# One inference thread: a 1,024-MB Lambda has 0.58 of a vCPU, and the local runtime runs a detection worker
# per core; a second thread only contends (one thread: ~4% less CPU per detection, measured).
DETECTOR_THREADS = 1


def function_detector() -> Detector:
    """The detector this function uses, loaded once per process (a warm Lambda keeps it)."""
    from detection.pipeline import default_detector

    return default_detector(threads=DETECTOR_THREADS)


def remove_stale_downloads(tmp_dir: str | None = None) -> int:
    """Delete the segment copies of processes that are gone (a kill -9 skips the cleanup): a warm Lambda's
    /tmp and a long-running ``corb serve`` would otherwise fill up. Live processes' copies stay."""
    removed = 0
    root = Path(tmp_dir or tempfile.gettempdir())
    for path in root.glob(f"{TMP_PREFIX}*"):
        pid = path.name[len(TMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


_bucket: Bucket | None = None
_bucket_lock = threading.Lock()


def _default_bucket() -> Bucket:
    """The configured bucket, opened once per process (a warm Lambda keeps its client)."""
    global _bucket
    with _bucket_lock:
        if _bucket is None:
            from cloud.bucket import open_bucket
            from cloud.config import load_config

            _bucket = open_bucket(load_config())
        return _bucket


def time_budget(context: object) -> float | None:
    """When decoding must stop (``time.monotonic()``) for the invocation to end inside its timeout: what
    Lambda (or the local runtime) says is left, less a reserve for the snapshot decode, the JPEG and the
    uploads (a fifth of it, at least 10 s and at most 60 s). None without a context that knows."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    left_s = remaining() / 1000
    return time.monotonic() + max(left_s - min(max(left_s / 5, 10.0), 60.0), left_s / 2)


def handle(event: Mapping[str, Any], context: object = None) -> dict:
    """Lambda entry point for S3 notifications (``{"Records": [...]}``)."""
    keep = int(os.environ.get("CORB_SEGMENT_DAYS", "1")) > 0
    streams = os.environ.get("CORB_SEGMENT_STREAMS", "sub")
    return handle_records(event.get("Records") or [], _default_bucket(), keep_segments=keep,
                          segment_streams=streams, deadline=time_budget(context))


def handle_records(records: Iterable[Mapping[str, Any]], bucket: Bucket, *,
                   detector: Detector | None = None, keep_segments: bool = True,
                   segment_streams: str = "sub", deadline: float | None = None) -> dict:
    """Process S3 records against ``bucket``: the seam tests use (a FolderBucket, a counting detector).

    One analysed record returns its payload; none returns a ``segment_skipped`` payload with the reasons;
    several (S3 sends one per event, but the shape allows more) return ``segments_analysed`` with a list.
    """
    if segment_streams not in SEGMENT_STREAMS:
        raise ValueError(f"CORB_SEGMENT_STREAMS is {segment_streams!r}: it must be one of {SEGMENT_STREAMS}")
    results: list[dict] = []
    skipped: list[dict] = []
    for record in records:
        key, reason = _accept(record, bucket)
        if reason is not None:
            log.info("skipping %s: %s", key or "record", reason)
            skipped.append({"segment_key": key, "reason": reason})
            continue
        obj = record["s3"]["object"]
        payload = process(bucket, key, etag=str(obj.get("eTag") or "").strip('"'), detector=detector,
                          keep_segment=keep_segments, segment_streams=segment_streams, deadline=deadline)
        if payload.get("kind") == KIND:
            results.append(payload)
        else:
            skipped.append(payload)
    if len(results) == 1:
        return results[0]
    if not results:
        return {"kind": "segment_skipped", "bucket": bucket.name, "skipped": skipped}
    return {"kind": "segments_analysed", "bucket": bucket.name, "results": results, "skipped": skipped}


def _accept(record: Mapping[str, Any], bucket: Bucket) -> tuple[str | None, str | None]:
    """The record's decoded key, and why it is skipped (None to process it)."""
    try:
        event_name = str(record["eventName"])
        s3 = record["s3"]
        bucket_name = s3["bucket"]["name"]
        key = unquote_plus(s3["object"]["key"])  # S3 URL-encodes keys, spaces as '+'
    except (KeyError, TypeError) as exc:
        return None, f"not an S3 notification record (missing {exc})"
    if not event_name.startswith("ObjectCreated"):
        return key, f"event {event_name} is not ObjectCreated"
    if bucket_name != bucket.name:
        return key, f"event for bucket {bucket_name!r}, this function serves {bucket.name!r}"
    if segment_names(key) is None:
        return key, f"not under {CAMERAS_PREFIX}<camera>/"
    return key, None


def segment_names(key: str) -> tuple[str, str] | None:
    """(camera, segment stem) of ``cameras/<camera>/<path>.<ext>``; the stem keeps sub-folders
    (``2026/11/27/10-00-00Z``) so that two days' ``10-00-00Z`` never share a result."""
    if not key.startswith(CAMERAS_PREFIX):
        return None
    parts = key[len(CAMERAS_PREFIX):].split("/")
    if len(parts) < 2 or not parts[0] or not parts[-1] or any(p in ("", ".", "..") for p in parts):
        return None
    rest = PurePosixPath(*parts[1:])
    return parts[0], str(rest.with_suffix("")) if rest.suffix else str(rest)


def output_key(key: str, etag: str) -> str:
    """The one object a segment version gets: ``snapshots/<camera>/<stem>-<etag12>.jpg``, the annotated
    picture with the result inside (:mod:`cloud.results`)."""
    names = segment_names(key)
    if names is None:
        raise ValueError(f"not a segment key: {key!r}")
    camera, stem = names
    return f"snapshots/{camera}/{stem}-{etag[:12]}.jpg"


def stored_result(bucket: Bucket, snapshot_key: str) -> dict | None:
    """The result stored with a snapshot, or None if the segment version was not analysed yet. Reads a
    result JSON beside it too, as versions before one-object-per-segment wrote (``results/``)."""
    try:
        found = results.extract(bucket.get(snapshot_key))
    except NoSuchKey:
        return None
    if found is not None:
        return found
    legacy = "results/" + snapshot_key.removeprefix("snapshots/").removesuffix(".jpg") + ".json"
    try:
        return json.loads(bucket.get(legacy))
    except (NoSuchKey, ValueError):
        return None


def process(bucket: Bucket, key: str, *, etag: str = "", detector: Detector | None = None,
            keep_segment: bool = True, segment_streams: str = "sub", deadline: float | None = None) -> dict:
    """Analyse one segment version (or return its stored result) and store its one object.
    ``keep_segment=False`` (``CORB_SEGMENT_DAYS=0``) deletes the raw segment once its result is stored;
    a segment with people is moved to ``footage/`` either way, and one without is reduced to its
    sub-stream under ``quiet/`` when ``segment_streams`` is ``sub`` and it has one."""
    if not etag:  # a hand-made event: the object's current version is the one meant
        info = bucket.head(key)
        if info is None:
            return {"kind": "segment_skipped", "segment_key": key, "reason": "object no longer exists"}
        etag = info.etag
    snapshot_key = output_key(key, etag)
    stored = stored_result(bucket, snapshot_key)
    if stored is not None:
        log.info("s3://%s/%s (eTag %s) already analysed: returning %s", bucket.name, key, etag, snapshot_key)
        return {**stored, "bucket": bucket.name, "duplicate": True}

    from cloud.camera_settings import load_settings
    from detection.pipeline import DEFAULT_LIMITS, analyse, start_time_from_name

    camera = segment_names(key)[0]  # type: ignore[index]  # _accept checked the key
    settings = load_settings(bucket, camera)
    remove_stale_downloads()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        path = Path(tmp) / ("segment" + PurePosixPath(key).suffix.lower())
        try:
            info = bucket.download(key, path)
        except NoSuchKey:
            log.warning("s3://%s/%s vanished before it could be analysed", bucket.name, key)
            return {"kind": "segment_skipped", "segment_key": key, "reason": "object no longer exists"}
        if info.etag and info.etag.strip('"') != etag:
            # Overwritten since the notification: that newer version has its own event and its own result.
            log.warning("s3://%s/%s changed since the event (eTag %s, now %s)", bucket.name, key, etag,
                        info.etag)
            return {"kind": "segment_skipped", "segment_key": key,
                    "reason": f"object changed since the event (eTag {etag} is now {info.etag})"}
        result = analyse(path, camera=camera, detector=detector or function_detector(),
                         name=f"s3://{bucket.name}/{key}",
                         start_time=start_time_from_name(key), end_time=info.last_modified,
                         zone=settings.zone, limits=replace(DEFAULT_LIMITS, deadline=deadline),
                         max_snapshot_bytes=MAX_PICTURE_BYTES)
        payload = build_payload(result, bucket=bucket.name, key=key, etag=etag, snapshot_key=snapshot_key,
                                size=info.size)
        if result.peak > 0:  # kept for CORB_FOOTAGE_DAYS; cameras/ keeps the rest CORB_SEGMENT_DAYS
            # Before the commit: a retry writes it again. Only the part with people, when that is less.
            payload["footage_key"] = footage_key(key)
            payload["footage_bytes"] = keep_footage(bucket, key, path, result, payload["footage_key"])
        elif keep_segment and segment_streams == "sub":
            kept = keep_quiet(bucket, key, path)
            if kept is not None:
                payload["quiet_key"], payload["quiet_bytes"] = kept
    copy = payload.get("footage_key") or payload.get("quiet_key")
    stored = {k: v for k, v in payload.items() if k != "bucket"}  # the bucket is the reader's own
    try:
        bucket.put(snapshot_key, results.embed(result.snapshot_jpeg, stored), "image/jpeg")  # the commit
    except BaseException:
        if copy:
            bucket.delete(copy)  # not committed: leave nothing half-done behind
        raise
    if not keep_segment or copy:
        bucket.delete(key)  # after the commit: a retry finds the result and never needs it again
    log.info("s3://%s/%s: peak %d, mean %.2f, %d unique -> %s", bucket.name, key, result.peak, result.mean,
             result.unique_people, snapshot_key)
    return {**payload, "duplicate": False}


def keep_footage(bucket: Bucket, key: str, path: Path, result: SegmentResult, footage: str) -> int:
    """Store the segment's part with people under ``footage`` (see :mod:`detection.footage`); the whole
    segment by server-side copy when cutting would not save much. Returns the bytes kept."""
    from detection.footage import trim

    span = people_span(result)
    part = path.with_name("footage.mkv")
    if span is not None:
        try:
            cut = trim(path, part, *span, duration_s=result.duration_s)
        except (OSError, ValueError) as exc:  # av.error.FFmpegError is both: keep the whole instead
            log.warning("could not cut the footage of %s (%s): keeping the whole segment", key, exc)
            cut = False
        if cut:
            return bucket.upload(part, footage).size
    return bucket.copy(key, footage).size


def keep_quiet(bucket: Bucket, key: str, path: Path) -> tuple[str, int] | None:
    """Store the sub-stream alone of a segment in which nobody was detected under ``quiet/``: (its key,
    its bytes), or None when the segment has no sub-stream (it stays whole under ``cameras/``)."""
    from detection.footage import sub_only

    part = path.with_name("quiet.mkv")
    try:
        if not sub_only(path, part):
            return None
    except (OSError, ValueError) as exc:  # av.error.FFmpegError is both: keep the whole instead
        log.warning("could not take the sub-stream of %s (%s): keeping the whole segment", key, exc)
        return None
    target = quiet_key(key)
    return target, bucket.upload(part, target).size


def people_span(result: SegmentResult) -> tuple[float, float] | None:
    """Container seconds from the first person's first sighting to the last one's last."""
    if not result.tracks:
        return None
    return min(t.first_time_s for t in result.tracks), max(t.last_time_s for t in result.tracks)


def build_payload(result: SegmentResult, *, bucket: str, key: str, etag: str, snapshot_key: str,
                  size: int = 0) -> dict:
    """The bus payload: small (no boxes, no tracks), JSON-ready, everything a bot needs to tell people
    and the stream's format for the Cameras page (the bitrate: the file's ``size`` over its span)."""
    s = result.summary(tracks=False)
    bitrate = round(size * 8 / result.duration_s) if size and result.duration_s > 0 else None
    return {
        "kind": KIND,
        "camera": result.camera,
        "bucket": bucket,
        "segment_key": key,
        "etag": etag,
        "start_time": s["start_time"],
        "end_time": s["end_time"],
        "duration_s": s["duration_s"],
        "frames_decoded": result.frames_decoded,
        "frames_analysed": result.frames_analysed,
        "frames_detected": result.frames_detected,
        "analysis_fps": result.analysis_fps,
        "counts": result.counts,
        "peak": result.peak,
        "mean": s["mean"],
        "unique_people": result.unique_people,
        "best_frame": s["best_frame"],
        "snapshot_key": snapshot_key,
        "model": result.model,
        "timings_ms": s["timings_ms"],
        "capped": result.capped,
        "zone": s["zone"],
        "width": result.width,
        "height": result.height,
        "fps": s["container_fps"],
        "bitrate_bps": bitrate,
        "video": s.get("video"),
    }
