"""Zappa ``callbacks`` (stage setting): keep Zappa away from Corb's triggers, and finish every deploy.

``settings`` runs right after Zappa loads a stage. It hides every ``event_source`` of the declaration (the
EventBridge rules and the S3 notification) from Zappa, leaving it the schedules only. Zappa's ``schedule``
step (run by ``zappa deploy``, ``update`` and ``schedule``) first unschedules: it deletes every rule that
targets the Lambda, every ``events.amazonaws.com`` permission and each S3 notification it knows, then puts
them back; a command or segment arriving in between is lost. It would also pile up an S3 permission with
a new random Sid on every run, and its EventBridge targets have no input transformer, so its handler would
drop every custom event (see ``cloud.aws.lambda_handler``). ``corb deploy`` makes all of these instead, on
resources Zappa never touches (the stage's bus, the ``live`` alias; see ``cloud.aws.deploy``). Zappa's
handler still routes S3 records: by the notification Id ``<lambda>:<function>``, not by its settings.

``bytecode`` runs after Zappa built the zip. Lambda's ``/var/task`` is read-only, so a package without
bytecode compiles every module on every cold start (measured: the detection package's cold import took
1.31-1.44 CPU-s without third-party bytecode, 0.57-0.67 with it). It adds ``__pycache__/*.pyc`` for every
``.py``, compiled by the Python running Zappa (the stage's runtime version) as *unchecked-hash* pycs:
valid whatever the zip does to file times. Only if that would take the package past Lambda's 250 MB
unzipped are just the project's own packages compiled (and it says so).

``post`` runs after ``zappa deploy`` / ``zappa update`` succeeded: it applies ``corb deploy`` for the stage
group, which creates what a first deploy lacks and finds nothing to change after an update (Lambdas of
the group not deployed yet are skipped and reported; ``corb deploy STAGE`` later completes them).
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

UNZIPPED_LIMIT = 262_144_000  # Lambda's 250 MB, code and layers
PROJECT_PACKAGES = ("bot/", "cloud/", "detection/")


def is_event_source(event: Any) -> bool:
    """An ``event_source`` trigger (S3, EventBridge rule), as opposed to a schedule."""
    return isinstance(event, dict) and isinstance(event.get("event_source"), dict)


def zappa_events(events: list[dict]) -> list[dict]:
    """The events Zappa should manage: the schedules only."""
    return [e for e in events if not is_event_source(e)]


def settings(cli: Any) -> None:
    events = cli.stage_config.get("events") or []
    kept = zappa_events(events)
    if len(kept) != len(events):
        cli.override_stage_config_setting("events", kept)
        print(f"corb: {len(events) - len(kept)} trigger(s) of stage {cli.api_stage} are left to "
              "`corb deploy` (rules on the stage's bus, S3 notifications, on the Lambda's alias)")


def add_bytecode(zip_path: Path, *, limit: int = UNZIPPED_LIMIT) -> int:
    """Add unchecked-hash pycs for the zip's modules; returns how many were added."""
    with zipfile.ZipFile(zip_path) as zf:
        infos = zf.infolist()
        sources = [i for i in infos if i.filename.endswith(".py") and not i.is_dir()]
        with tempfile.TemporaryDirectory(prefix="corb-pyc-") as tmp:
            root = Path(tmp)
            for info in sources:
                zf.extract(info, root)
            ok = compileall.compile_dir(root, quiet=2, ddir="/var/task", workers=0,
                                        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            if not ok:
                print("corb: some modules did not compile; they will compile at cold start")
            pycs = [p for p in root.rglob("*.pyc") if p.parent.name == "__pycache__"]
            total = sum(i.file_size for i in infos) + sum(p.stat().st_size for p in pycs)
            if total > limit:
                pycs = [p for p in pycs if p.relative_to(root).as_posix().startswith(PROJECT_PACKAGES)]
                print(f"corb: bytecode for every module would take the package to {total / 1e6:.1f} MB, past "
                      "Lambda's 250 MB unzipped: compiling the project's own modules only")
            existing = {i.filename for i in infos}
            with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as out:
                added = 0
                for pyc in pycs:
                    name = pyc.relative_to(root).as_posix()
                    if name not in existing:
                        out.write(pyc, name)
                        added += 1
            shutil.rmtree(root, ignore_errors=True)
    return added


def bytecode(cli: Any) -> None:
    path = Path(cli.handler_path if cli.stage_config.get("slim_handler") else cli.zip_path)
    print(f"corb: added bytecode for {add_bytecode(path)} modules to {path.name}")


def group_of(stage: str, settings: dict[str, Any]) -> str:
    """The main stage a stage belongs to: ``dev_detection`` -> ``dev`` (when ``dev`` exists)."""
    head = stage.split("_", 1)[0]
    return head if head in settings else stage


def post(cli: Any) -> None:
    from cloud.aws.deploy import apply_stage

    group = group_of(cli.api_stage, cli.zappa_settings)
    print(f"corb: applying what Zappa does not create for stage group {group} ...")
    apply_stage(group, boto_session=cli.zappa.boto_session, echo=print)
