"""The ``corb`` command: help, clear errors, and ``corb sms`` against a live ``corb serve``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot import replies
from bot.cli import main
from bot.models import Camera, User
from tests.bot.conftest import MEMBER, STRANGER

ROOT = Path(__file__).resolve().parents[2]
CORB = [sys.executable, "-c", "from bot.cli import main; main()"]


def test_help_lists_every_local_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("serve", "db", "users", "cameras", "ingest", "sms", "outbox", "replay"):
        assert re.search(rf"^\s+{name}\s", result.output, re.M), name
    for sub in (["serve"], ["db", "upgrade"], ["users", "add"], ["cameras", "add"], ["ingest"], ["sms"],
                ["outbox"], ["replay"]):
        assert CliRunner().invoke(main, [*sub, "--help"]).exit_code == 0, sub


@pytest.mark.parametrize(("name", "value", "says"), [
    ("CORB_SEGMENT_STREAMS", "main", "CORB_SEGMENT_STREAMS='main': it must be one of sub, all"),
    ("CORB_PORT", "eighty", "CORB_PORT='eighty': it must be a whole number"),
    ("CORB_SEGMENT_DAYS", "1.5", "CORB_SEGMENT_DAYS='1.5': it must be a whole number")])
def test_a_setting_corb_cannot_use_is_one_clear_line(tmp_path: Path, name: str, value: str,
                                                      says: str) -> None:
    env = {"CORB_DATA_DIR": str(tmp_path), name: value}
    result = CliRunner(env=env).invoke(main, ["cameras", "list"])
    assert result.exit_code == 1 and result.exception is not None
    assert result.output == f"Error: configuration: {says}\n"


def test_users_add_refuses_a_number_that_is_not_e164(services: Any) -> None:
    result = CliRunner().invoke(main, ["users", "add", "555-1234", "--name", "Bob"])
    assert result.exit_code == 2
    assert "'555-1234' is not an E.164 phone number" in result.output and "+15551234567" in result.output


def test_users_and_cameras_add_are_idempotent_upserts(services: Any) -> None:
    run = CliRunner().invoke
    added = run(main, ["users", "add", "+1 (555) 000-0002", "--name", "Max", "--role", "cleaner"])
    assert added.exit_code == 0 and "Added cleaner Max (+15550000002)." in added.output
    assert "Updated" in run(main, ["users", "add", "+15550000002", "--name", "Maxine"]).output
    assert run(main, ["cameras", "add", "lobby", "--name", "Lobby", "--area", "lobby"]).exit_code == 0
    assert run(main, ["cameras", "add", "lobby", "--area", "hall"]).exit_code == 0
    with services.sessions() as s:
        [user] = s.scalars(select(User)).all()
        [camera] = s.scalars(select(Camera)).all()
    assert (user.phone, user.name, user.role.value) == ("+15550000002", "Maxine", "member")
    assert (camera.name, camera.area) == ("Lobby", "hall")
    assert "+15550000002" in run(main, ["users", "list"]).output
    assert "lobby" in run(main, ["cameras", "list"]).output


def test_ingest_stores_a_segment_where_a_camera_would(services: Any, people: Any, tmp_path: Path) -> None:
    run = CliRunner().invoke
    clip = ROOT / "tests" / "data" / "empty-scene.mkv"
    result = run(main, ["ingest", str(clip), "--camera", "lobby"])
    assert result.exit_code == 0, result.output
    [obj] = list(services.bucket.list("cameras/lobby/"))
    assert re.fullmatch(r"cameras/lobby/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.mkv", obj.key)
    assert obj.size == clip.stat().st_size
    avi = tmp_path / "clip.avi"
    avi.write_bytes(b"RIFF")
    result = run(main, ["ingest", str(avi), "--camera", "lobby"])
    assert result.exit_code == 2 and "is not a .mkv file" in result.output
    assert "no camera 'nope'" in run(main, ["ingest", str(clip), "--camera", "nope"]).output


@pytest.fixture
def live_server(services: Any, people: Any, corb_env: dict[str, str]) -> Any:
    """``corb serve --port 0`` in a subprocess on this test's database; yields (env, process)."""
    env = {**os.environ, **corb_env, "DATABASE_URL": services.config.database_url, "CORB_PORT": "0"}
    proc = subprocess.Popen([*CORB, "serve", "--port", "0", "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "running at" not in line:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line or proc.poll() is None, "corb serve exited early"
    port = re.search(r"http://127\.0\.0\.1:(\d+)", line).group(1)
    yield {**env, "CORB_PORT": port}, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_corb_sms_finds_the_server_of_its_data_directory_on_any_port(live_server: Any) -> None:
    env, proc = live_server
    # A new shell: no CORB_PORT (the server picked a free port), only the same data directory.
    shell = {k: v for k, v in env.items() if k != "CORB_PORT"}
    data_dir = Path(env["CORB_DATA_DIR"])
    assert json.loads((data_dir / "serve.json").read_text())["pid"] == proc.pid

    def corb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*CORB, *args], env=shell, capture_output=True, text=True, timeout=60)

    out = corb("sms", MEMBER, "help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["> help", f"< {replies.HELP}"]
    out = corb("sms", MEMBER, "cameras")
    # The handler's answer, once; nothing that reads as "nothing came back" or "not sent yet".
    assert out.stdout.splitlines() == ["> cameras", "< Cameras: kitchen (Kitchen); lobby (Lobby). "
                                       "Try STATUS KITCHEN."]
    out = corb("sms", STRANGER, "status")
    assert out.stdout.splitlines() == ["> status", f"< {replies.REFUSAL}"]
    out = corb("outbox", "--to", MEMBER, "--json")
    assert [json.loads(line)["status"] for line in out.stdout.splitlines()] == ["sent", "sent"]
    proc.send_signal(signal.SIGTERM)  # graceful: lets running functions finish
    assert proc.wait(timeout=40) == 0
    assert "Stopped." in proc.stdout.read()
    assert not (data_dir / "serve.json").exists()
    out = corb("sms", MEMBER, "status")
    assert out.returncode == 1
    assert f"No Corb server is running for the data directory {data_dir}." in out.stderr
    out = corb("outbox", "--to", MEMBER)
    assert out.returncode == 0 and "No Corb server is running" in out.stderr and "Cameras:" in out.stdout


def test_corb_sms_says_clearly_when_no_server_runs(corb_env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["sms", MEMBER, "status"])
    assert result.exit_code == 1
    assert f"No Corb server is running for the data directory {Path(corb_env['CORB_DATA_DIR']).resolve()}" \
        in result.output
    result = CliRunner().invoke(main, ["sms", MEMBER, "status", "--url", "http://127.0.0.1:9/sms"])
    assert result.exit_code == 1 and "Is `corb serve` running?" in result.output


def test_a_stale_server_record_is_ignored(corb_env: dict[str, str]) -> None:
    from bot import server_info
    from cloud.config import load_config

    config = load_config()
    server_info.record(config, "http://0.0.0.0:8123", os.getpid())
    assert server_info.find(config) == "http://127.0.0.1:8123"  # a wildcard bind is reached on loopback
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    server_info.record(config, "http://127.0.0.1:8123", dead.pid)
    assert server_info.find(config) is None
    server_info.clear(config)
    assert not (config.data_dir / "serve.json").exists()


def test_corb_imports_only_what_a_command_needs() -> None:
    heavy = ("flask", "werkzeug", "sqlalchemy.orm", "argon2", "twilio", "bot.models", "cv2", "av", "PIL",
             "numpy")
    code = ("import sys; from bot.cli import main; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_help_lists_every_first_sentence_whole() -> None:
    def groups(group: click.Group, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name in group.list_commands(click.Context(group)):
            sub = group.get_command(click.Context(group), name)
            if isinstance(sub, click.Group):
                yield from groups(sub, [*path, name])

    for path in groups(main, []):
        listing = CliRunner(env={"COLUMNS": "80"}).invoke(main, [*path, "--help"]).output
        for line in filter(None, listing.split("Commands:\n", 1)[1].splitlines()):
            text = line.rstrip()
            assert text.endswith(".") and not text.endswith(("...", "e.g.", "i.e.")), (path, line)


DEMO_TRY = ROOT / "scripts" / "demo-try.txt"


def test_the_readme_quotes_the_demos_list_of_things_to_try() -> None:
    listing = DEMO_TRY.read_text()
    assert f"```sh\n{listing}```" in (ROOT / "README.md").read_text()
    assert "scripts/demo-try.txt" in (ROOT / "scripts" / "demo.sh").read_text()


def test_every_line_of_the_demos_list_is_true_on_every_run(live_server: Any) -> None:
    """The list's texts, as a newcomer would type them, twice over (a second demo run), each answered."""
    env, proc = live_server
    shell = {k: v for k, v in env.items() if k != "CORB_PORT"}
    lines = DEMO_TRY.read_text().splitlines()
    texts = [m.groups() for m in (re.fullmatch(r'corb sms (\+\d+) "([^"]+)".*', line) for line in lines) if m]
    assert len(texts) >= 7
    for run in (1, 2):
        for phone, text in texts:
            out = subprocess.run([*CORB, "sms", phone, text], env=shell, capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
            answers = [line for line in out.stdout.splitlines() if line.startswith("< ")]
            if phone == STRANGER and run == 2:  # "refused politely, once a day": then nothing
                assert out.stdout.splitlines()[1:] == ["  (Corb sent no answer to this message)"]
                continue
            assert answers and "  (" not in out.stdout, (run, text, out.stdout)
            if text == "done":  # each run's request is the one open request: closed by "done"
                assert answers == [f"< {replies.request_closed(run)}"], out.stdout
    ingest = [line for line in DEMO_TRY.read_text().splitlines() if line.startswith("corb ingest ")]
    assert all((ROOT / line.split()[2]).is_file() for line in ingest)
