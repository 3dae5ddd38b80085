"""The SMS grammar: text in, one ``Command`` out. Pure: no I/O, no clock, and it never raises.

People type on phones: any case, stray punctuation, filler ("pls can you"), plurals and a typo or two.
So the parser works on normalised word tokens, skips filler, recognises the first command word
(exactly, or within a small edit distance), and then looks for a camera or area among the remaining
words (by slug, name or area, exactly or fuzzily).

Carrier keywords are whole-message keywords, exactly as carriers and Twilio apply them: the message,
trimmed and without trailing punctuation, must be the keyword alone. So ``STOP`` opts out, but
``stop alerts for lobby`` does not. ``UNSUBSCRIBE`` alone is the carrier opt-out (every text stops);
``UNSUBSCRIBE lobby`` / ``UNSUBSCRIBE ALL`` are Corb's alert unsubscribes (texts keep coming).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

COMMAND_TYPES = ("status", "snapshot", "request_cleaning", "subscribe", "unsubscribe", "cameras", "help",
                 "done", "stop", "start", "unknown")

# Whole-message carrier keywords (CTIA / Twilio defaults).
STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit"})
START_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})

# Command words (and their common synonyms) mapped to a command type. Fuzzy matching applies only
# to words of four letters or more, so short synonyms must be typed exactly.
VERBS: dict[str, str] = {
    **dict.fromkeys(["status", "stat", "stats", "count", "people", "busy", "occupancy", "anyone",
                     "anybody", "somebody", "someone", "who", "whos", "crowd", "crowded"], "status"),
    **dict.fromkeys(["snapshot", "snap", "photo", "picture", "pic", "image", "img", "shot", "screenshot",
                     "look", "see", "view"], "snapshot"),
    **dict.fromkeys(["request", "clean", "cleaning", "cleanup", "cleaner", "mess", "messy", "spill",
                     "spilled", "dirty"], "request_cleaning"),
    **dict.fromkeys(["subscribe", "sub", "follow", "alert", "alerts", "notify", "watch"], "subscribe"),
    **dict.fromkeys(["unsubscribe", "unsub", "unfollow", "mute", "unwatch"], "unsubscribe"),
    **dict.fromkeys(["cameras", "camera", "cams", "cam", "list"], "cameras"),
    **dict.fromkeys(["help", "info", "commands", "command", "menu", "hi", "hello", "hey", "howto"], "help"),
    **dict.fromkeys(["done", "finished", "closed", "close", "complete", "completed", "cleaned"], "done"),
}

# Words that carry no meaning of their own: skipped before the command word and around arguments.
FILLER = frozenset({
    "pls", "plz", "please", "can", "could", "would", "will", "you", "u", "ya", "the", "in", "at", "a", "an",
    "of", "for", "on", "me", "i", "id", "im", "like", "to", "want", "need", "send", "show", "give", "get",
    "what", "whats", "is", "are", "there", "my", "corb", "now", "thanks", "thank", "thx", "ok", "okay",
    "just", "quick", "quickly", "current", "currently", "latest", "new", "area", "room", "from", "about",
    "how", "many", "much", "any", "some", "right", "again", "it", "this", "that", "do", "does", "and",
    "with", "by", "so", "be", "go", "lets", "let", "us", "we", "our", "here", "inside", "today",
})

# Words that say "every camera" after subscribe/unsubscribe/status.
ALL_WORDS = frozenset({"all", "everything", "every", "everywhere", "allcameras"})

MAX_NOTE = 500  # a note longer than this is cut: it travels in events and SMS reports
MAX_TEXT = 2000  # Twilio delivers at most 1,600 characters; anything longer is not an SMS
MAX_TOKENS = 120  # words looked at: keeps the fuzzy matching cheap on long messages


@dataclass(frozen=True)
class CameraRef:
    """What the grammar needs to know about a camera to recognise it in a message."""

    slug: str
    name: str = ""
    area: str = ""


@dataclass(frozen=True)
class Command:
    """One parsed message.

    ``camera``: a camera slug, ``"all"``, or None. ``area``: a known area name (cleaning, or a status /
    snapshot that named an area). ``note``: the free text of a cleaning request, or for other commands
    the argument words that matched no camera (so a handler can say "no camera called X").
    ``number``: the request number of ``done N``.
    """

    type: str
    camera: str | None = None
    area: str | None = None
    note: str = ""
    number: int | None = None
    raw: str = ""


@dataclass(frozen=True)
class _Token:
    word: str  # normalised: lower case, letters and digits only
    start: int  # where it starts in the cleaned text (so a note keeps its original wording)


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def _clean(text: str) -> str:
    """NFKC-normalise and turn control and format characters into spaces (RTL marks, NULs, ...)."""
    text = unicodedata.normalize("NFKC", text if isinstance(text, str) else "")
    return "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def _tokens(cleaned: str) -> list[_Token]:
    out = []
    for m in _WORD.finditer(cleaned):
        word = m.group().casefold().replace("'", "").replace("’", "")
        if word:
            out.append(_Token(word, m.start()))
    return out


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent swaps), cut off above ``limit``.

    Phone typos are mostly one wrong, missing, extra or swapped letter ("statsu", "snapshop",
    "subscibe"); transpositions count as one edit, which difflib's ratio does not model.
    """
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _allowed_edits(word: str) -> int:
    """Typos tolerated for a word of this length: none below 4 letters, 1 up to 7, then 2."""
    n = len(word)
    return 0 if n < 4 else 1 if n <= 7 else 2


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _closest(word: str, vocabulary: Iterable[str]) -> str | None:
    """The vocabulary entry ``word`` means: exact, then singular, then the nearest within its typo budget."""
    vocab = list(vocabulary)
    if word in vocab:
        return word
    single = _singular(word)
    if single in vocab:
        return single
    best, best_d = None, None
    for cand in vocab:
        budget = min(_allowed_edits(word), _allowed_edits(cand))
        if budget == 0 or cand[0] != word[0]:  # phone typos rarely hit the first letter
            continue
        d = edit_distance(word, cand, budget)
        if d <= budget and (best_d is None or d < best_d):
            best, best_d = cand, d
    return best


@functools.lru_cache(maxsize=4096)
def _verb(word: str) -> str | None:
    """The command a word names (cached: the vocabulary is fixed and the webhook is hot)."""
    match = _closest(word, VERBS)
    return VERBS[match] if match else None


def _slug_words(s: str) -> tuple[str, ...]:
    return tuple(t.word for t in _tokens(_clean(s.replace("-", " ").replace("_", " "))))


@dataclass(frozen=True)
class _Place:
    words: tuple[str, ...]  # the name as words, e.g. ("front", "door")
    camera: str | None  # slug, when the name is a camera's slug or name
    area: str | None  # area name, when the name is an area


def _places(cameras: Sequence[CameraRef], areas: Sequence[str]) -> list[_Place]:
    """Every name a camera or area can be called by, cameras (slug, name) before areas."""
    places: list[_Place] = []
    for cam in cameras:
        for label in (cam.slug, cam.name):
            words = _slug_words(label or "")
            if words:
                places.append(_Place(words, cam.slug, cam.area or None))
    for area in [*areas, *(c.area for c in cameras)]:
        words = _slug_words(area or "")
        if words:
            places.append(_Place(words, None, area))
    return places


def _match_place(words: list[str], places: list[_Place]) -> tuple[_Place, int, int] | None:
    """The best place named by a run of ``words``: (place, index, length). Exact beats fuzzy, longer
    names beat shorter ones, earlier beats later."""
    best: tuple[int, int, int, _Place] | None = None  # (fuzzy?, -length, index)
    for i in range(len(words)):
        for place in places:
            n = len(place.words)
            run = words[i:i + n]
            if len(run) < n:
                continue
            joined, target = " ".join(run), " ".join(place.words)
            if joined == target or " ".join(_singular(w) for w in run) == target:
                score = (0, -n, i)
            else:
                budget = min(_allowed_edits(joined), _allowed_edits(target))
                if budget == 0 or joined[0] != target[0] or edit_distance(joined, target, budget) > budget:
                    continue
                score = (1, -n, i)
            if best is None or score < best[:3]:
                best = (*score, place)
    if best is None:
        return None
    return best[3], best[2], -best[1]


def _carrier_keyword(tokens: list[_Token]) -> str | None:
    """STOP/START/HELP as carriers read them: the keyword is the whole message (punctuation aside)."""
    if len(tokens) != 1:
        return None
    word = tokens[0].word
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return None


def _note_from(cleaned: str, tokens: list[_Token], index: int) -> str:
    """The message's own wording from token ``index`` on, trimmed of separators and spaces."""
    if index >= len(tokens):
        return ""
    note = re.sub(r"\s+", " ", cleaned[tokens[index].start:]).strip()
    return note[:MAX_NOTE].strip(" -:;,.")


def parse(text: str, *, cameras: Sequence[CameraRef] = (), areas: Sequence[str] = ()) -> Command:
    """Parse one SMS. Never raises: anything it cannot read is ``Command("unknown")``."""
    raw = text if isinstance(text, str) else ""
    try:
        return _parse(raw, cameras, areas)
    except Exception:  # noqa: BLE001 - a parser bug must cost one "unknown", never a failed webhook
        return Command("unknown", raw=raw)


def _parse(raw: str, cameras: Sequence[CameraRef], areas: Sequence[str]) -> Command:
    cleaned = _clean(raw[:MAX_TEXT])
    tokens = _tokens(cleaned)[:MAX_TOKENS]
    keyword = _carrier_keyword(tokens)
    if keyword:
        return Command(keyword, raw=raw)
    if not tokens:
        return Command("help" if cleaned.strip().startswith("?") else "unknown", raw=raw)
    places = _places(cameras, areas)

    # The command word: the first verb among the first few words that are not filler.
    verb, at, seen = None, -1, 0
    for i, tok in enumerate(tokens):
        if tok.word in FILLER:
            continue
        verb = _verb(tok.word)
        if verb or seen == 3:
            at = i
            break
        seen += 1
    if verb is None:
        words = [t.word for t in tokens]
        found = _match_place(words, places)
        if found:  # "lobby?": a bare place name asks for its status
            return _with_place("status", raw, words, found)
        return Command("unknown", raw=raw)

    before = [t.word for t in tokens[:at] if t.word not in FILLER]
    after = tokens[at + 1:]
    if verb == "done":
        return Command("done", number=_number([t.word for t in tokens]), raw=raw)
    if verb == "request_cleaning":
        # "request cleaning", "clean up", "cleaning needed": swallow the rest of the verb phrase.
        while after and (_verb(after[0].word) == "request_cleaning" or after[0].word in ("up", "needed")):
            after = after[1:]
        return _cleaning(raw, cleaned, before, after, places)
    words = [t.word for t in after]
    if verb == "cameras" and words and _verb(words[0]) in ("status", "snapshot"):
        verb, words = _verb(words[0]) or verb, words[1:]  # "camera status lobby", "cam snapshot"
    elif verb in ("help", "cameras"):
        return Command(verb, raw=raw)
    found = _match_place(words, places)
    if found is None and (found_before := _match_place(before, places)):  # "lobby status"
        words, found = before, found_before
    return _with_place(verb, raw, words, found)


def _number(words: list[str]) -> int | None:
    for w in words:
        if w.isdecimal() and len(w) <= 9:
            return int(w)
    return None


def _with_place(verb: str, raw: str, words: list[str], found: tuple[_Place, int, int] | None) -> Command:
    """Fill in the camera (or area) that a status/snapshot/subscribe/unsubscribe names, and leftovers."""
    meaningful = [w for w in words if w not in FILLER and _verb(w) != verb and w not in ("camera", "cam")]
    if found is None:
        if any(w in ALL_WORDS for w in words):
            return Command(verb, camera="all", raw=raw)
        return Command(verb, note=" ".join(meaningful)[:MAX_NOTE], raw=raw)
    place, i, n = found
    used = set(words[i:i + n])
    leftover = " ".join(w for w in meaningful if w not in used and w not in ALL_WORDS)[:MAX_NOTE]
    return Command(verb, camera=place.camera, area=place.area, note=leftover, raw=raw)


def _cleaning(raw: str, cleaned: str, before: list[str], after: list[_Token],
              places: list[_Place]) -> Command:
    """``request cleaning [area] [note]``: the area is a known place named just after the verb phrase
    (the note follows it), else any place named anywhere (the note is then the whole request)."""
    words = [t.word for t in after]
    lead = 0
    while lead < len(words) and words[lead] in FILLER:
        lead += 1
    found = _match_place(words[lead:lead + 4], places)
    if found and found[1] == 0 and not before:
        place, _, n = found
        note_at = lead + n
        while note_at < len(after) and after[note_at].word in ("pls", "please", "plz", "thanks", "thx"):
            note_at += 1
        return Command("request_cleaning", area=place.area or place.camera,
                       note=_note_from(cleaned, after, note_at), raw=raw)
    found = _match_place(words, places) or _match_place(before, places)
    area = (found[0].area or found[0].camera) if found else None
    if before:  # "kitchen needs cleaning, coffee spilled": keep the whole sentence as the note
        note = re.sub(r"\s+", " ", cleaned).strip()[:MAX_NOTE].strip(" -:;,.")
    else:
        note = _note_from(cleaned, after, lead)
    return Command("request_cleaning", area=area, note=note, raw=raw)
