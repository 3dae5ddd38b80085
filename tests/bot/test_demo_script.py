"""scripts/demo.sh's server step, run for real: a busy port is named with the way around it, and the
server's log survives a restart (appended, each start marked)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def step(env: dict[str, str], *commands: str) -> subprocess.CompletedProcess:
    """Source the demo (its steps only) in bash with the test's virtualenv active, then run ``commands``."""
    script = f'. scripts/demo.sh; . "{os.environ.get("VIRTUAL_ENV", ROOT / ".venv")}/bin/activate"; ' \
             + "; ".join(commands)
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_busy_port_is_named_with_how_to_choose_another(corb_env: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = step({**os.environ, **corb_env, "CORB_PORT": str(port)}, "start_server")
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        f"Port {port} is already in use by another program. Start the demo on a free port, e.g.:",
        "  CORB_PORT=8010 scripts/demo.sh"]


def test_the_server_log_is_appended_across_restarts(services: Any, corb_env: dict[str, str]) -> None:
    env = {**os.environ, **corb_env, "DATABASE_URL": services.config.database_url, "CORB_PORT": "0"}
    log = Path(corb_env["CORB_DATA_DIR"]) / "serve.log"
    for run in (1, 2):
        out = step(env, "start_server", "echo URL=$(server_url)", "bash scripts/demo-stop.sh")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "URL=http://127.0.0.1:" in out.stdout and "corb serve stopped." in out.stdout
        text = log.read_text()
        assert text.count("scripts/demo.sh starts corb serve") == run and text.count("Stopped.") == run
    assert not (Path(corb_env["CORB_DATA_DIR"]) / "serve.json").exists()
