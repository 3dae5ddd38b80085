"""Ports without circles: an interface module never imports its implementations; one module chooses."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from cloud.adapters import open_bucket, open_bus, open_detector, open_invoker
from cloud.bucket import FolderBucket
from cloud.config import load_config

ROOT = Path(__file__).resolve().parents[2]
# interface module -> the implementation modules it must not import (they import it)
INTERFACES = {
    "cloud/bus.py": ("cloud.local_bus", "cloud.aws"),
    "cloud/bucket.py": ("cloud.aws",),
    "cloud/dead_letters.py": ("cloud.runtime", "cloud.aws"),
    "cloud/runtime.py": ("cloud.aws",),
    "detection/detectors/base.py": ("detection.detectors.nanodet", "detection.detectors.tensorflow_od"),
}


def imported_modules(path: Path) -> set[str]:
    """Every module the file imports, at top level or inside functions."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


@pytest.mark.parametrize("interface", sorted(INTERFACES))
def test_an_interface_never_imports_its_implementations(interface: str) -> None:
    imported = imported_modules(ROOT / interface)
    bad = sorted(m for m in imported for impl in INTERFACES[interface]
                 if m == impl or m.startswith(impl + "."))
    assert bad == [], f"{interface} imports {bad}: let cloud.adapters choose"


def test_importing_the_chooser_imports_no_implementation() -> None:
    code = ("import sys, cloud.adapters; heavy = ['cloud.local_bus', 'cloud.runtime', 'cloud.aws.s3', "
            "'cloud.aws.eventbridge', 'boto3', 'detection.detectors.nanodet', 'numpy']; "
            "print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_configuration_chooses_each_adapter(corb_env: dict[str, str], sqlite_url: str) -> None:
    from cloud.db import make_engine, make_sessionmaker
    from cloud.local_bus import LocalBus
    from cloud.runtime import LocalInvoker

    config = load_config()
    sessions = make_sessionmaker(make_engine(sqlite_url))
    assert isinstance(open_bucket(config), FolderBucket)
    assert isinstance(open_bus(config, sessions=sessions), LocalBus)
    assert isinstance(open_invoker(config, sessions), LocalInvoker)
    with pytest.raises(ValueError, match="sessions"):
        open_invoker(config, None)
    with pytest.raises(ValueError, match="score_threshold"):
        open_detector(score_threshold=2)
    from cloud.bucket import open_bucket as old_open_bucket  # the older call site still works

    assert isinstance(old_open_bucket(replace(config)), FolderBucket)
