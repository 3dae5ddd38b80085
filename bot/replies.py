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
from datetime import datetime, timedelta

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
    "REQUEST CLEANING [area] [note], DONE [n]. STOP or UNSUBSCRIBE alone ends all texts."
)
UNKNOWN = "Sorry, I did not get that. Text HELP for what I can do."
REFUSAL = "Sorry, this number is not registered with Corb. Please ask the building admin to add you."
STOPPED = "You are unsubscribed from Corb and will get no more messages. Text START to resubscribe."
STARTED = "Welcome back to Corb. You will get messages again. Text HELP for commands."
NO_CAMERAS = "No cameras are set up yet."
NOT_A_CLEANER = "Only cleaners can close cleaning requests."
NONE_OPEN = "No cleaning request is open."
MAX_LISTED = 8  # open requests named in one "which request?" answer


def unknown_camera(name: str, known: Sequence[str]) -> str:
    listed = ", ".join(known) if known else "none yet"
    return fit(f"No camera called \"{gsm(name)[:40]}\". Cameras: {gsm(listed)}", SEGMENT * 2)


# -- status and cameras -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraStatus:
    """What one status line says about a camera (all times naive UTC, taken from the video).

    ``fresh``: the count is recent enough, for this camera's segment cadence, to be called "now";
    otherwise the line says when it was seen and that no video came since.
    """

    name: str
    people_now: int | None  # None: nothing analysed yet
    as_of: datetime | None  # when the counted frame was seen
    last_seen: datetime | None  # when people were last seen
    peak_today: int
    fresh: bool = True
    silent_for: timedelta | None = None  # how long no newer video has come (stale counts only)


def ago(delta: timedelta) -> str:
    """A rounded-down age in plain words: "45 s", "14 min", "3 h 5 min", "2 days"."""
    secs = max(0, int(delta.total_seconds()))
    if secs < 60:
        return f"{secs} s"
    if secs < 3600:
        return f"{secs // 60} min"
    if secs < 86400:
        h, m = divmod(secs // 60, 60)
        return f"{h} h {m} min" if m else f"{h} h"
    days = secs // 86400
    return f"{days} day{'' if days == 1 else 's'}"


def status_line(s: CameraStatus) -> str:
    if s.people_now is None:
        return f"{gsm(s.name)}: no video analysed yet."
    count = _people(s.people_now) if s.people_now else "nobody"
    if s.fresh:
        head = f"{gsm(s.name)}: {count} now ({_when(s.as_of)})."
    else:
        silent = f" ({ago(s.silent_for)})" if s.silent_for is not None else ""
        head = f"{gsm(s.name)}: {count} at {_when(s.as_of)}, no video since{silent}."
    seen = f" Last seen {_when(s.last_seen)}." if not s.people_now and s.last_seen else ""
    return f"{head}{seen} Peak today {s.peak_today}."


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
    # A real example, not a placeholder: texted back verbatim, it works.
    return fit("Cameras: " + "; ".join(parts) + f". Try STATUS {items[0][0].upper()}.")


# -- snapshots and alerts -----------------------------------------------------------------------------
def _link_life(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'' if hours == 1 else 's'}"
    minutes = max(1, seconds // 60)
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def snapshot_caption(camera: str, taken: datetime, people: int, link_ttl_s: int) -> str:
    """``taken`` and ``people`` are the picture's own (its frame's time and boxes), so the text and the
    caption burnt into the picture agree."""
    return (f"{gsm(camera)} at {_when(taken)}: {_people(people)} in this picture, the busiest moment of "
            f"the latest video. Link expires in {_link_life(link_ttl_s)}.")


def no_snapshot(camera: str | None) -> str:
    where = f" for {gsm(camera)}" if camera else ""
    return f"No picture{where} yet: no video has been analysed. Try again in a few minutes."


ALERT_PREFIX = "Corb alert:"  # the dashboard lists alerts by it


def alert(camera: str, taken: datetime, people: int, undo: str) -> str:
    """``taken``/``people``: the attached picture's frame; ``undo``: what to text after UNSUBSCRIBE
    to stop exactly these alerts (the camera's slug, or ALL for someone who follows every camera)."""
    return (f"{ALERT_PREFIX} {_people(people)} at {gsm(camera)} ({_when(taken)}). "
            f"Text UNSUBSCRIBE {undo.upper()} to stop these alerts.")


# -- subscriptions ------------------------------------------------------------------------------------
def subscribed(camera: str | None, undo: str) -> str:
    """``undo``: what to text after UNSUBSCRIBE to remove exactly this subscription (a slug or area)."""
    what = f"{gsm(camera)}" if camera else "all cameras"
    return (f"Subscribed: you will get a picture when people appear on {what}. "
            f"Text UNSUBSCRIBE {gsm(undo).upper()} to undo.")


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


def person_minutes(value: float) -> str:
    """People-time in plain words: "1 person-minute", "30 person-minutes", "under 1 person-minute"."""
    n = int(value)  # rounded down, like every figure Corb texts
    if n == 0 and value > 0:
        return "under 1 person-minute"
    return f"{n} person-minute{'' if n == 1 else 's'}"


def cleaning_report(request_id: int, usage: AreaUsage | None, note: str, requester: str) -> str:
    where = gsm(usage.area) if usage else "no area named"
    lines = [f"Cleaning request #{request_id}: {where}."]
    if usage and usage.segments:
        since = (f"since the last cleaning ({usage.since:%d %b %H:%M} UTC)" if usage.since
                 else "since the first recording")
        lines.append(f"Use {since}: {person_minutes(usage.people_minutes)}, peak {_people(usage.peak)}.")
    elif usage:
        lines.append("No camera data for this area.")
    if note:
        lines.append(f"Note: {gsm(note)[:300]}")
    lines.append(f"From {gsm(requester)}. Text DONE {request_id} when finished.")
    return fit("\n".join(lines))


def which_area(areas: Sequence[str]) -> str:
    """A cleaning request that names no area, when there is more than one to choose from."""
    listed = " or ".join([", ".join(gsm(a) for a in areas[:-1]), gsm(areas[-1])]) if len(areas) > 1 \
        else gsm(areas[0])
    return fit(f"Which area needs cleaning? Text REQUEST CLEANING and the area: {listed}. "
               "Nothing was sent to the cleaners yet.", SEGMENT * 2)


def done_which(open_ids: Sequence[int]) -> str:
    """DONE without a number when zero or several requests are open (one open: that one is closed)."""
    if not open_ids:
        return NONE_OPEN
    more = " and more" if len(open_ids) > MAX_LISTED else ""
    shown = ", ".join(f"#{n}" for n in open_ids[:MAX_LISTED]) + more
    return f"Which request? Open: {shown}. Text DONE and its number, e.g. DONE {open_ids[0]}."


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
