"""The agent's small parts: redaction, settings and config files, the spool's atomic commit and cap."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from agent.redact import redact_url
from agent.settings import ConfigError, read_config_file, settings_from_env
from agent.spool import Spool
from agent.status import StatusBoard
from agent.writer import iso_time, segment_key
from cloud.lifecycle import quiet_key
from detection.pipeline import start_time_from_name


@pytest.mark.parametrize(("url", "shown"), [
    ("rtsp://admin:s3cr@t@10.0.0.5:554/Streaming/101", "rtsp://admin:***@10.0.0.5:554/Streaming/101"),
    ("rtsps://u:p@cam.local/x", "rtsps://u:***@cam.local/x"),
    ("http://cam/video.cgi?user=admin&password=xx&res=1", "http://cam/video.cgi?user=admin&password=***&res=1"),
    ("https://cam/live.m3u8?token=abc", "https://cam/live.m3u8?token=***"),
    ("rtsp://cam.local/main", "rtsp://cam.local/main"),
    ("rtsp://admin@cam.local/main", "rtsp://admin@cam.local/main"),
    ("postgresql://corb:pw@db/corb", "postgresql://corb:***@db/corb"),
    ("Server returned 401 for 'rtsp://u:bad@127.0.0.1:4/c'", "Server returned 401 for 'rtsp://u:***@127.0.0.1:4/c'"),
    (None, ""),
])
def test_redact_url_hides_passwords_and_tokens(url: str | None, shown: str) -> None:
    assert redact_url(url) == shown


def test_keys_and_tags_name_the_same_millisecond_detection_reads() -> None:
    t = 1796011173.0017
    key = segment_key("lobby", t)
    assert key == "cameras/lobby/2026-11-30T03-59-33.002Z.mkv"
    assert iso_time(t) == "2026-11-30T03:59:33.002Z"
    assert start_time_from_name(key).timestamp() == pytest.approx(1796011173.002)


def test_settings_from_the_environment_and_a_config_file(tmp_path: Path) -> None:
    s = settings_from_env({"CORB_SEGMENT_SECONDS": "30", "CORB_AGENT_SPOOL_MB": "5"}, data_dir=tmp_path)
    assert (s.segment.segment_s, s.segment.quick_s, s.spool_cap_bytes) == (30, 4, 5 * 1024 * 1024)
    assert s.spool == tmp_path / "spool"
    with pytest.raises(ConfigError, match="CORB_SEGMENT_SECONDS"):
        settings_from_env({"CORB_SEGMENT_SECONDS": "soon"})
    toml = tmp_path / "agent.toml"
    toml.write_text('quick_s = 10\n[[cameras]]\nslug = "lobby"\nstream = "rtsp://a:b@h/main"\n'
                    'substream = "rtsp://a:b@h/sub"\n')
    values, cams = read_config_file(toml)
    assert values == {"quick_s": 10} and s.with_values(values).segment.quick_s == 10
    assert [(c.slug, c.stream, c.substream) for c in cams] == [("lobby", "rtsp://a:b@h/main", "rtsp://a:b@h/sub")]


def test_the_person_check_is_on_unless_turned_off(tmp_path: Path) -> None:
    assert settings_from_env({}).person_check
    assert not settings_from_env({"CORB_AGENT_PERSON_CHECK": "0"}).person_check
    assert settings_from_env({"CORB_AGENT_PERSON_CHECK": "on"}).person_check
    with pytest.raises(ConfigError, match="person_check is on or off.*CORB_AGENT_PERSON_CHECK"):
        settings_from_env({"CORB_AGENT_PERSON_CHECK": "sometimes"})
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"person_check": False, "cameras": [{"slug": "a", "stream": "rtsp://h/x"}]}))
    values, _ = read_config_file(path)
    assert not settings_from_env({}).with_values(values).person_check


@pytest.mark.parametrize(("content", "message"), [
    ("{", "cannot read"),
    (json.dumps({"cameras": {}}), "needs a list of cameras"),
    (json.dumps({"cameras": [{"slug": "lobby"}]}), "camera 1 needs a slug and a stream"),
    (json.dumps({"cameras": [{"slug": "Lobby!", "stream": "rtsp://h/x"}]}), "lower case letters"),
    (json.dumps({"cameras": [{"slug": "a", "stream": "ftp://u:pw@h/x"}]}), "'ftp' streams are not supported"),
    (json.dumps({"cameras": [{"slug": "a", "stream": "rtsp://h/x"}] * 2}), "listed twice"),
])
def test_bad_config_files_are_refused_clearly(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "agent.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as err:
        read_config_file(path)
    assert "pw" not in str(err.value)


def _segment(spool: Spool, slug: str, t: float, size: int) -> str:
    key = segment_key(slug, t)
    part = spool.part_path(key)
    part.write_bytes(b"x" * size)
    spool.commit(part, key)
    return key


def test_spool_commits_atomically_and_lists_in_capture_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, cap_bytes=10_000)
    b = _segment(spool, "lobby", 1796011200.0, 10)
    a = _segment(spool, "yard", 1796011100.0, 10)
    half = spool.part_path(segment_key("lobby", 1796011300.0))
    half.write_bytes(b"half")
    assert spool.pending() == [a, b]  # a .part file is never pending
    assert spool.remove_partials() == [half] and not half.exists()
    spool.done(a)
    assert spool.pending() == [b]


def test_spool_over_its_cap_drops_the_oldest_and_says_so(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "corb.agent")
    spool = Spool(tmp_path, cap_bytes=2500)
    keys = [_segment(spool, "lobby", 1796011200.0 + 60 * i, 1000) for i in range(4)]
    assert spool.pending() == keys[2:] and spool.dropped == keys[:2]
    assert f"dropped the oldest segment {keys[0]}" in caplog.text
    big = Spool(tmp_path / "big", cap_bytes=10)
    only = _segment(big, "lobby", 1796011200.0, 1000)
    assert big.pending() == [only]  # the newest segment always stays


def test_status_changes_only_on_state_changes_and_redacts_errors() -> None:
    board = StatusBoard("lobby", 1796011200.0)
    v0 = board.snapshot()[0]
    assert board.set_state("error", "wrong password for rtsp://a:hunter2@h/x", 1796011201.0)
    assert not board.set_state("error", "wrong password for rtsp://a:hunter2@h/x", 1796011205.0)
    status = json.loads(board.snapshot()[1])
    assert board.snapshot()[0] == v0 + 1
    assert status["error"] == "wrong password for rtsp://a:***@h/x"
    assert status["since"] == "2026-11-30T04:00:01.000Z"
    assert board.set_state("online", None, 1796011210.0, width=1280, height=720, fps=15.0)
    status = json.loads(board.snapshot()[1])
    assert set(status) == {"state", "error", "since", "updated", "last_segment_key", "last_segment_at",
                           "width", "height", "fps", "bitrate_bps", "video_until"}
    assert (status["state"], status["error"], status["width"]) == ("online", None, 1280)


def test_a_still_segment_uploaded_says_up_to_when_video_arrived() -> None:
    board = StatusBoard("lobby", 1796011200.0)
    analysed, still = segment_key("lobby", 1796011200.0), quiet_key(segment_key("lobby", 1796011260.0))
    board.segment(analysed, 1796011200.0, 1796011260.0)
    board.segment(still, 1796011260.0, 1796011320.5)
    v = board.snapshot()[0]
    assert json.loads(board.snapshot()[1])["video_until"] is None  # recorded is not uploaded
    assert not board.uploaded(analysed)  # its detection result tells the cloud: no status write owed
    assert board.snapshot()[0] == v
    assert board.uploaded(still)
    version, body = board.snapshot()
    assert version == v + 1 and json.loads(body)["video_until"] == "2026-11-30T04:02:00.500Z"
    assert not board.uploaded(still)  # once


def test_a_long_quiet_segment_being_recorded_is_said_once_a_minute() -> None:
    t0 = 1796011200.0
    woken = []
    board = StatusBoard("lobby", t0, on_change=lambda: woken.append(1))
    board.segment(segment_key("lobby", t0), t0, t0 + 60)  # analysed: its detection says it came
    v = board.snapshot()[0]
    assert not board.recorded(t0 + 100, every=60)  # a quiet segment from t0 + 60: under a minute of it yet
    assert board.recorded(t0 + 120, every=60)
    assert json.loads(board.snapshot()[1])["video_until"] == "2026-11-30T04:02:00.000Z"
    assert not board.recorded(t0 + 170, every=60)
    assert board.recorded(t0 + 182, every=60)
    assert board.snapshot()[0] == v + 2 and len(woken) == 2  # the uploader writes each at once
    quiet = quiet_key(segment_key("lobby", t0 + 60))
    board.segment(quiet, t0 + 60, t0 + 200)
    assert board.uploaded(quiet)  # its end is said at once: the next segment may say nothing for a while
    assert json.loads(board.snapshot()[1])["video_until"] == "2026-11-30T04:03:20.000Z"
    assert board.snapshot()[0] == v + 3
    assert not board.recorded(t0 + 230, every=60)  # the next quiet one: counted from the last one's end
    split = quiet_key(segment_key("lobby", t0 + 200))
    board.segment(split, t0 + 200, t0 + 300, told=True)  # cut where someone appeared: analysed after it
    assert not board.uploaded(split)  # that segment's result says how far the video came
    assert json.loads(board.snapshot()[1])["video_until"] == "2026-11-30T04:05:00.000Z"


def test_spool_keeps_still_segments_under_quiet_in_capture_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, cap_bytes=10_000)
    a = _segment(spool, "lobby", 1796011200.0, 10)
    part = spool.part_path(segment_key("lobby", 1796011260.0))
    part.write_bytes(b"x" * 10)
    b = quiet_key(segment_key("lobby", 1796011260.0))
    spool.commit(part, b)
    c = _segment(spool, "lobby", 1796011320.0, 10)
    assert spool.pending() == [a, b, c]
    with pytest.raises(ValueError):
        spool.path_for("snapshots/lobby/x.jpg")
