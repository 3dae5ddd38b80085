"""The agent against a real RTSP camera (GStreamer's server on 127.0.0.1) and a real folder bucket:
segments with the agreed keys, tracks, tags and capture times; reconnection; a bucket that fails and
returns; bad credentials and unreachable hosts next to a working camera."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from agent.runner import Agent
from agent.segmenter import SegmentSettings
from agent.settings import AgentSettings, CameraSource
from agent.writer import iso_time
from cloud.bucket import FolderBucket
from detection.pipeline import start_time_from_name
from tests.agent.live import (
    RtspCamera,
    describe,
    make_feed,
    segment_keys,
    status,
    wait_for_state,
    wait_until,
)

KEY = r"cameras/{slug}/\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{{3}}Z\.mkv"


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_feed(tmp_path_factory.mktemp("feed") / "feed.mkv")


@pytest.fixture
def camera(feed: Path) -> Iterator[RtspCamera]:
    cam = RtspCamera(feed, user="admin", password="s3cret")
    yield cam
    cam.stop(kill=True)


def settings(tmp_path: Path, segment_s: float = 2.0, recheck_s: float = 0.0, quiet_segment_s: float = 0.0,
             **kw: float) -> AgentSettings:
    """Every segment analysed (``recheck_s=0``) unless asked, and quiet ones no longer than the others:
    these tests follow segments under cameras/."""
    return AgentSettings(segment=SegmentSettings(segment_s=segment_s, quick_s=0, recheck_s=recheck_s,
                                                 quiet_segment_s=quiet_segment_s),
                         spool=tmp_path / "spool", backoff_s=(0.2, 1.0), stall_s=3.0, open_timeout_s=3.0,
                         **kw)


@pytest.fixture
def bucket(tmp_path: Path) -> FolderBucket:
    return FolderBucket(tmp_path / "bucket")


def run_agent(sources: list[CameraSource], s: AgentSettings, bucket: FolderBucket) -> Agent:
    return Agent(sources, s, bucket).start()


def test_segments_arrive_with_the_agreed_keys_tracks_tags_and_capture_times(
        camera: RtspCamera, bucket: FolderBucket, tmp_path: Path) -> None:
    source = CameraSource("lobby", camera.url(user="admin", password="s3cret"),
                          camera.url(sub=True, user="admin", password="s3cret"))
    agent = run_agent([source], settings(tmp_path), bucket)
    try:
        wait_until(lambda: len(segment_keys(bucket.root, "lobby")) >= 4, 20)
        st = wait_for_state(bucket.root, "lobby", "online", 5)
    finally:
        agent.stop()
    keys = segment_keys(bucket.root, "lobby")
    # The sub-stream connects beside the main one: the first segment may come before it (no track 1).
    first_tracks = describe(bucket.root / keys[0])["tracks"]
    assert [t["title"] for t in first_tracks] in (["main"], ["main", "sub"])
    assert all(re.fullmatch(KEY.format(slug="lobby"), k) for k in keys), keys
    # The feed replays when it ends (the stream ends, the agent reconnects): each segment belongs to the
    # latest play that started before it.
    plays = sorted(t for p, t in camera.playing if p == "/cam")
    previous_end = None
    for key in keys[1:]:
        info = describe(bucket.root / key)
        start = start_time_from_name(key).timestamp()
        assert info["tags"]["CORB_CAMERA"] == "lobby"
        assert info["tags"]["CORB_START"] == iso_time(start)
        main, *subs = info["tracks"]
        assert (main["title"], main["codec"], main["width"]) == ("main", "h264", 640)
        first_main = start + main["times"][0]
        if not subs:
            # Only the first segment after a reconnection (both streams replay) may come before the
            # sub-stream is back, and it ends at the first keyframe where the sub's GOP is there.
            assert any(first_main - 1.5 <= t <= first_main + 0.5 for t in plays), (key, plays)
            assert main["times"][-1] - main["times"][0] < 3.0, key
            previous_end = start + main["times"][-1] + 1 / 15
            continue
        (sub,) = subs
        assert (sub["title"], sub["codec"], sub["width"]) == ("sub", "h264", 320)
        assert main["keys"][0] and sub["keys"][0]  # both tracks start with a keyframe
        assert min(main["times"][0], sub["times"][0]) == 0.0  # PTS 0 is the file's first packet
        assert sub["times"][0] <= main["times"][0]  # the sub GOP is pre-roll: it starts at or before main
        # Capture time of the main track's first frame: a keyframe of the feed, i.e. a whole number of
        # GOPs (1 s) after the server started playing it, to within the RTP/RTCP clock's precision.
        gops = first_main - max([t for t in plays if t <= first_main + 0.5] or plays[:1])
        assert abs(gops - round(gops)) < 0.08, (key, gops)
        if previous_end is not None and not any(previous_end - 0.5 <= t <= first_main + 0.5 for t in plays):
            assert first_main >= previous_end - 0.01  # main tracks neither overlap nor repeat frames
        previous_end = start + main["times"][-1] + 1 / 15
    assert not list((tmp_path / "spool").rglob("*.mkv*"))  # all uploaded, nothing half written left
    assert st["error"] is None
    assert (st["width"], st["height"]) == (640, 360) and 13 <= st["fps"] <= 17 and st["bitrate_bps"] > 100_000
    assert st["last_segment_key"] in keys
    assert status(bucket.root, "lobby")["state"] == "error"  # stopped: no longer online


def test_a_quiet_stretch_is_one_object_and_only_its_end_before_people_is_analysed(
        bucket: FolderBucket, tmp_path: Path) -> None:
    cam = RtspCamera(make_feed(tmp_path / "feed.mkv", "empty:12 people:8"))
    source = CameraSource("lobby", cam.url(), cam.url(sub=True))
    agent = run_agent([source], settings(tmp_path, recheck_s=300.0, quiet_segment_s=60.0), bucket)
    quiet = bucket.root / "quiet" / "lobby"
    try:
        assert wait_until(lambda: quiet.is_dir() and list(quiet.glob("*.mkv")), 30)
        assert wait_until(lambda: len(segment_keys(bucket.root, "lobby")) >= 4, 20)
    finally:
        agent.stop()
        cam.stop(kill=True)
    (head,) = sorted(quiet.glob("*.mkv"))  # the empty stretch after the first segment: one object
    sub = describe(head)["tracks"]
    assert [t["title"] for t in sub] == ["sub"] and sub[0]["times"][-1] - sub[0]["times"][0] >= 6.0
    end = start_time_from_name(head.name) + timedelta(seconds=sub[0]["times"][-1])
    # Cut from it: its last GOP or two before the people (the agent's person check saw them at the next
    # keyframe asked), analysed on their own. It starts inside the stretch the quiet object holds, which
    # no segment cut the usual way does (each starts where the one before ended).
    # (The segment after it may start inside too, by its sub-stream's pre-roll: the first one is the cut.)
    tail = min(k for k in segment_keys(bucket.root, "lobby")
               if start_time_from_name(k.rsplit("/", 1)[1]) > start_time_from_name(head.name))
    assert start_time_from_name(tail.rsplit("/", 1)[1]) < end
    gop = describe(bucket.root / tail)
    main = [t for t in gop["tracks"] if t["title"] == "main"][0]
    assert len(main["times"]) <= 31 and main["keys"][:1] == [True], tail  # 2 s at most, from a keyframe
    name = tail.rsplit("/", 1)[1]
    assert gop["tags"]["CORB_START"] == iso_time(start_time_from_name(name).timestamp())


def test_a_still_scene_goes_to_quiet_as_its_sub_stream_and_the_status_says_up_to_when(
        bucket: FolderBucket, tmp_path: Path) -> None:
    cam = RtspCamera(make_feed(tmp_path / "empty.mkv", "empty:30"))
    source = CameraSource("lobby", cam.url(), cam.url(sub=True))
    agent = run_agent([source], settings(tmp_path, recheck_s=300.0), bucket)
    quiet = bucket.root / "quiet" / "lobby"
    try:
        assert wait_until(lambda: quiet.is_dir() and len(list(quiet.glob("*.mkv"))) >= 3, 30)
        assert wait_until(lambda: (status(bucket.root, "lobby") or {}).get("video_until"), 10)
    finally:
        agent.stop()
        cam.stop(kill=True)
    analysed, still = segment_keys(bucket.root, "lobby"), sorted(quiet.glob("*.mkv"))
    # The first segment of a connection is analysed (and the last, cut short by the stop: no keyframe
    # closed it); the static ones in between go unanalysed, as their sub-stream alone.
    assert analysed and still
    assert min(analysed) < f"cameras/lobby/{still[0].name}"
    for path in still:
        info = describe(path)
        assert [(t["title"], t["width"]) for t in info["tracks"]] == [("sub", 320)], path.name
        assert info["tags"]["CORB_CAMERA"] == "lobby"
        assert info["tags"]["CORB_START"] == iso_time(start_time_from_name(path.name).timestamp())
    # The end of the last segment uploaded (2 s long): a still one, or the one the stop cut short, whose
    # upload the status written at the stop includes.
    until = datetime.fromisoformat(status(bucket.root, "lobby")["video_until"].replace("Z", "+00:00"))
    names = [p.name for p in still] + [k.rsplit("/", 1)[1] for k in analysed]
    last = max(start_time_from_name(n) for n in names)
    assert start_time_from_name(still[-1].name) < until <= last + timedelta(seconds=3)
    assert len(names) == len(set(names))  # each segment once, in one place


def test_the_camera_going_away_and_coming_back_is_reconnected(
        feed: Path, bucket: FolderBucket, tmp_path: Path) -> None:
    cam = RtspCamera(feed, sub=False)
    agent = run_agent([CameraSource("lobby", cam.url())], settings(tmp_path), bucket)
    try:
        wait_until(lambda: segment_keys(bucket.root, "lobby"), 15)
        cam.stop(kill=True)  # power cut: no goodbye
        down = wait_for_state(bucket.root, "lobby", "error", 20)
        assert "connection refused" in down["error"]
        before = set(segment_keys(bucket.root, "lobby"))
        cam = RtspCamera(feed, sub=False, port=cam.port)
        wait_until(lambda: set(segment_keys(bucket.root, "lobby")) - before, 20)
        back = wait_for_state(bucket.root, "lobby", "online", 10)
        assert back["error"] is None and back["last_segment_key"] in segment_keys(bucket.root, "lobby")
    finally:
        agent.stop()
        cam.stop(kill=True)


def test_an_unwritable_bucket_delays_segments_then_each_arrives_once_in_order(
        camera: RtspCamera, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "bucket"
    bucket = FolderBucket(root)
    (root / "cameras").write_text("not a folder")  # every upload fails: the disk refuses the path
    caplog.set_level(logging.INFO, "corb.agent")
    uploaded_order: list[str] = []
    agent = Agent([CameraSource("lobby", camera.url(user="admin", password="s3cret"))], settings(tmp_path),
                  bucket)
    agent.uploader.on_uploaded = uploaded_order.append
    agent.start()
    try:
        spool = tmp_path / "spool" / "cameras" / "lobby"
        wait_until(lambda: len(list(spool.glob("*.mkv"))) >= 3, 20)
        assert "unreachable, segments wait in the spool" in caplog.text
        (root / "cameras").unlink()  # the bucket returns
        wait_until(lambda: len(segment_keys(root, "lobby")) >= 5, 20)
    finally:
        agent.stop()
    made = [s.key for s in agent.cameras[0].segments]
    assert uploaded_order == made  # every segment, once, in capture order
    assert segment_keys(root, "lobby") == sorted(made)
    assert "reachable again" in caplog.text


def test_a_segment_begun_before_the_sub_stream_ends_as_soon_as_the_sub_stream_is_there(
        bucket: FolderBucket, tmp_path: Path) -> None:
    still = make_feed(tmp_path / "still.mkv", "empty:30")  # nothing changes: no cut but this one
    with socket.socket() as s:  # the sub-stream's camera is not up yet: its port refuses
        s.bind(("127.0.0.1", 0))
        sub_port = s.getsockname()[1]
    cam = RtspCamera(still, sub=False)
    sub_cam = None
    agent = run_agent([CameraSource("lobby", cam.url(), f"rtsp://127.0.0.1:{sub_port}/cam")],
                      settings(tmp_path, segment_s=60.0), bucket)
    try:
        wait_until(lambda: cam.playing, 15)
        time.sleep(2.0)  # the main stream records alone for a while
        sub_cam = RtspCamera(still.with_suffix(".sub.mkv"), sub=False, port=sub_port)
        wait_until(lambda: segment_keys(bucket.root, "lobby"), 20)
        time.sleep(1.5)
    finally:
        agent.stop()
        cam.stop(kill=True)
        if sub_cam:
            sub_cam.stop(kill=True)
    first, *rest = (describe(bucket.root / k)["tracks"] for k in segment_keys(bucket.root, "lobby"))
    # Without the cut, this would be one 60-s segment without a sub track (a main-stream decode to analyse).
    assert [t["title"] for t in first] == ["main"]
    assert first[0]["times"][-1] - first[0]["times"][0] < 12.0
    assert rest and [t["title"] for t in rest[0]] == ["main", "sub"]


def test_bad_credentials_and_unreachable_hosts_are_clear_and_other_cameras_keep_working(
        camera: RtspCamera, bucket: FolderBucket, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "corb.agent")
    with socket.socket() as s:  # a port nobody listens on: the host refuses
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    sources = [CameraSource("lobby", camera.url(user="admin", password="s3cret")),
               CameraSource("door", camera.url(user="admin", password="WRONGPASS")),
               CameraSource("yard", f"rtsp://admin:YARDPASS@127.0.0.1:{closed_port}/cam")]
    agent = run_agent(sources, settings(tmp_path), bucket)
    try:
        wait_until(lambda: len(segment_keys(bucket.root, "lobby")) >= 2, 20)
        door = wait_until(lambda: status(bucket.root, "door"), 10)
        yard = wait_until(lambda: status(bucket.root, "yard"), 10)
    finally:
        agent.stop()
    assert door["state"] == "error" and "wrong user name or password" in door["error"]
    assert "rtsp://admin:***@127.0.0.1" in door["error"]
    assert yard["state"] == "error" and "connection refused" in yard["error"]
    assert segment_keys(bucket.root, "door") == segment_keys(bucket.root, "yard") == []
    assert "camera door: wrong user name or password" in caplog.text
    assert "camera yard: cannot connect" in caplog.text
    everything = caplog.text + "".join(p.read_text() for p in bucket.root.rglob("*.json"))
    assert "WRONGPASS" not in everything and "YARDPASS" not in everything and "s3cret" not in everything


def test_a_file_source_is_played_at_its_own_rate(feed: Path, bucket: FolderBucket, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"
    shutil.copy(feed, clip)
    agent = run_agent([CameraSource("demo", f"file://{clip}")], settings(tmp_path, segment_s=3), bucket)
    try:
        first = wait_until(lambda: segment_keys(bucket.root, "demo"), 10)
    finally:
        agent.stop()
    # 3-s segments at the file's own 15 fps: the first one took about 3 s of wall clock to record.
    info = describe(bucket.root / first[0])
    assert 40 <= len(info["tracks"][0]["times"]) <= 50


@pytest.mark.parametrize("offset", [600.0, -3600.0])
def test_a_camera_whose_clock_is_off_is_timed_by_this_machine(
        feed: Path, bucket: FolderBucket, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        offset: float) -> None:
    """A camera without a time server: its sender reports say 10 min ahead, or an hour behind. Segment
    names, camera health and `status` go by capture time, so it follows this machine's clock; a warning
    says the camera's clock wants setting."""
    cam = RtspCamera(feed, sub=False, clock_offset=offset)
    caplog.set_level(logging.WARNING, logger="agent.source")
    started = time.time()
    agent = run_agent([CameraSource("lobby", cam.url())], settings(tmp_path), bucket)
    try:
        keys = wait_until(lambda: (k := segment_keys(bucket.root, "lobby"))[1:] and k, 20)
        arrived = time.time()
    finally:
        agent.stop()
        cam.stop(kill=True)
    starts = [start_time_from_name(k).timestamp() for k in keys]
    assert started - 2 < starts[0] < starts[1] < arrived, (started, starts, arrived)
    gap = starts[1] - starts[0]  # whole GOPs of 1 s: the camera's clock still spaces the frames
    assert gap >= 1.5 and abs(gap - round(gap)) < 0.02, gap
    warning = re.search(r"the camera's clock is ([\d.]+) s (ahead of|behind) this machine's", caplog.text)
    assert warning, caplog.text
    assert abs(float(warning[1]) - abs(offset)) < 5 and (warning[2] == "ahead of") == (offset > 0)


def test_an_h265_camera_is_recorded_by_stream_copy_and_analysed(bucket: FolderBucket, tmp_path: Path) -> None:
    """Many cameras send H.265 by default: its segments are copied as they come (both tracks H.265) and the
    detection function analyses them as it does H.264: nobody in the empty scene, people in theirs, the
    footage kept and the sub-stream of the empty scene's segment alone under quiet/."""
    from cloud.events import s3_record
    from detection.handler import handle_records

    feed = make_feed(tmp_path / "feed265" / "feed.mkv", "empty:6 people:6", codec="h265", sub_size="480x270")
    cam = RtspCamera(feed)
    agent = run_agent([CameraSource("lobby", cam.url(), cam.url(sub=True))], settings(tmp_path), bucket)
    try:  # the feed is empty for 6 s, then people for 6: wait for a segment that starts in the people part
        wait_until(lambda: cam.playing and any(
            start_time_from_name(k).timestamp() >= cam.playing[0][1] + 7.0
            for k in segment_keys(bucket.root, "lobby")), 30)
    finally:
        agent.stop()
        cam.stop(kill=True)
    played = cam.playing[0][1]
    seen = {}
    for key in segment_keys(bucket.root, "lobby"):
        tracks = describe(bucket.root / key)["tracks"]
        start = start_time_from_name(key).timestamp() - played
        if len(tracks) != 2 or len(tracks[0]["times"]) < 25 or not (0 <= start < 10):
            continue  # a main-only first segment, the one cut short by the stop, or one from a replay
        assert [t["codec"] for t in tracks] == ["hevc", "hevc"], tracks
        info = bucket.head(key)
        assert info is not None
        record = s3_record(bucket.name, key, size=info.size, etag=info.etag, sequencer="0001")
        payload = handle_records([record], bucket)
        assert payload["kind"] == "segment_analysed", payload
        assert payload["video"]["codec"] == "hevc" and payload["video"]["analysed_track"] == "sub"
        seen[start] = payload
    empty = [p for start, p in seen.items() if start + 2.0 <= 5.9]
    people = [p for start, p in seen.items() if start >= 6.1]
    assert empty and people, sorted(seen)
    assert all(p["peak"] == 0 and "footage_key" not in p for p in empty)
    assert all(p["quiet_key"].startswith("quiet/lobby/") for p in empty)
    quiet = [describe(bucket.root / p["quiet_key"])["tracks"] for p in empty]
    assert all([t["codec"] for t in q] == ["hevc"] for q in quiet), quiet
    assert all(p["peak"] >= 2 and p["footage_key"].startswith("footage/lobby/") for p in people), [
        (p["start_time"], p["peak"], p.get("footage_key")) for p in people]


def test_a_stalled_camera_is_noticed_and_reconnected(feed: Path, bucket: FolderBucket,
                                                     tmp_path: Path) -> None:
    cam = RtspCamera(feed, sub=False)
    agent = run_agent([CameraSource("lobby", cam.url())], settings(tmp_path), bucket)
    try:
        wait_until(lambda: segment_keys(bucket.root, "lobby"), 15)
        os.kill(cam.proc.pid, signal.SIGSTOP)  # the camera hangs: the connection stays open, nothing comes
        try:
            stalled = wait_for_state(bucket.root, "lobby", "error", 15)
        finally:
            os.kill(cam.proc.pid, signal.SIGCONT)
        assert stalled["error"].startswith(f"the stream {cam.url()} stalled: no video for 3 s"), stalled
        before = set(segment_keys(bucket.root, "lobby"))
        wait_for_state(bucket.root, "lobby", "online", 20)
        wait_until(lambda: set(segment_keys(bucket.root, "lobby")) - before, 20)
    finally:
        agent.stop()
        cam.stop(kill=True)


@pytest.fixture
def long_camera(tmp_path: Path) -> Iterator[RtspCamera]:
    """A camera whose feed outlasts the test: GStreamer's RTSP server has been seen to die when several
    clients (re)connect to one shared media at the same instant, which the feed's end makes them do."""
    cam = RtspCamera(make_feed(tmp_path / "long" / "feed.mkv", "empty:40"), user="admin", password="s3cret")
    yield cam
    cam.stop(kill=True)


def test_update_restarts_only_the_cameras_that_changed(long_camera: RtspCamera, bucket: FolderBucket,
                                                       tmp_path: Path) -> None:
    """``corb cameras run --follow`` after an edit on the admin page: the other cameras keep recording."""
    from agent.runner import REMOVED

    camera = long_camera
    url = camera.url(user="admin", password="s3cret")
    steady, edited, removed = (CameraSource("lobby", url), CameraSource("garage", url),
                               CameraSource("yard", url))
    # The three connect one after another (cameras added one at a time), not at the same instant.
    agent = run_agent([steady], settings(tmp_path), bucket)
    try:
        wait_until(lambda: segment_keys(bucket.root, "lobby"), 20)
        assert agent.update([steady, edited]) == (["garage"], [])
        wait_until(lambda: segment_keys(bucket.root, "garage"), 20)
        assert agent.update([steady, edited, removed]) == (["yard"], [])
        wait_until(lambda: all(segment_keys(bucket.root, s.slug) for s in (steady, edited, removed)), 20)
        lobby = next(c for c in agent.cameras if c.slug == "lobby")
        garage = next(c for c in agent.cameras if c.slug == "garage")
        yard_camera = next(c for c in agent.cameras if c.slug == "yard")
        changed = CameraSource("garage", url, camera.url(sub=True, user="admin", password="s3cret"))
        assert agent.update([steady, changed]) == (["garage"], ["yard"])
        removed_at = time.time()  # update() returns once the removed camera's thread has ended
        assert lobby in agent.cameras and lobby.thread.is_alive()  # never stopped
        assert garage not in agent.cameras and not garage.thread.is_alive()
        assert sorted(c.slug for c in agent.cameras) == ["garage", "lobby"]
        # The new setting applies: garage's segments get the sub-stream's track (its first may come before
        # the sub-stream connects, as at any start).
        wait_until(lambda: any(len(describe(bucket.root / k)["tracks"]) == 2
                               for k in segment_keys(bucket.root, "garage")), 20)
        assert wait_for_state(bucket.root, "yard", "stopped", 5)["error"] == REMOVED
    finally:
        agent.stop()
    # Nothing recorded after it was removed: the segments it made are the ones uploaded (the one it was
    # writing closed and uploaded, as at a stop), and they began before it was removed.
    assert yard_camera.segments and not yard_camera.thread.is_alive()
    made = sorted(s.key for s in yard_camera.segments)
    assert segment_keys(bucket.root, "yard") == made
    assert all(start_time_from_name(k).timestamp() < removed_at for k in made), (removed_at, made)
