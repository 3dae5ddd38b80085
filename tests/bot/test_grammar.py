"""The SMS grammar: a table of what people actually type, and properties for anything they might."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.grammar import COMMAND_TYPES, CameraRef, Command, edit_distance, parse

CAMERAS = (CameraRef("lobby", "Lobby", "lobby"), CameraRef("kitchen", "Kitchen cam", "kitchen"),
           CameraRef("front-door", "Front door", "entrance"))
AREAS = ("lobby", "kitchen", "entrance", "server room")


def p(text: str) -> Command:
    return parse(text, cameras=CAMERAS, areas=AREAS)


@pytest.mark.parametrize("text, type_, camera", [
    ("status", "status", None),
    ("Status?", "status", None),
    ("STATUS", "status", None),
    ("statsu", "status", None),
    ("stauts lobby", "status", "lobby"),
    ("status lobby", "status", "lobby"),
    ("status of the lobby pls", "status", "lobby"),
    ("how many people in the lobby?", "status", "lobby"),
    ("is anyone in the kitchen", "status", "kitchen"),
    ("lobby?", "status", "lobby"),
    ("lobby status", "status", "lobby"),
    ("status all", "status", "all"),
    ("cam status front door", "status", "front-door"),
    ("snapshot", "snapshot", None),
    ("snapshop", "snapshot", None),
    ("Snapshot, lobby!", "snapshot", "lobby"),
    ("send me a picture of the front door", "snapshot", "front-door"),
    ("snapshot frnt door", "snapshot", "front-door"),
    ("snapshots kitchens", "snapshot", "kitchen"),
    ("can you send a snapshot of the kitchen cam please", "snapshot", "kitchen"),
    ("subscribe", "subscribe", None),
    ("subscibe lobby", "subscribe", "lobby"),
    ("subscribe all", "subscribe", "all"),
    ("pls subscribe me to the kitchen", "subscribe", "kitchen"),
    ("unsubscribe lobby", "unsubscribe", "lobby"),
    ("unsubscribe all", "unsubscribe", "all"),
    ("unsubscrbe kitchen", "unsubscribe", "kitchen"),
    ("cameras", "cameras", None),
    ("list cameras", "cameras", None),
    ("can you show the cameras", "cameras", None),
    ("help", "help", None),
    ("Help me", "help", None),
    ("?", "help", None),
    ("hi", "help", None),
    ("", "unknown", None),
    ("   ", "unknown", None),
    ("hello there general kenobi", "help", None),
    ("quit smoking", "unknown", None),
    ("what is the meaning of life", "unknown", None),
    ("🙂", "unknown", None),
])
def test_commands_and_cameras(text: str, type_: str, camera: str | None) -> None:
    cmd = p(text)
    assert (cmd.type, cmd.camera) == (type_, camera)
    assert cmd.raw == text


@pytest.mark.parametrize("text, type_", [
    ("STOP", "stop"), ("stop", "stop"), ("Stop.", "stop"), (" STOPALL ", "stop"), ("UNSUBSCRIBE", "stop"),
    ("cancel", "stop"), ("END", "stop"), ("quit!", "stop"),
    ("START", "start"), ("yes", "start"), ("Unstop", "start"),
    ("HELP", "help"), ("info", "help"),
])
def test_carrier_keywords_are_whole_message_keywords(text: str, type_: str) -> None:
    assert p(text).type == type_


@pytest.mark.parametrize("text", ["stop alerts for lobby please now", "end of the day report",
                                  "yes please status", "cancel my cleaning request"])
def test_carrier_keywords_inside_a_sentence_are_not_opt_outs(text: str) -> None:
    assert p(text).type not in ("stop", "start")


def test_unsubscribe_alone_is_the_carrier_opt_out_but_with_a_camera_is_corbs() -> None:
    assert p("unsubscribe").type == "stop"
    assert p("Unsubscribe!").type == "stop"
    assert p("unsubscribe lobby") == Command("unsubscribe", camera="lobby", area="lobby",
                                             raw="unsubscribe lobby")
    assert p("unsubscribe all").camera == "all"


@pytest.mark.parametrize("text, area, note", [
    ("pls request cleaning in the kitchen - coffee spilled", "kitchen", "coffee spilled"),
    ("request cleaning kitchen spilled coffee", "kitchen", "spilled coffee"),
    ("Request cleaning: lobby", "lobby", ""),
    ("request cleaning", None, ""),
    ("clean up the server room, someone dropped a pizza", "server room", "someone dropped a pizza"),
    ("cleaning needed in the entrance - muddy floor!", "entrance", "muddy floor!"),
    ("request cleaning - broken glass near the lobby", "lobby", "broken glass near the lobby"),
    ("kitchen needs cleaning, coffee everywhere", "kitchen", "kitchen needs cleaning, coffee everywhere"),
    ("request cleaning garage oil leak", None, "garage oil leak"),
])
def test_request_cleaning(text: str, area: str | None, note: str) -> None:
    cmd = p(text)
    assert (cmd.type, cmd.area, cmd.note) == ("request_cleaning", area, note)


@pytest.mark.parametrize("text, number", [("done 12", 12), ("DONE #3", 3), ("#7 done", 7), ("done", None),
                                          ("finished 4 thanks", 4), ("Done with 15.", 15)])
def test_done(text: str, number: int | None) -> None:
    assert p(text) == Command("done", number=number, raw=text)


def test_unknown_camera_names_are_left_in_the_note() -> None:
    cmd = p("status garage")
    assert (cmd.type, cmd.camera, cmd.note) == ("status", None, "garage")


def test_an_area_with_no_camera_of_its_own_is_an_area() -> None:
    cmd = p("status entrance")
    assert (cmd.camera, cmd.area) == (None, "entrance")


def test_without_cameras_the_grammar_still_reads_commands() -> None:
    assert parse("snapshot") == Command("snapshot", raw="snapshot")
    assert parse("status lobby").note == "lobby"


def test_edit_distance_counts_a_swap_as_one() -> None:
    assert edit_distance("statsu", "status") == 1
    assert edit_distance("snapshop", "snapshot") == 1
    assert edit_distance("kitten", "sitting", limit=5) == 3
    assert edit_distance("a" * 10, "b" * 10) == 3  # cut off above the limit


# -- never raises --------------------------------------------------------------------------------------
names = st.text(min_size=1, max_size=30)
camera_refs = st.lists(st.builds(CameraRef, names, names, names), max_size=4)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200), cameras=camera_refs, areas=st.lists(names, max_size=4))
def test_any_text_parses_to_a_command(text: str, cameras: list[CameraRef], areas: list[str]) -> None:
    cmd = parse(text, cameras=cameras, areas=areas)
    assert cmd.type in COMMAND_TYPES
    assert cmd.raw == text
    assert cmd.camera in (None, "all") or cmd.camera in {c.slug for c in cameras}
    assert len(cmd.note) <= 500


@settings(max_examples=30, deadline=None)
@given(text=st.text(min_size=1600, max_size=1600))
def test_long_messages_parse(text: str) -> None:
    assert parse(text, cameras=CAMERAS, areas=AREAS).type in COMMAND_TYPES


@pytest.mark.parametrize("text", [
    "x" * 1600, "status " * 230, "🙂" * 1600, "\x00\x01\x02status\x7f", "\u202estatus lobby\u202c",
    "מצב לובי", "حالة", "status\u200b\u200blobby", "\ud800", "STOP\x00", "ｓｔａｔｕｓ", "Ⓢⓝⓐⓟⓢⓗⓞⓣ",
    "request cleaning " + "a" * 1580,
])
def test_hostile_texts(text: str) -> None:
    cmd = p(text)
    assert cmd.type in COMMAND_TYPES


def test_control_and_format_characters_do_not_hide_a_command() -> None:
    assert p("\u202estatus lobby\u202c").camera == "lobby"
    assert p("ｓｔａｔｕｓ").type == "status"  # full-width letters fold to ASCII
    assert p("request cleaning " + "a" * 1580).note == "a" * 500


@pytest.mark.parametrize("text", [None, 42, b"status"])
def test_non_text_is_unknown(text: object) -> None:
    assert parse(text).type == "unknown"  # type: ignore[arg-type]
