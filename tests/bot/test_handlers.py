"""The bot's handlers end to end: a signed SMS in, the real LocalBus and LocalRuntime, texts out."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from bot import replies
from bot.models import AlertSent, CleaningRequest, Detection, Setting, Subscription, User
from cloud.models import DeadLetter
from cloud.results import embed
from detection.handler import output_key
from tests.bot.conftest import ADMIN, CLEANER, MEMBER, analysed, destination, outbox, segment_result, settle


def jpeg(services: Any, key: str) -> str:
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    assert ok
    services.bucket.put(key, data.tobytes(), "image/jpeg")
    return key


def test_status_answers_with_the_count_from_the_latest_detection(sms, services, people, runtime, now) -> None:
    analysed(services, runtime, segment_result("lobby", now - timedelta(minutes=5), counts=[1, 4, 3]))
    sms(MEMBER, "statsu lobby")
    settle(runtime)
    [reply] = outbox(services, MEMBER)
    assert reply.status == "sent"
    assert reply.body.startswith("Lobby: 3 people at ") and "Peak today 4." in reply.body


def test_status_says_now_only_while_the_camera_keeps_sending(sms, services, people, runtime, now) -> None:
    # Lobby sends a 60 s segment every minute, the latest just analysed: "now".
    for i in (3, 2, 1):
        analysed(services, runtime, segment_result("lobby", now - timedelta(minutes=i, seconds=5),
                                                   counts=[1, 5, 6, 6]))
    # Kitchen's last segment ended 14 min ago, a cadence of one minute: stale, the camera is silent.
    old = now - timedelta(minutes=16, seconds=30)
    for start in (old - timedelta(minutes=1), old):
        analysed(services, runtime, segment_result("kitchen", start, counts=[6, 7, 6, 6]))
    sms(MEMBER, "status")
    settle(runtime)
    kitchen, lobby = outbox(services, MEMBER)[-1].body.splitlines()
    # The last of 4 evenly spaced frames of a 60 s segment is 45 s in, rounded down to the minute.
    seen = now - timedelta(minutes=1, seconds=5) + timedelta(seconds=45)
    assert lobby.startswith(f"Lobby: 6 people now ({seen:%H:%M} UTC). Peak today ")
    assert kitchen.startswith(f"Kitchen: 6 people at {old + timedelta(seconds=45):%H:%M} UTC, "
                              "no video since (15 min). Peak today ")


def test_status_counts_still_video_the_agent_uploaded_as_video(sms, services, people, runtime, now) -> None:
    """Still segments go to quiet/ unanalysed: the count holds through them, and the camera is not silent."""
    from bot.handlers.camera_health import agent_status_key

    old = now - timedelta(minutes=16, seconds=30)
    for start in (old - timedelta(minutes=1), old):
        analysed(services, runtime, segment_result("kitchen", start, counts=[6, 7, 6, 6]))
    until = now - timedelta(seconds=20)
    services.bucket.put(agent_status_key("kitchen"), json.dumps({
        "state": "online", "error": None, "since": (now - timedelta(hours=1)).isoformat() + "Z",
        "updated": until.isoformat() + "Z", "video_until": until.isoformat() + "Z"}).encode(),
        "application/json")
    sms(MEMBER, "status kitchen")
    settle(runtime)
    body = outbox(services, MEMBER)[-1].body
    assert body.startswith(f"Kitchen: 6 people now ({until:%H:%M} UTC). Peak today "), body
    assert "no video since" not in body


def test_status_last_seen_is_the_last_frame_with_people(sms, services, people, runtime, now) -> None:
    start = now - timedelta(minutes=1, seconds=10)
    analysed(services, runtime, segment_result("lobby", start, counts=[2, 1, 0, 0]))
    sms(MEMBER, "status lobby")
    settle(runtime)
    body = outbox(services, MEMBER)[-1].body
    assert f"Lobby: nobody now ({start + timedelta(seconds=45):%H:%M} UTC)." in body
    assert f"Last seen {start + timedelta(seconds=15):%H:%M} UTC." in body


def test_the_alert_tells_the_pictures_time_and_count(services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    start = now.replace(second=0) - timedelta(minutes=3)
    best = start + timedelta(seconds=54)  # the picture: 02:20:54; the segment ends 02:21:00
    analysed(services, runtime, segment_result("kitchen", start, counts=[0, 3, 7, 6], seconds=60,
                                               best=(best, 7)))
    [alert] = alerts_to(services, MEMBER)
    assert alert.body == (f"Corb alert: 7 people at Kitchen ({best:%H:%M} UTC). "
                          "Text UNSUBSCRIBE ALL to stop these alerts.")


def test_the_snapshot_text_tells_the_pictures_time_and_count(sms, services, people, runtime, now) -> None:
    from cloud.results import embed
    from detection.handler import output_key

    segment = f"cameras/lobby/{now:%Y-%m-%dT%H-%M-%SZ}.mkv"
    snap = output_key(segment, "abcdef0123456789")
    jpeg(services, snap)
    best = now + timedelta(seconds=30)
    stored = {"best_frame": {"utc": best.isoformat() + "Z", "count": 7}}
    services.bucket.put(snap, embed(services.bucket.get(snap), stored), "image/jpeg")
    analysed(services, runtime, {**segment_result("lobby", now, counts=[7, 6], snapshot_key=snap),
                                 "segment_key": segment})
    sms(MEMBER, "snapshot lobby")
    settle(runtime)
    [mms] = [m for m in outbox(services, MEMBER) if m.media_key]
    assert mms.body == replies.snapshot_caption("Lobby", best, 7, services.config.media_url_ttl)
    assert mms.body.startswith(f"Lobby at {best:%H:%M} UTC: 7 people in this picture")


def test_status_of_every_camera_and_the_camera_list(sms, services, people, runtime) -> None:
    sms(MEMBER, "status")
    sms(MEMBER, "cameras")
    settle(runtime)
    bodies = sorted(m.body for m in outbox(services, MEMBER))
    assert bodies[0].startswith("Cameras: kitchen (Kitchen); lobby (Lobby)")
    assert bodies[1] == "Kitchen: no video analysed yet.\nLobby: no video analysed yet."


def test_status_of_an_unknown_camera_says_so(sms, services, people, runtime) -> None:
    sms(MEMBER, "status garage")
    settle(runtime)
    [reply] = outbox(services, MEMBER)
    assert reply.body == 'No camera called "garage". Cameras: kitchen, lobby'


def test_snapshot_is_an_mms_whose_link_serves_the_jpeg(sms, services, people, runtime, client, now) -> None:
    key = jpeg(services, "snapshots/lobby/1.jpg")
    analysed(services, runtime, segment_result("lobby", now, counts=[0, 2], snapshot_key=key))
    sms(MEMBER, "snapshop lobby")
    settle(runtime)
    [mms] = [m for m in outbox(services, MEMBER) if m.media_key]
    assert mms.media_key == key and mms.body.startswith("Lobby at ")
    assert mms.media_url.startswith(services.config.base_url + "/media/")
    resp = client.get(mms.media_url.removeprefix(services.config.base_url))
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    assert resp.data[:3] == b"\xff\xd8\xff"
    assert resp.headers["Cache-Control"].startswith("private")


def test_snapshot_before_any_video_says_so(sms, services, people, runtime) -> None:
    sms(MEMBER, "snapshot kitchen")
    settle(runtime)
    [reply] = outbox(services, MEMBER)
    assert reply.media_key is None and reply.body == replies.no_snapshot("Kitchen")


def test_media_links_are_refused_when_forged_or_expired(services, people, client) -> None:
    key = jpeg(services, "snapshots/x.jpg")
    good = services.bucket.presigned_url(key).removeprefix(services.config.base_url)
    assert client.get(good).status_code == 200
    assert client.get(good[:-3] + "abc").status_code == 403
    expired = services.bucket.presigned_url(key, expires_in=-5).removeprefix(services.config.base_url)
    assert client.get(expired).status_code == 403
    assert client.get("/media/not-a-token").status_code == 403


def test_request_cleaning_reports_to_cleaners_and_numbers_the_request(sms, services, people, runtime,
                                                                      now) -> None:
    analysed(services, runtime, segment_result("kitchen", now - timedelta(minutes=30), counts=[2, 2],
                                               seconds=600))
    analysed(services, runtime, segment_result("kitchen", now - timedelta(minutes=10), counts=[4, 0],
                                               seconds=300))
    sms(MEMBER, "pls request cleaning in the kitchen - coffee spilled")
    settle(runtime)
    with services.sessions() as s:
        req = s.scalars(select(CleaningRequest)).one()
    assert (req.area, req.note, req.status) == ("kitchen", "coffee spilled", "open")
    [report] = outbox(services, CLEANER)
    assert report.body.startswith(f"Cleaning request #{req.id}: kitchen.")
    # 2 people x 10 min + 2 (mean of 4, 0) x 5 min = 30 person-minutes; peak 4.
    assert "Use since the first recording: 30 person-minutes, peak 4 people." in report.body
    assert "Note: coffee spilled" in report.body and f"DONE {req.id}" in report.body
    [confirmation] = outbox(services, MEMBER)
    assert confirmation.body == replies.request_confirmation(req.id, 1)
    assert outbox(services, ADMIN) == []

    sms(MEMBER, f"done {req.id}")  # not a cleaner
    sms(CLEANER, "done 999")
    sms(CLEANER, f"done {req.id}")
    settle(runtime)
    to_member = [m.body for m in outbox(services, MEMBER)]  # handlers run concurrently: any order
    assert replies.NOT_A_CLEANER in to_member
    assert replies.request_done(req.id, "kitchen", "Cleo Cleaner") in to_member
    bodies = [m.body for m in outbox(services, CLEANER)]
    assert replies.request_unknown(999) in bodies and replies.request_closed(req.id) in bodies
    with services.sessions() as s:
        req = s.get(CleaningRequest, req.id)
        assert req.status == "done" and req.closed_by_id == people[CLEANER]

    # The next request for the kitchen counts only what happened after that cleaning.
    sms(ADMIN, "request cleaning kitchen")
    settle(runtime)
    assert "No camera data for this area." in outbox(services, CLEANER)[-1].body


def test_a_redelivered_command_is_acted_on_once(services, people, runtime) -> None:
    from tests.bot.conftest import sms_event

    event = sms_event("request_cleaning", MEMBER, area="lobby", note="mud")
    for _ in range(2):
        runtime.invoke_async("bot.handlers.cleaning.record_request", event)
    settle(runtime)
    with services.sessions() as s:
        assert s.scalar(select(func.count(CleaningRequest.id))) == 1
    assert len(outbox(services, CLEANER)) == 1 and len(outbox(services, MEMBER)) == 1


def test_subscribe_and_unsubscribe(sms, services, people, runtime) -> None:
    sms(MEMBER, "subscibe lobby")
    sms(ADMIN, "subscribe all")
    settle(runtime)
    sms(ADMIN, "unsubscribe lobby")
    settle(runtime)
    with services.sessions() as s:
        subs = sorted((u, c) for u, c in s.execute(select(Subscription.user_id, Subscription.camera_id)))
    assert len(subs) == 2 and (people[ADMIN], None) in subs
    assert outbox(services, MEMBER)[-1].body == (
        "Subscribed: you will get a picture when people appear on Lobby. Text UNSUBSCRIBE LOBBY to undo.")
    assert outbox(services, ADMIN)[-1].body == replies.follows_all("Lobby")
    sms(MEMBER, "unsubscribe all")
    settle(runtime)
    assert outbox(services, MEMBER)[-1].body == replies.unsubscribed(None)


def subscribe(services: Any, phone: str, camera_id: int | None = None) -> None:
    with services.session() as s:
        s.add(Subscription(user_id=s.scalar(select(User.id).where(User.phone == phone)), camera_id=camera_id))


def alerts_to(services: Any, phone: str) -> list:
    return [m for m in outbox(services, phone) if m.body.startswith("Corb alert")]


def test_the_same_segment_twice_is_one_detection_and_one_alert(services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    key = jpeg(services, "snapshots/lobby/a.jpg")
    result = segment_result("lobby", now, counts=[0, 1, 2], snapshot_key=key)
    analysed(services, runtime, result)
    analysed(services, runtime, result)
    with services.sessions() as s:
        assert s.scalar(select(func.count(Detection.id))) == 1
    [alert] = alerts_to(services, MEMBER)
    assert alert.media_key == key and "2 people at Lobby" in alert.body


def test_people_appear_only_after_an_empty_moment(services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    with services.session() as s:
        s.add(Setting(key="alert_cooldown_s", value="0"))
    t = now - timedelta(minutes=10)
    for i, counts in enumerate([[0, 0], [0, 2], [2, 1], [1, 0], [0, 1], [0, 0]]):
        analysed(services, runtime, segment_result("lobby", t + timedelta(minutes=i), counts=counts))
    # Appear: segment 1 (after empty 0), segment 4 (after 3 ended empty). Not 2 (continues), 3 (ends).
    assert len(alerts_to(services, MEMBER)) == 2
    # After a gap (camera off), someone there counts as appearing even if the last frame had people.
    analysed(services, runtime, segment_result("lobby", t + timedelta(minutes=6), counts=[3, 3]))
    analysed(services, runtime, segment_result("lobby", t + timedelta(minutes=30), counts=[3]))
    assert len(alerts_to(services, MEMBER)) == 4


def _walks(now: Any, services: Any) -> tuple[dict, dict, dict, datetime]:
    """Someone walks past (a 2-s segment), the long segment after it ends empty, someone walks in (2 s)."""
    first, t = now - timedelta(minutes=3), now - timedelta(minutes=3) + timedelta(seconds=2)
    walk_in = t + timedelta(seconds=38)
    snap = output_key(f"cameras/lobby/{walk_in:%Y-%m-%dT%H-%M-%SZ}.mkv", "0123456789ab")
    best = walk_in + timedelta(seconds=1)
    stored = {"best_frame": {"utc": best.isoformat() + "Z", "count": 4}}
    services.bucket.put(snap, embed(services.bucket.get(jpeg(services, snap)), stored), "image/jpeg")
    return (segment_result("lobby", first, counts=[2, 3], seconds=2),
            segment_result("lobby", t, counts=[3, 3, 1, 0, 0], seconds=38),
            segment_result("lobby", walk_in, counts=[4, 4], seconds=2, snapshot_key=snap), best)


def test_an_appearance_that_overtook_the_segment_before_it_is_alerted_when_that_one_arrives(
        services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    with services.session() as s:
        s.add(Setting(key="alert_cooldown_s", value="0"))
    walk_past, empty_end, walk_in, best = _walks(now, services)
    analysed(services, runtime, walk_past)
    assert len(alerts_to(services, MEMBER)) == 1
    analysed(services, runtime, walk_in)  # its result first: judged against the walk past, which had people
    assert len(alerts_to(services, MEMBER)) == 1
    analysed(services, runtime, empty_end)  # the segment before it ended empty: it was an appearance
    alerts = alerts_to(services, MEMBER)
    assert len(alerts) == 2
    assert alerts[1].media_key == walk_in["snapshot_key"]
    assert alerts[1].body == (f"Corb alert: 4 people at Lobby ({best:%H:%M} UTC). "  # the picture's facts
                              "Text UNSUBSCRIBE ALL to stop these alerts.")
    analysed(services, runtime, empty_end)  # the same result again: nothing more
    assert len(alerts_to(services, MEMBER)) == 2


@pytest.mark.parametrize("order", ["in order", "overtaken, continuous"])
def test_an_overtaken_segment_alerts_once_and_only_for_an_appearance(services, people, runtime, now,
                                                                     order: str) -> None:
    subscribe(services, MEMBER)
    with services.session() as s:
        s.add(Setting(key="alert_cooldown_s", value="0"))
    walk_past, empty_end, walk_in, _ = _walks(now, services)
    if order == "in order":
        results = [walk_past, empty_end, walk_in]
        expected = 2
    else:  # the long segment did not end empty: the walk-in continues a presence, late or not
        empty_end = {**empty_end, "counts": [3, 3, 2, 2, 1]}
        results = [walk_past, walk_in, empty_end]
        expected = 1
    for result in results:
        analysed(services, runtime, result)
    assert len(alerts_to(services, MEMBER)) == expected


def test_alert_cooldown_per_user_and_camera(services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    t = now - timedelta(minutes=10)
    for i in range(3):  # appear and leave, three times: within the default 600 s cooldown
        analysed(services, runtime, segment_result("lobby", t + timedelta(minutes=2 * i), counts=[0, 1, 0]))
    analysed(services, runtime, segment_result("kitchen", t, counts=[1]))
    lobby = [m for m in alerts_to(services, MEMBER) if "at Lobby" in m.body]
    assert len(lobby) == 1 and len(alerts_to(services, MEMBER)) == 2  # the kitchen is a separate camera
    with services.session() as s:
        s.add(Setting(key="alert_cooldown_s", value="60"))
        for sent in s.scalars(select(AlertSent)):
            sent.sent_at -= timedelta(seconds=61)
    analysed(services, runtime, segment_result("lobby", t + timedelta(minutes=8), counts=[0, 1, 0]))
    assert len([m for m in alerts_to(services, MEMBER) if "at Lobby" in m.body]) == 2


def test_opted_out_users_are_never_alerted(services, people, runtime, now) -> None:
    subscribe(services, MEMBER)
    subscribe(services, ADMIN)
    with services.session() as s:
        s.execute(User.__table__.update().where(User.phone == MEMBER).values(opted_out=True))
    analysed(services, runtime, segment_result("lobby", now, counts=[2]))
    assert alerts_to(services, MEMBER) == [] and len(alerts_to(services, ADMIN)) == 1


def test_a_failing_handler_is_retried_twice_then_dead_lettered_and_replayable(sms, services, people,
                                                                              runtime, monkeypatch) -> None:
    from bot.cli import main
    from bot.messenger import OutboxMessenger

    attempts: list[int] = []

    def broken(self: Any, message_id: int) -> str:
        attempts.append(message_id)
        raise ConnectionError("carrier unreachable")

    monkeypatch.setattr(OutboxMessenger, "deliver", broken)
    sms(MEMBER, "status lobby")
    settle(runtime)
    assert len(attempts) == 3  # the first try and two retries, all for the one queued reply
    with services.sessions() as s:
        [letter] = s.scalars(select(DeadLetter)).all()
    assert letter.function == "bot.handlers.status.handle" and "carrier unreachable" in letter.error
    assert [m.status for m in outbox(services, MEMBER)] == ["queued"]

    monkeypatch.undo()
    result = CliRunner().invoke(main, ["replay", "--all"], env={"DATABASE_URL": services.config.database_url})
    assert result.exit_code == 0, result.output
    assert f"{letter.id}" in result.output
    settle(runtime)
    [reply] = outbox(services, MEMBER)
    assert reply.status == "sent" and reply.body.startswith("Lobby: ")


def test_retention_purges_old_detections_snapshots_and_media(services, people, runtime, now) -> None:
    from bot.handlers.retention import purge
    from bot.models import Message

    old_key, new_key = jpeg(services, "snapshots/old.jpg"), jpeg(services, "snapshots/new.jpg")
    analysed(services, runtime, segment_result("lobby", now - timedelta(days=40), counts=[1],
                                               snapshot_key=old_key))
    analysed(services, runtime, segment_result("lobby", now, counts=[1], snapshot_key=new_key))
    with services.session() as s:
        s.add(Message(direction="out", sid="SM" + "d" * 32, from_number="corb", to_number=MEMBER, body="x",
                      media_key=old_key, media_url="http://x", status="sent",
                      created_at=now - timedelta(days=40)))
        s.add(Setting(key="retention_days", value="7"))
    result = purge({}, None)
    assert (result["detections"], result["messages_media"], result["retention_days"]) == (1, 1, 7)
    assert services.bucket.head(old_key) is None and services.bucket.head(new_key) is not None
    with services.sessions() as s:
        assert [d.snapshot_key for d in s.scalars(select(Detection))] == [new_key]
    assert purge({}, None)["detections"] == 0


def test_handlers_read_both_event_shapes() -> None:
    from bot.handlers import unwrap
    from tests.bot.conftest import sms_event

    event = sms_event("status", MEMBER)
    assert unwrap(event)["command_type"] == "status"
    result = segment_result("lobby", __import__("datetime").datetime(2026, 1, 1), counts=[1])
    assert unwrap(destination(result)) == json.loads(json.dumps(result))
    assert unwrap({"command_type": "done"}) == {"command_type": "done"}


def test_an_offloaded_large_detail_is_read_back_from_the_bucket(services) -> None:
    """EventBridge caps an entry at 256 KB; the AWS bus parks a larger detail in the bucket."""
    from bot.handlers import unwrap
    from tests.bot.conftest import sms_event

    full = {**sms_event("request cleaning kitchen", MEMBER)["detail"], "note": "x" * 300_000}
    services.bucket.put("events/large/e1.json", json.dumps(full).encode())
    event = sms_event("request cleaning kitchen", MEMBER)
    event["detail"] = {"command_type": full["command_type"],
                       "detail_ref": {"bucket": services.bucket.name, "key": "events/large/e1.json"}}
    assert unwrap(event) == full
