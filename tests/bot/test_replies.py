"""Replies are SMS-sized and GSM-7 plain; the report arithmetic and 'appear' are pure and exact."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot import replies
from bot.handlers.alerts import parse_time, people_appeared
from bot.handlers.cleaning import Segment, area_usage, people_minutes

T = datetime(2026, 11, 27, 10, 0)
FIXED = [replies.HELP, replies.UNKNOWN, replies.REFUSAL, replies.STOPPED, replies.STARTED, replies.NO_CAMERAS,
         replies.NOT_A_CLEANER, replies.NONE_OPEN, replies.done_which([3, 4]),
         replies.done_which(list(range(1, 12)))]
MADE = [replies.subscribed("Front door", "front-door"), replies.subscribed(None, "ALL"),
        replies.unsubscribed("Lobby"), replies.follows_all("Lobby"), replies.no_snapshot("Kitchen"),
        replies.snapshot_caption("Lobby", T, 3, 3600), replies.alert("Front door", T, 1, "front-door"),
        replies.which_area(["kitchen", "lobby", "hall"]), replies.request_confirmation(12, 2),
        replies.request_confirmation(3, 0),
        replies.request_closed(12), replies.request_done(12, "kitchen", "Cleo"), replies.request_unknown(9),
        replies.unknown_camera("garage", ["lobby", "kitchen"]),
        replies.status([replies.CameraStatus("Lobby", 2, T, T, 5)]),
        replies.status([replies.CameraStatus("Lobby", 0, T, T, 5, fresh=False,
                                             silent_for=timedelta(hours=5))])]


@pytest.mark.parametrize("text", FIXED + MADE)
def test_every_reply_fits_one_segment_in_gsm7(text: str) -> None:
    assert len(text) <= replies.SEGMENT, (len(text), text)
    assert set(text) <= replies.GSM7


def test_user_text_is_made_gsm_safe() -> None:
    assert replies.gsm("Café “Zoë” – ok… 🙂") == 'Café "Zoe" - ok... ?'
    report = replies.cleaning_report(4, None, "spilt ☕ near the ➡️ door", "Zoë")
    assert set(report) <= replies.GSM7


def test_long_texts_are_cut_to_the_sms_limit() -> None:
    many = [replies.CameraStatus(f"Camera number {i}", i, T, T, i) for i in range(100)]
    text = replies.status(many)
    assert len(text) <= replies.MAX_SMS and text.endswith(" ...")


def test_people_minutes_is_mean_count_times_duration() -> None:
    segs = [Segment(T, T + timedelta(minutes=10), 2.0, 3), Segment(T, T + timedelta(minutes=5), 4.0, 6),
            Segment(T, T + timedelta(seconds=30), 0.0, 0)]
    assert people_minutes(segs) == pytest.approx(40.0)
    usage = area_usage("kitchen", None, segs)
    assert (usage.people_minutes, usage.peak, usage.segments) == (pytest.approx(40.0), 6, 3)
    assert people_minutes([]) == 0 and area_usage("x", None, []).peak == 0


def test_report_says_since_when() -> None:
    usage = replies.AreaUsage("kitchen", T, 30.4, 4, 2)
    text = replies.cleaning_report(7, usage, "coffee spilled", "Max")
    assert text.splitlines() == ["Cleaning request #7: kitchen.",
                                 "Use since the last cleaning (27 Nov 10:00 UTC): 30 person-minutes, "
                                 "peak 4 people.",
                                 "Note: coffee spilled", "From Max. Text DONE 7 when finished."]


@pytest.mark.parametrize("minutes, peak, words", [
    (1.0, 1, "Use since the first recording: 1 person-minute, peak 1 person."),
    (1.9, 7, "Use since the first recording: 1 person-minute, peak 7 people."),
    (0.2, 1, "Use since the first recording: under 1 person-minute, peak 1 person."),
    (0.0, 0, "Use since the first recording: 0 person-minutes, peak 0 people.")])
def test_report_words_follow_plural_rules(minutes: float, peak: int, words: str) -> None:
    text = replies.cleaning_report(3, replies.AreaUsage("lobby", None, minutes, peak, 1), "", "Max")
    assert text.splitlines()[1] == words


def test_which_area_lists_every_area() -> None:
    assert replies.which_area(["kitchen", "lobby", "hall"]) == (
        "Which area needs cleaning? Text REQUEST CLEANING and the area: kitchen, lobby or hall. "
        "Nothing was sent to the cleaners yet.")
    assert replies.which_area(["kitchen", "lobby"]).count("kitchen or lobby") == 1


@pytest.mark.parametrize("line, words", [
    (replies.CameraStatus("Lobby", 6, T, T, 7), "Lobby: 6 people now (10:00 UTC). Peak today 7."),
    (replies.CameraStatus("Lobby", 1, T, T, 1), "Lobby: 1 person now (10:00 UTC). Peak today 1."),
    (replies.CameraStatus("Lobby", 0, T, T - timedelta(minutes=3), 2),
     "Lobby: nobody now (10:00 UTC). Last seen 09:57 UTC. Peak today 2."),
    (replies.CameraStatus("Lobby", 6, T + timedelta(seconds=59), T, 7, fresh=False,
                          silent_for=timedelta(minutes=14, seconds=50)),
     "Lobby: 6 people at 10:00 UTC, no video since (14 min). Peak today 7."),
    (replies.CameraStatus("Lobby", 6, T, T, 7, fresh=False, silent_for=timedelta(days=1, hours=2)),
     "Lobby: 6 people at 10:00 UTC, no video since (1 day). Peak today 7."),
])
def test_status_says_now_only_for_a_fresh_count(line: replies.CameraStatus, words: str) -> None:
    assert replies.status_line(line) == words


def test_times_and_ages_are_rounded_down() -> None:
    assert replies.alert("Kitchen", datetime(2026, 11, 30, 2, 20, 54), 7, "kitchen") == (
        "Corb alert: 7 people at Kitchen (02:20 UTC). Text UNSUBSCRIBE KITCHEN to stop these alerts.")
    assert [replies.ago(timedelta(seconds=s)) for s in (59.9, 60, 3599, 3600, 3660, 86399, 172800)] == [
        "59 s", "1 min", "59 min", "1 h", "1 h 1 min", "23 h 59 min", "2 days"]
    assert replies.snapshot_caption("Lobby", T + timedelta(seconds=54), 7, 1800) == (
        "Lobby at 10:00 UTC: 7 people in this picture, the busiest moment of the latest video. "
        "Link expires in 30 minutes.")


@pytest.mark.parametrize("peak, previous, appeared", [
    (2, None, True), (2, 0, True), (2, 1, False), (0, None, False), (0, 0, False), (1, 3, False)])
def test_people_appear_when_seen_after_nobody(peak: int, previous: int | None, appeared: bool) -> None:
    assert people_appeared(peak, previous) is appeared


@pytest.mark.parametrize("value", ["2026-11-27T10:00:00Z", "2026-11-27T11:00:00+01:00", 1795773600,
                                   "2026-11-27T10:00:00"])
def test_times_are_read_as_naive_utc(value: object) -> None:
    ts = parse_time(value)
    assert ts == datetime(2026, 11, 27, 10, 0) and ts.tzinfo is None


def test_done_which_names_the_open_requests() -> None:
    assert replies.done_which([]) == "No cleaning request is open."
    assert replies.done_which([3, 4]) == "Which request? Open: #3, #4. Text DONE and its number, e.g. DONE 3."
    assert replies.done_which(list(range(1, 10))).startswith(
        "Which request? Open: #1, #2, #3, #4, #5, #6, #7, #8 and more.")
