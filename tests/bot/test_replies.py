"""Replies are SMS-sized and GSM-7 plain; the report arithmetic and 'appear' are pure and exact."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot import replies
from bot.handlers.alerts import parse_time, people_appeared
from bot.handlers.cleaning import Segment, area_usage, people_minutes

T = datetime(2026, 11, 27, 10, 0)
FIXED = [replies.HELP, replies.UNKNOWN, replies.REFUSAL, replies.STOPPED, replies.STARTED, replies.NO_CAMERAS,
         replies.NOT_A_CLEANER, replies.DONE_WHICH]
MADE = [replies.subscribed("Front door"), replies.subscribed(None), replies.unsubscribed("Lobby"),
        replies.follows_all("Lobby"), replies.no_snapshot("Kitchen"), replies.snapshot_caption("Lobby", T, 3),
        replies.alert("Front door", T, 1), replies.request_confirmation(12, 2),
        replies.request_confirmation(3, 0),
        replies.request_closed(12), replies.request_done(12, "kitchen", "Cleo"), replies.request_unknown(9),
        replies.unknown_camera("garage", ["lobby", "kitchen"]),
        replies.status([replies.CameraStatus("Lobby", 2, T, T, 5)])]


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
                                 "Use since 27 Nov 10:00 UTC: 30 people-minutes, peak 4 people.",
                                 "Note: coffee spilled", "From Max. Text DONE 7 when finished."]


@pytest.mark.parametrize("peak, previous, appeared", [
    (2, None, True), (2, 0, True), (2, 1, False), (0, None, False), (0, 0, False), (1, 3, False)])
def test_people_appear_when_seen_after_nobody(peak: int, previous: int | None, appeared: bool) -> None:
    assert people_appeared(peak, previous) is appeared


@pytest.mark.parametrize("value", ["2026-11-27T10:00:00Z", "2026-11-27T11:00:00+01:00", 1795773600,
                                   "2026-11-27T10:00:00"])
def test_times_are_read_as_naive_utc(value: object) -> None:
    ts = parse_time(value)
    assert ts == datetime(2026, 11, 27, 10, 0) and ts.tzinfo is None
