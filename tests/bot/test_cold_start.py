"""The webhook's cold start (Lambda's, gunicorn's): importing ``bot.wsgi`` must not pull in detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("tensorflow", "ai_edge_litert", "cv2", "av", "PIL", "numpy", "detection", "boto3")


def test_importing_the_wsgi_app_does_not_import_detection_or_its_libraries(tmp_path: Path) -> None:
    code = ("import json, sys, time; t = time.perf_counter(); import bot.wsgi; "
            "print(json.dumps({'s': time.perf_counter() - t, 'heavy': sorted("
            f"m for m in {HEAVY!r} if m in sys.modules "
            "or any(k.startswith(m + '.') for k in sys.modules))}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORB_", "TWILIO_", "DATABASE_URL"))}
    env.update(CORB_DATA_DIR=str(tmp_path), CORB_SECRET_KEY="x", TWILIO_AUTH_TOKEN="y")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["s"] < 5.0  # a sanity bound for a loaded CI box; bench/webhook.py measures the real figure
