"""Camera folders that are not slugs: a segment under ``cameras/new cam u/`` once created a camera the
API 404s and the admin cannot save. Now it is refused, and the refusal says why and what to do."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.models import Camera, Detection
from cloud.camera_settings import SLUG, slug_for
from cloud.models import DeadLetter
from tests.bot.conftest import segment_result

FOLDERS = {"new cam u": "new-cam-u", "Lobby": "lobby", "-lobby": "lobby", "x" * 65: "x" * 64,
           "lobby<script>": "lobby-script", "кухня": ""}  # folder: the slug suggested


def test_a_segment_from_a_folder_that_is_no_slug_creates_no_camera(services, people, runtime, now) -> None:
    for folder, hint in FOLDERS.items():
        assert not SLUG.match(folder) and slug_for(folder) == hint
        result = segment_result(folder, now, counts=[2])
        runtime.invoke_async("tests.bot.fake_functions.detect", {"result": result})
    assert runtime.run_until_idle(timeout=60)
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Detection)) == 0
        assert sorted(s.scalars(select(Camera.slug))) == ["kitchen", "lobby"]  # the two registered ones
        errors = s.scalars(select(DeadLetter.error)).all()  # said where an operator looks (admin: Events)
    assert len(errors) == len(FOLDERS)
    for folder, hint in FOLDERS.items():
        [error] = [e for e in errors if f"folder {folder!r} is not a camera slug" in e]
        assert (f"upload under cameras/{hint}/ instead" in error) == bool(hint)


def test_a_segment_from_a_slug_folder_still_registers_its_camera(services, people, runtime, now) -> None:
    runtime.invoke_async("tests.bot.fake_functions.detect", {"result": segment_result("garage-2", now,
                                                                                      counts=[1])})
    assert runtime.run_until_idle(timeout=30)
    with services.sessions() as s:
        assert s.scalars(select(Camera.slug).where(Camera.slug == "garage-2")).one() == "garage-2"
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 0
