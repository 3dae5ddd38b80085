"""Every text Corb sends, in one place: short, plain, GSM-7 friendly (no curly quotes, no emoji).

One SMS segment is 160 GSM-7 characters; Twilio accepts at most 1,600. Fixed texts stay within one
segment; texts that list things (status of many cameras, reports) are cut to ``MAX_SMS`` by ``fit``.
Functions here are pure: numbers and names in, a string out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

SEGMENT = 160
MAX_SMS = 1600

# The GSM 03.38 basic character set (plus the extension table's common characters).
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)
_ASCII_FOR = {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "\u00a0": " "}


def gsm(text: str) -> str:
    """Make user-supplied text (names, notes) safe for GSM-7: one non-GSM character would switch the
    whole message to UCS-2 and cut a segment to 70 characters."""
    out = []
    for ch in text:
        ch = _ASCII_FOR.get(ch, ch)
        if all(c in GSM7 for c in ch):
            out.append(ch)
            continue
        folded = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append(folded if folded and all(c in GSM7 for c in folded) else "?" if ch.isprintable() else " ")
    return re.sub(r"[ \t]+", " ", "".join(out))


def fit(text: str, limit: int = MAX_SMS) -> str:
    """Cut a text to ``limit`` characters on a line or word boundary, marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 4]
    for sep in ("\n", " "):
        at = cut.rfind(sep)
        if at > limit // 2:
            cut = cut[:at]
            break
    return cut.rstrip() + " ..."


def _when(ts: datetime | None) -> str:
    return ts.strftime("%H:%M UTC") if ts else "never"


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


# -- fixed answers -----------------------------------------------------------------------------------
# UNSUBSCRIBE alone is the carriers' opt-out keyword (all texts stop); with a camera or ALL it only
# stops alerts. HELP says so, since the two look alike.
HELP = (
    "Corb: STATUS [cam], SNAPSHOT [cam], CAMERAS, SUBSCRIBE/UNSUBSCRIBE cam|ALL, "
    "REQUEST CLEANING [area] [note], DONE n. STOP (or UNSUBSCRIBE alone) ends all texts."
)
UNKNOWN = "Sorry, I did not get that. Text HELP for what I can do."
REFUSAL = "Sorry, this number is not registered with Corb. Please ask the building admin to add you."
STOPPED = "You are unsubscribed from Corb and will get no more messages. Text START to resubscribe."
STARTED = "Welcome back to Corb. You will get messages again. Text HELP for commands."
NO_CAMERAS = "No cameras are set up yet."
NOT_A_CLEANER = "Only cleaners can close cleaning requests."
DONE_WHICH = "Which request? Text DONE and its number, e.g. DONE 12."


def unknown_camera(name: str, known: Sequence[str]) -> str:
    listed = ", ".join(known) if known else "none yet"
    return fit(f"No camera called \"{gsm(name)[:40]}\". Cameras: {gsm(listed)}", SEGMENT * 2)


# -- status and cameras -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraStatus:
    """What one status line says about a camera (all times naive UTC)."""

    name: str
    people_now: int | None  # None: nothing analysed yet
    as_of: datetime | None
    last_seen: datetime | None  # when people were last seen
    peak_today: int


def status_line(s: CameraStatus) -> str:
    if s.people_now is None:
        return f"{gsm(s.name)}: no video analysed yet."
    seen = "" if s.people_now else f" Last seen {_when(s.last_seen)}."
    return f"{gsm(s.name)}: {_people(s.people_now)} at {_when(s.as_of)}. Peak today {s.peak_today}.{seen}"


def status(lines: Sequence[CameraStatus]) -> str:
    if not lines:
        return NO_CAMERAS
    return fit("\n".join(status_line(s) for s in lines))


def cameras(items: Sequence[tuple[str, str, str]]) -> str:
    """``items``: (slug, name, area) for each camera."""
    if not items:
        return NO_CAMERAS
    parts = [f"{slug} ({gsm(name)}{', ' + gsm(area) if area and area.lower() != name.lower() else ''})"
             for slug, name, area in items]
    return fit("Cameras: " + "; ".join(parts) + ". Try STATUS <camera>.")


# -- snapshots and alerts -----------------------------------------------------------------------------
def snapshot_caption(camera: str, taken: datetime, people: int) -> str:
    # The count is the camera's latest; the picture is the segment's busiest moment, which may show more.
    return (f"{gsm(camera)} at {_when(taken)}: {_people(people)} now. The picture shows the busiest moment. "
            "Link expires in 1 hour.")


def no_snapshot(camera: str | None) -> str:
    where = f" for {gsm(camera)}" if camera else ""
    return f"No picture{where} yet: no video has been analysed. Try again in a few minutes."


def alert(camera: str, taken: datetime, people: int) -> str:
    return (f"Corb alert: {_people(people)} at {gsm(camera)} ({_when(taken)}). "
            f"Text UNSUBSCRIBE {camera_word(camera)} to stop these alerts.")


def camera_word(name: str) -> str:
    return gsm(name).split()[0].upper() if name.strip() else "ALL"


# -- subscriptions ------------------------------------------------------------------------------------
def subscribed(camera: str | None) -> str:
    what = f"{gsm(camera)}" if camera else "all cameras"
    return f"Subscribed: you will get a picture when people appear on {what}. UNSUBSCRIBE to undo."


def already_subscribed(camera: str | None) -> str:
    return f"You already follow {gsm(camera) if camera else 'all cameras'}."


def unsubscribed(camera: str | None) -> str:
    return f"Unsubscribed from {gsm(camera) if camera else 'all camera'} alerts."


def not_subscribed(camera: str | None) -> str:
    return f"You were not subscribed to {gsm(camera) if camera else 'any camera'}."


def follows_all(camera: str) -> str:
    return (f"You follow all cameras. To follow only some, text UNSUBSCRIBE ALL, "
            f"then SUBSCRIBE <camera> for each one you want (not {gsm(camera)}).")


# -- cleaning -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AreaUsage:
    """The report's numbers for one area since it was last cleaned."""

    area: str
    since: datetime | None  # the last cleaning; None: no cleaning on record
    people_minutes: float
    peak: int
    segments: int


def cleaning_report(request_id: int, usage: AreaUsage | None, note: str, requester: str) -> str:
    where = gsm(usage.area) if usage else "no area given"
    lines = [f"Cleaning request #{request_id}: {where}."]
    if usage and usage.segments:
        since = f"since {usage.since:%d %b %H:%M} UTC" if usage.since else "since records began"
        lines.append(f"Use {since}: {usage.people_minutes:.0f} people-minutes, peak {_people(usage.peak)}.")
    elif usage:
        lines.append("No camera data for this area.")
    if note:
        lines.append(f"Note: {gsm(note)[:300]}")
    lines.append(f"From {gsm(requester)}. Text DONE {request_id} when finished.")
    return fit("\n".join(lines))


def request_confirmation(request_id: int, cleaners: int) -> str:
    if cleaners == 0:
        return f"Cleaning request #{request_id} recorded, but no cleaner is registered. Please tell an admin."
    who = "1 cleaner" if cleaners == 1 else f"{cleaners} cleaners"
    return f"Cleaning request #{request_id} sent to {who}. You will get a text when it is done."


def request_closed(request_id: int) -> str:
    return f"Closed cleaning request #{request_id}. Thank you!"


def request_done(request_id: int, area: str, cleaner: str) -> str:
    return f"Your cleaning request #{request_id} ({gsm(area) or 'no area'}) was done by {gsm(cleaner)}."


def request_already_closed(request_id: int) -> str:
    return f"Cleaning request #{request_id} is already closed."


def request_unknown(request_id: int) -> str:
    return f"There is no cleaning request #{request_id}. Check the number in the report text."


# -- camera health ------------------------------------------------------------------------------------
def _moment(ts: datetime, now: datetime) -> str:
    """A time of day, with the date when it is not today's (all naive UTC)."""
    return ts.strftime("%H:%M UTC") if ts.date() == now.date() else ts.strftime("%d %b %H:%M UTC")


def camera_offline(camera: str, since: datetime, now: datetime) -> str:
    return f"Corb: {gsm(camera)} camera offline since {_moment(since, now)}."


def camera_online(camera: str, since: datetime, until: datetime, now: datetime) -> str:
    start = since.strftime("%H:%M") if since.date() == until.date() == now.date() else _moment(since, now)
    return f"Corb: {gsm(camera)} camera back online (offline {start}-{_moment(until, now)})."
