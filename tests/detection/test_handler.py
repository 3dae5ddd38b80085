"""The S3-triggered function against a FolderBucket: payload, stored outputs, idempotency, failures."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud import results
from cloud.bucket import FolderBucket
from cloud.camera_settings import CameraSettings, parse_zone, save_settings
from cloud.events import s3_record
from detection import handler
from detection.handler import handle_records, output_key, segment_names
from detection.video import VideoError

DATA = Path(__file__).resolve().parent.parent / "data"
CLIP = DATA / "vtest-clip.mkv"
KEY = "cameras/front door/2026-11-27T10-00-00Z.mkv"


@pytest.fixture
def bucket(tmp_path: Path) -> FolderBucket:
    return FolderBucket(tmp_path / "bucket")


def upload(bucket: FolderBucket, key: str, data: bytes | Path = CLIP,
           event: str = "ObjectCreated:Put") -> dict:
    info = bucket.upload(data, key) if isinstance(data, Path) else bucket.put(key, data)
    return s3_record(bucket.name, key, size=info.size, etag=info.etag, sequencer="0001", event_name=event)


def keys(bucket: FolderBucket) -> list[str]:
    return sorted(o.key for o in bucket.list())


def test_a_segment_is_analysed_and_its_snapshot_stored_with_the_result_inside(bucket: FolderBucket,
                                                                              counting) -> None:
    record = upload(bucket, KEY)
    assert record["s3"]["object"]["key"] == "cameras/front+door/2026-11-27T10-00-00Z.mkv"  # as S3 sends it
    payload = handle_records([record], bucket, detector=counting)
    etag = record["s3"]["object"]["eTag"]
    snapshot_key = f"snapshots/front door/2026-11-27T10-00-00Z-{etag[:12]}.jpg"
    assert payload["kind"] == "segment_analysed" and payload["duplicate"] is False
    assert payload["camera"] == "front door" and payload["bucket"] == bucket.name
    assert payload["segment_key"] == KEY and payload["etag"] == etag
    assert payload["start_time"] == "2026-11-27T10:00:00.000Z"
    assert payload["end_time"] == "2026-11-27T10:00:07.142Z"
    assert payload["video"]["frames_in_track"] == 50
    assert payload["frames_analysed"] == len(payload["counts"]) == 15
    assert payload["video"]["width"] == 768 and payload["video"]["height"] == 576
    assert payload["video"]["fps"] == pytest.approx(7.0) and payload["video"]["bitrate"] > 100_000
    assert payload["peak"] == max(payload["counts"]) >= 5 and payload["unique_people"] >= 6
    assert payload["snapshot_key"] == snapshot_key and "result_key" not in payload
    assert payload["model"].startswith("nanodet") and payload["timings_ms"]["total"] > 0
    # People were seen: the segment is moved to footage/ (kept longer than cameras/, see cloud.lifecycle),
    # and the only other object is the snapshot, with the result inside (one PUT per segment).
    footage = "footage/front door/2026-11-27T10-00-00Z.mkv"
    assert payload["footage_key"] == footage and bucket.get(footage) == CLIP.read_bytes()
    assert keys(bucket) == sorted([footage, snapshot_key])
    picture = bucket.get(snapshot_key)
    assert picture[:2] == b"\xff\xd8" and len(picture) <= 600_000
    assert cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR).shape[2] == 3
    assert results.extract(picture) == {k: v for k, v in payload.items() if k not in ("duplicate", "bucket")}
    text = json.dumps(payload)
    assert len(text.encode()) < 64_000 and "mot" not in payload


def test_a_second_delivery_returns_the_stored_result_without_analysing(bucket: FolderBucket,
                                                                       counting) -> None:
    record = upload(bucket, KEY)
    first = handle_records([record], bucket, detector=counting)
    calls = counting.calls
    assert calls == first["frames_detected"] > 0
    second = handle_records([record], bucket, detector=counting)
    assert counting.calls == calls  # the detector never ran again
    assert second["duplicate"] is True
    assert {k: v for k, v in second.items() if k != "duplicate"} == {k: v for k, v in first.items()
                                                                      if k != "duplicate"}


def test_a_new_version_of_the_same_key_is_analysed_again(bucket: FolderBucket, counting, clip_frames,
                                                         write_video, tmp_path: Path) -> None:
    handle_records([upload(bucket, KEY)], bucket, detector=counting)
    shorter = write_video(tmp_path / "short.mkv", clip_frames(10))
    again = handle_records([upload(bucket, KEY, shorter)], bucket, detector=counting)
    assert again["duplicate"] is False and again["video"]["frames_in_track"] == 10
    assert len([k for k in keys(bucket) if k.startswith("snapshots/")]) == 2


@pytest.mark.parametrize("key, camera", [
    ("cameras/lobby/a+b c.mkv", "lobby"),  # a literal '+' is sent as %2B, a space as '+'
    ("cameras/back yard/2026/11/27/10-00-00Z.mkv", "back yard"),
])
def test_url_encoded_keys(bucket: FolderBucket, detector, key: str, camera: str) -> None:
    payload = handle_records([upload(bucket, key)], bucket, detector=detector)
    assert payload["segment_key"] == key and payload["camera"] == camera
    assert bucket.head(payload["snapshot_key"]) is not None


def test_nested_segment_paths_keep_their_folders_in_output_keys() -> None:
    assert segment_names("cameras/lobby/2026/11/27/10-00-00Z.mkv") == ("lobby", "2026/11/27/10-00-00Z")
    assert output_key("cameras/lobby/x.mkv", "0123456789abcdef") == "snapshots/lobby/x-0123456789ab.jpg"
    for bad in ("cameras/x.mkv", "cameras//x.mkv", "videos/lobby/x.mkv", "cameras/lobby/"):
        assert segment_names(bad) is None


def test_start_time_falls_back_to_upload_time_minus_duration(bucket: FolderBucket, detector) -> None:
    key = "cameras/lobby/segment-0001.mkv"
    record = upload(bucket, key)
    modified = bucket.head(key).last_modified
    payload = handle_records([record], bucket, detector=detector)
    expected = modified - timedelta(seconds=50 / 7)
    assert payload["start_time"] == expected.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("content", [b"", b"\x00" * 10_000, CLIP.read_bytes()[:3000]],
                         ids=["empty", "zeros", "truncated"])
def test_a_bad_object_raises_and_leaves_no_partial_output(bucket: FolderBucket, counting,
                                                         content: bytes) -> None:
    record = upload(bucket, KEY, content)
    with pytest.raises(VideoError, match="cameras/front door/2026-11-27T10-00-00Z.mkv"):
        handle_records([record], bucket, detector=counting)
    assert keys(bucket) == [KEY] and counting.calls == 0


class FailingResults(FolderBucket):
    """A bucket whose disk fills when the snapshot (the commit) is written."""

    def put(self, key: str, data: bytes, content_type: str | None = None):
        if key.startswith("snapshots/"):
            raise OSError("disk full")
        return super().put(key, data, content_type)


def test_nothing_is_left_when_the_snapshot_cannot_be_written(bucket: FolderBucket, detector) -> None:
    failing = FailingResults(bucket.root)
    record = upload(failing, KEY)
    with pytest.raises(OSError, match="disk full"):
        handle_records([record], failing, detector=detector)
    assert keys(failing) == [KEY]


def test_records_that_are_not_new_segments_are_skipped_with_a_reason(bucket: FolderBucket, counting) -> None:
    removed = upload(bucket, KEY, event="ObjectRemoved:Delete")
    outside = upload(bucket, "uploads/lobby/x.mkv")
    no_camera = upload(bucket, "cameras/x.mkv")
    other_bucket = upload(bucket, KEY)
    other_bucket["s3"]["bucket"]["name"] = "someone-else"
    payload = handle_records([removed, outside, no_camera, other_bucket, {"junk": 1}], bucket,
                             detector=counting)
    assert payload["kind"] == "segment_skipped" and counting.calls == 0
    reasons = [s["reason"] for s in payload["skipped"]]
    assert "not ObjectCreated" in reasons[0] and "cameras/<camera>/" in reasons[1]
    assert "cameras/<camera>/" in reasons[2] and "someone-else" in reasons[3] and "not an S3" in reasons[4]
    assert not [k for k in keys(bucket) if k.startswith(("results/", "snapshots/"))]


def test_an_object_deleted_before_processing_is_skipped(bucket: FolderBucket, counting) -> None:
    record = upload(bucket, KEY)
    bucket.delete(KEY)
    payload = handle_records([record], bucket, detector=counting)
    assert payload["kind"] == "segment_skipped" and "no longer exists" in payload["skipped"][0]["reason"]


def test_handle_uses_the_configured_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, detector) -> None:
    monkeypatch.setenv("CORB_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CORB_BUCKET", "folder")
    monkeypatch.setattr(handler, "_bucket", None)
    monkeypatch.setattr("detection.pipeline.default_detector", lambda *a, **k: detector)
    bucket = FolderBucket(tmp_path / "var" / "bucket")
    payload = handler.handle({"Records": [upload(bucket, KEY)]}, None)
    assert payload["kind"] == "segment_analysed"
    assert results.extract(bucket.get(payload["snapshot_key"]))["segment_key"] == KEY
    monkeypatch.setattr(handler, "_bucket", None)


def test_the_cameras_counting_zone_applies_from_its_next_segment(bucket: FolderBucket, detector) -> None:
    whole = handle_records([upload(bucket, "cameras/plaza/a.mkv")], bucket, detector=detector)
    save_settings(bucket, "plaza", CameraSettings(zone=parse_zone("0,0 0.5,0 0.5,1 0,1")))
    zoned = handle_records([upload(bucket, "cameras/plaza/b.mkv")], bucket, detector=detector)
    other = handle_records([upload(bucket, "cameras/lobby/c.mkv")], bucket, detector=detector)
    assert whole["zone"] is None and other["zone"] is None  # another camera keeps the whole frame
    assert zoned["zone"] == "0,0 0.5,0 0.5,1 0,1"
    assert 0 < zoned["peak"] < whole["peak"] and zoned["unique_people"] < whole["unique_people"]
    assert other["counts"] == whole["counts"]


def test_the_payload_carries_the_main_tracks_format(bucket: FolderBucket, counting) -> None:
    """Width, height, frame rate and the file's bitrate: what the Cameras page shows."""
    payload = handle_records([upload(bucket, KEY)], bucket, detector=counting)
    assert (payload["width"], payload["height"], payload["fps"]) == (768, 576, 7.0)
    assert payload["bitrate_bps"] == pytest.approx(CLIP.stat().st_size * 8 / payload["duration_s"], rel=1e-3)


def test_an_empty_scene_is_not_copied_to_footage(bucket: FolderBucket, detector) -> None:
    payload = handle_records([upload(bucket, KEY, DATA / "empty-scene.mkv")], bucket, detector=detector)
    assert payload["peak"] == 0 and "footage_key" not in payload
    assert not [k for k in keys(bucket) if k.startswith("footage/")]


def test_segment_copies_left_by_killed_processes_are_removed(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f"corb-segment-{dead}-abc"
    mine = tmp_path / f"corb-segment-{os.getpid()}-def"
    other = tmp_path / "corb-segment-notapid"
    for d in (stale, mine, other):
        d.mkdir()
        (d / "segment.mkv").write_bytes(b"x" * 1000)
    assert handler.remove_stale_downloads(str(tmp_path)) == 1
    assert not stale.exists() and mine.exists() and other.exists()


def test_with_segment_days_0_only_the_footage_copy_remains(bucket: FolderBucket, detector) -> None:
    people = handle_records([upload(bucket, KEY)], bucket, detector=detector, keep_segments=False)
    empty_key = "cameras/front door/2026-11-27T10-01-00Z.mkv"
    empty = handle_records([upload(bucket, empty_key, DATA / "empty-scene.mkv")], bucket, detector=detector,
                           keep_segments=False)
    assert bucket.head(KEY) is None and bucket.head(empty_key) is None
    assert bucket.get(people["footage_key"]) == CLIP.read_bytes() and "footage_key" not in empty
    again = handle_records([upload(bucket, KEY)], bucket, detector=detector, keep_segments=False)
    assert again["duplicate"] is True  # S3 redelivering the event finds the result, not a missing object


def test_footage_keeps_only_the_part_with_people(bucket: FolderBucket, detector, tmp_path: Path) -> None:
    """30 s of the empty scene, the 7-s clip of people, 30 s empty again (a keyframe every second): the
    footage is the part with people, cut at keyframes by stream copy, and still a playable video."""
    import subprocess

    import av

    segment = tmp_path / "long.mkv"
    scene = DATA / "empty-scene.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-t", "30", "-i", str(scene),
                    "-i", str(CLIP), "-stream_loop", "-1", "-t", "30", "-i", str(scene), "-filter_complex",
                    "[0:v]scale=768:576,fps=7,setsar=1[a];[1:v]fps=7,setsar=1[b];[2:v]scale=768:576,fps=7,"
                    "setsar=1[c];[a][b][c]concat=n=3:v=1[v]", "-map", "[v]", "-c:v", "libx264", "-g", "7",
                    "-pix_fmt", "yuv420p", str(segment)], check=True)
    key = "cameras/lobby/2026-11-30T10-00-00.000Z.mkv"
    payload = handle_records([upload(bucket, key, segment)], bucket, detector=detector)
    assert payload["peak"] > 0 and bucket.head(key) is None  # moved: the raw segment is gone
    footage = bucket.path_for(payload["footage_key"])
    assert payload["footage_bytes"] == footage.stat().st_size < segment.stat().st_size / 3
    with av.open(str(footage)) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    # The people are in [30, 37) s; the cut keeps them, from a keyframe up to 2 s before, to 2 s after.
    assert 27.5 <= times[0] <= 30.0 and 37.0 <= times[-1] <= 40.0
    assert len(times) == len(set(times)) and times == sorted(times)


@pytest.fixture
def quiet_segment(tmp_path: Path) -> Path:
    """The empty scene as the agent writes it: the main track and a 320-wide sub-stream track, tagged."""
    import subprocess

    scene = DATA / "empty-scene.mkv"
    out = tmp_path / "two-tracks.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(scene), "-i", str(scene), "-filter_complex",
                    "[1:v]scale=320:-2[s]", "-map", "0:v", "-map", "[s]", "-c:v:0", "copy", "-c:v:1",
                    "libx264", "-g", "10", "-metadata", "CORB_CAMERA=front door", "-metadata",
                    "CORB_START=2026-11-27T10:01:00.000Z", "-metadata:s:v:0", "title=main", "-metadata:s:v:1",
                    "title=sub", str(out)], check=True)
    return out


def _tracks(path: Path) -> list[tuple[str, int, list[int]]]:
    import av

    with av.open(str(path)) as c:
        times: dict[int, list[int]] = {s.index: [] for s in c.streams.video}
        for p in c.demux():
            if p.size:
                times[p.stream.index].append(p.pts)
        return [(s.metadata.get("title"), s.codec_context.width, times[s.index]) for s in c.streams.video]


def test_a_segment_without_people_keeps_only_its_sub_stream(bucket: FolderBucket, detector,
                                                            quiet_segment: Path) -> None:
    import av

    key = "cameras/front door/2026-11-27T10-01-00Z.mkv"
    payload = handle_records([upload(bucket, key, quiet_segment)], bucket, detector=detector)
    assert payload["peak"] == 0 and "footage_key" not in payload
    assert payload["quiet_key"] == "quiet/front door/2026-11-27T10-01-00Z.mkv"
    assert bucket.head(key) is None  # moved: never stored twice
    kept = bucket.root / payload["quiet_key"]
    assert payload["quiet_bytes"] == kept.stat().st_size < quiet_segment.stat().st_size / 2
    (sub,) = _tracks(kept)
    assert sub == _tracks(quiet_segment)[1] and sub[:2] == ("sub", 320)  # every sub packet, same times
    with av.open(str(kept)) as c:
        assert c.metadata["CORB_START"] == "2026-11-27T10:01:00.000Z"
        assert c.metadata["CORB_CAMERA"] == "front door"
        assert sum(1 for _ in c.decode(video=0)) == len(sub[2])  # it plays
    stored = handler.stored_result(bucket, payload["snapshot_key"])
    assert stored is not None and stored["quiet_key"] == payload["quiet_key"]
    again = handle_records([upload(bucket, key, quiet_segment)], bucket, detector=detector)
    assert again["duplicate"] is True


def test_segment_streams_all_keeps_the_whole_segment_and_a_segment_without_sub_stream_stays(
        bucket: FolderBucket, detector, quiet_segment: Path) -> None:
    whole = "cameras/front door/2026-11-27T10-01-00Z.mkv"
    payload = handle_records([upload(bucket, whole, quiet_segment)], bucket, detector=detector,
                             segment_streams="all")
    assert "quiet_key" not in payload and bucket.get(whole) == quiet_segment.read_bytes()
    alone = "cameras/front door/2026-11-27T10-02-00Z.mkv"
    payload = handle_records([upload(bucket, alone, DATA / "empty-scene.mkv")], bucket, detector=detector)
    assert "quiet_key" not in payload and bucket.head(alone) is not None
    gone = "cameras/front door/2026-11-27T10-03-00Z.mkv"
    payload = handle_records([upload(bucket, gone, quiet_segment)], bucket, detector=detector,
                             keep_segments=False)
    assert "quiet_key" not in payload and bucket.head(gone) is None
    assert not [k for k in keys(bucket) if k.startswith("quiet/")]
    with pytest.raises(ValueError, match="CORB_SEGMENT_STREAMS"):
        handle_records([upload(bucket, gone, quiet_segment)], bucket, detector=detector,
                       segment_streams="main")


def test_no_sub_stream_copy_is_left_when_the_snapshot_cannot_be_written(bucket: FolderBucket, detector,
                                                                       quiet_segment: Path) -> None:
    failing = FailingResults(bucket.root)
    key = "cameras/front door/2026-11-27T10-01-00Z.mkv"
    with pytest.raises(OSError, match="disk full"):
        handle_records([upload(failing, key, quiet_segment)], failing, detector=detector)
    assert keys(failing) == [key]
