"""Camera health: one "offline" text to every admin after the grace period, one "back online" when video
returns; decided from recorded segments and the agent's status object, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from twilio.base.exceptions import TwilioRestException

from bot import replies
from bot.handlers.alerts import record_format
from bot.handlers.camera_health import (
    AgentStatus,
    agent_status_key,
    check,
    parse_agent_status,
    went_offline,
)
from bot.models import Camera, Detection, Role, Setting, User
from cloud.declaration import load_declaration
from tests.bot.conftest import ADMIN, CLEANER, MEMBER, analysed, outbox, segment_result
from tests.bot.test_messenger import fake_twilio, twilio  # noqa: F401 - fixtures

SECOND_ADMIN = "+15550000004"
GRACE = timedelta(minutes=2)
T = datetime(2026, 11, 30, 10, 0)


def segment(services: Any, slug: str, end: datetime, seconds: int = 60) -> None:
    """A recorded segment (what the alerts handler stores for an analysed one) ending at ``end``."""
    with services.session() as s:
        camera = s.scalars(select(Camera).where(Camera.slug == slug)).one()
        start = end - timedelta(seconds=seconds)
        s.add(Detection(camera_id=camera.id, segment_key=f"cameras/{slug}/{start:%Y-%m-%dT%H-%M-%S}Z.mkv",
                        etag=f"{slug}{start.timestamp()}", start_time=start, end_time=end, counts="[0]"))


def stream(services: Any, slug: str, url: str | None = "rtsp://cam.local/main") -> None:
    with services.session() as s:
        s.scalars(select(Camera).where(Camera.slug == slug)).one().stream_url = url


def agent(services: Any, slug: str, state: str, since: datetime, error: str | None = None,
          video_until: datetime | None = None) -> None:
    services.bucket.put(agent_status_key(slug), json.dumps({
        "state": state, "error": error, "since": since.isoformat() + "Z", "updated": since.isoformat() + "Z",
        "last_segment_key": None, "last_segment_at": None, "width": 1280, "height": 720, "fps": 15,
        "bitrate_bps": 2_000_000,
        "video_until": video_until.isoformat() + "Z" if video_until else None}).encode(), "application/json")


def camera(services: Any, slug: str) -> Camera:
    with services.sessions() as s:
        return s.scalars(select(Camera).where(Camera.slug == slug)).one()


def texts(services: Any, to: str) -> list[str]:
    return [m.body for m in outbox(services, to)]


@pytest.fixture
def admins(services: Any, people: dict[str, int]) -> None:
    """Two admins (one of them opted out of all texts) beside the member and the cleaner."""
    with services.session() as s:
        s.add(User(phone=SECOND_ADMIN, name="Otto Optout", role=Role.admin, opted_out=True))


# -- the decision, pure -----------------------------------------------------------------------------

def test_silence_longer_than_the_grace_is_offline_since_the_last_segment_end() -> None:
    last = T - timedelta(minutes=2, seconds=1)
    assert went_offline(T, GRACE, last, None, T - timedelta(days=9)) == last
    assert went_offline(T, GRACE, T - GRACE, None, T - timedelta(days=9)) is None  # exactly the grace


def test_an_agent_that_just_reconnected_gets_the_grace_but_one_in_error_does_not() -> None:
    last, added = T - timedelta(hours=3), T - timedelta(days=9)
    connecting = AgentStatus(state="connecting", since=T - timedelta(seconds=30))
    online = AgentStatus(state="online", since=T - timedelta(seconds=90))
    failing = AgentStatus(state="error", since=T - timedelta(seconds=30), error="401 Unauthorized")
    assert went_offline(T, GRACE, last, connecting, added) is None
    assert went_offline(T, GRACE, last, online, added) is None
    assert went_offline(T, GRACE, last, failing, added) == last  # when the video stopped
    assert went_offline(T + GRACE, GRACE, last, online, added) == last  # online, yet no video: offline


def test_without_any_segment_the_agent_or_the_camera_gives_the_time() -> None:
    failing = AgentStatus(state="error", since=T - timedelta(minutes=5), error="connection refused")
    assert went_offline(T, GRACE, None, failing, T - timedelta(days=1)) == T - timedelta(minutes=5)
    assert went_offline(T, GRACE, None, None, T - timedelta(minutes=3)) == T - timedelta(minutes=3)
    assert went_offline(T, GRACE, None, None, T - timedelta(minutes=1)) is None


def test_the_agent_status_object_is_validated() -> None:
    status = parse_agent_status(json.dumps({"state": "error", "error": "401 Unauthorized for rtsp://cam/",
                                            "since": "2026-11-30T10:02:00Z",
                                            "updated": "2026-11-30T10:02:00Z",
                                            "width": 1280, "height": 720, "fps": 15.0,
                                            "bitrate_bps": 2e6}).encode())
    assert status == AgentStatus(state="error", since=datetime(2026, 11, 30, 10, 2), updated=datetime(
        2026, 11, 30, 10, 2), error="401 Unauthorized for rtsp://cam/", width=1280, height=720, fps=15.0,
        bitrate_bps=2_000_000)
    for raw, problem in [(b"{", "not JSON"), (b"[]", "not a JSON object"),
                         (b'{"state": "sleeping"}', "state must be one of online, connecting, error"),
                         (b'{"state": "online", "since": "yesterday"}', "since is not a time"),
                         (b'{"state": "online", "error": 3}', "error must be a string"),
                         (b'{"state": "online", "fps": "fast"}', "fps must be a number")]:
        with pytest.raises(ValueError, match=problem):
            parse_agent_status(raw)


def test_the_texts_are_short_plain_and_dated_when_not_today() -> None:
    now = T + timedelta(minutes=7)
    assert replies.camera_offline("Lobby", T + timedelta(minutes=2), now) == (
        "Corb: Lobby camera offline since 10:02 UTC.")
    assert replies.camera_online("Lobby", T + timedelta(minutes=2), now, now) == (
        "Corb: Lobby camera back online (offline 10:02-10:07 UTC).")
    yesterday = T - timedelta(days=1)
    assert replies.camera_online("Lobby", yesterday, now, now) == (
        "Corb: Lobby camera back online (offline 29 Nov 10:00 UTC-10:07 UTC).")
    assert replies.camera_offline("Lobby", yesterday, now).endswith("since 29 Nov 10:00 UTC.")


# -- the scheduled function, on both databases ------------------------------------------------------

def test_offline_once_then_back_online_once_to_every_admin(services, people, admins, now) -> None:
    stream(services, "lobby")
    last_end = now - timedelta(minutes=3)
    segment(services, "lobby", last_end)
    segment(services, "kitchen", now - timedelta(hours=2))  # no stream, no agent: not watched

    result = check({}, None)
    assert (result["watched"], result["went_offline"], result["back_online"]) == (1, ["lobby"], [])
    offline = replies.camera_offline("Lobby", last_end, now)
    assert texts(services, ADMIN) == [offline]
    assert texts(services, SECOND_ADMIN) == texts(services, MEMBER) == texts(services, CLEANER) == []
    assert (camera(services, "lobby").offline_since, camera(services, "lobby").offline_alerted) == (
        last_end, True)
    assert check({}, None)["went_offline"] == []  # runs twice: still one text
    assert len(outbox(services)) == 1

    segment(services, "lobby", now, seconds=20)  # video again: the first new segment started 20 s ago
    result = check({}, None)
    assert (result["back_online"], result["went_offline"]) == (["lobby"], [])
    assert texts(services, ADMIN) == [offline, replies.camera_online(
        "Lobby", last_end, now - timedelta(seconds=20), now)]
    back = camera(services, "lobby")
    assert (back.offline_since, back.offline_alerted) == (None, False)
    check({}, None)
    assert len(outbox(services)) == 2
    assert all(m.status == "sent" for m in outbox(services))


def test_still_segments_the_agent_uploaded_count_as_video(services, people, admins, now) -> None:
    """A still segment goes to quiet/ unanalysed: no detection row, the agent's ``video_until`` says it."""
    stream(services, "lobby")
    last_end = now - timedelta(minutes=5)
    segment(services, "lobby", last_end)
    agent(services, "lobby", "online", now - timedelta(hours=1), video_until=now - timedelta(seconds=30))
    assert check({}, None)["offline"] == []
    agent(services, "lobby", "online", now - timedelta(hours=1), video_until=now - timedelta(minutes=3))
    check({}, None)  # the still segments stopped 3 minutes ago: offline since then, not since the last
    stopped = now - timedelta(minutes=3)  # analysed one
    assert texts(services, ADMIN) == [replies.camera_offline("Lobby", stopped, now)]
    agent(services, "lobby", "online", now - timedelta(hours=1), video_until=now - timedelta(seconds=5))
    assert check({}, None)["back_online"] == ["lobby"]  # a still segment is video too


def test_an_agent_failing_to_connect_is_reported_with_its_time(services, people, now) -> None:
    """No stream URL in the database (the AWS agent reads its own config): the status object alone."""
    since = now - timedelta(minutes=4)
    agent(services, "kitchen", "error", since, error="401 Unauthorized (rtsp://admin:***@cam/)")
    check({}, None)
    assert texts(services, ADMIN) == [replies.camera_offline("Kitchen", since, now)]
    assert camera(services, "kitchen").offline_since == since


def test_a_camera_within_the_grace_or_a_longer_setting_is_left_alone(services, people, now) -> None:
    stream(services, "lobby")
    segment(services, "lobby", now - timedelta(seconds=90))
    agent(services, "kitchen", "connecting", now - timedelta(seconds=10))  # just (re)started
    segment(services, "kitchen", now - timedelta(hours=1))
    assert check({}, None)["offline"] == []
    with services.session() as s:
        s.add(Setting(key="camera_grace_s", value="7200"))  # the admin Settings page's value wins
    agent(services, "kitchen", "error", now - timedelta(seconds=10))
    assert check({}, None)["offline"] == []
    assert outbox(services) == []


def test_no_admin_to_tell_means_no_text_now_and_no_back_online_later(services, now) -> None:
    with services.session() as s:
        s.add(Camera(slug="lobby", name="Lobby", stream_url="rtsp://cam/main"))
    segment(services, "lobby", now - timedelta(minutes=10))
    assert check({}, None)["went_offline"] == ["lobby"]
    assert camera(services, "lobby").offline_alerted is False
    segment(services, "lobby", now)
    assert check({}, None)["back_online"] == ["lobby"]
    assert outbox(services) == []


def test_a_camera_no_longer_fed_by_an_agent_is_no_longer_watched(services, people, now) -> None:
    stream(services, "lobby")
    segment(services, "lobby", now - timedelta(minutes=10))
    check({}, None)
    stream(services, "lobby", None)
    assert check({}, None)["watched"] == 0
    assert camera(services, "lobby").offline_since is None
    assert len(outbox(services)) == 1  # the offline text; no "back online" for a camera nobody watches


def test_a_camera_taken_off_recording_is_not_reported_offline(services, people, admins, now) -> None:
    """Its stream removed on the admin page, ``corb serve``'s agent stops it and says so (``stopped``): the
    agent status object stays in the bucket, but nobody is texted that the camera went offline."""
    stream(services, "lobby")
    segment(services, "lobby", now - timedelta(minutes=10))
    stream(services, "lobby", None)
    agent(services, "lobby", "stopped", now - timedelta(minutes=10),
          "recording stopped: the camera no longer has a stream to read")
    assert check({}, None)["watched"] == 0 and outbox(services) == []
    agent(services, "lobby", "error", now - timedelta(minutes=10), "connection refused")
    assert check({}, None)["watched"] == 1  # an agent still trying to record it: watched
    assert len(texts(services, ADMIN)) == 1  # the offline text


def test_concurrent_checks_text_once(services, people, now) -> None:
    stream(services, "lobby")
    segment(services, "lobby", now - timedelta(minutes=10))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            check({}, None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(texts(services, ADMIN)) == 1


def test_a_text_the_carrier_refused_is_sent_by_the_next_run_exactly_once(
        services, people, now, twilio, fake_twilio) -> None:  # noqa: F811 - fixtures
    services._overrides["messenger"] = twilio
    services.__dict__.pop("messenger", None)
    stream(services, "lobby")
    segment(services, "lobby", now - timedelta(minutes=10))
    fake_twilio.fail_with = (503, 20500, "Service unavailable")
    with pytest.raises(TwilioRestException):
        check({}, None)  # the state and the queued text committed; delivery failed: the runtime retries
    assert camera(services, "lobby").offline_alerted is True
    fake_twilio.fail_with = None
    check({}, None)
    check({}, None)
    sent = [r["Body"][0] for r in fake_twilio.requests if r["To"] == [ADMIN]]
    assert sent == [replies.camera_offline("Lobby", now - timedelta(minutes=10), now)] * 2  # failed, then ok
    assert [m.status for m in outbox(services)] == ["queued"]  # handed to Twilio once


def test_the_check_runs_every_minute_in_the_declaration() -> None:
    for stage in ("dev", "prod"):
        schedules = {s.function: s.expression for s in load_declaration(stage).schedules}
        assert schedules["bot.handlers.camera_health.check"] == "rate(1 minute)"


def test_the_video_format_is_recorded_from_the_detection_payload() -> None:
    cam = Camera(slug="lobby", name="Lobby", video_fps=25.0)
    record_format(cam, {"width": 1280, "height": 720, "fps": 15.0, "bitrate_bps": 1_999_872})
    assert (cam.video_width, cam.video_height, cam.video_fps, cam.video_bitrate) == (
        1280, 720, 15.0, 1_999_872)
    record_format(cam, {"width": 0, "fps": None, "bitrate_bps": "n/a"})  # unknown: keep what we knew
    assert (cam.video_width, cam.video_fps, cam.video_bitrate) == (1280, 15.0, 1_999_872)


def test_the_alerts_handler_records_the_latest_segments_format(services, people, runtime, now) -> None:  # noqa: F811
    fmt = {"width": 1280, "height": 720, "fps": 15.0, "bitrate_bps": 2_010_000}
    analysed(services, runtime, {**segment_result("lobby", now - timedelta(minutes=2), counts=[0]), **fmt})
    older = {"width": 640, "height": 360, "fps": 10.0, "bitrate_bps": 400_000}
    analysed(services, runtime, {**segment_result("lobby", now - timedelta(minutes=9), counts=[0]), **older})
    cam = camera(services, "lobby")  # a late, older segment does not overwrite the latest format
    assert (cam.video_width, cam.video_height, cam.video_fps, cam.video_bitrate) == (
        1280, 720, 15.0, 2_010_000)
