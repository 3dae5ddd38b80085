"""Camera folders that are not slugs: a segment under ``cameras/new cam u/`` once created a camera the
API 404s and the admin cannot save. Now it is refused, and the refusal says why and what to do."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.models import Camera, Detection
from cloud.camera_settings import SLUG, slug_for
from cloud.models import DeadLetter
from tests.bot.conftest import segment_result


@pytest.mark.parametrize("folder, hint", [
    ("new cam u", "new-cam-u"), ("Lobby", "lobby"), ("-lobby", "lobby"), ("x" * 65, "x" * 64),
    ("lobby<script>", "lobby-script"), ("кухня", ""),
])
def test_a_segment_from_a_folder_that_is_no_slug_creates_no_camera(services, people, runtime, now,
                                                                   folder: str, hint: str) -> None:
    assert not SLUG.match(folder) and slug_for(folder) == hint
    result = segment_result(folder, now, counts=[2])
    runtime.invoke_async("tests.bot.fake_functions.detect", {"result": result})
    assert runtime.run_until_idle(timeout=30)
    with services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Detection)) == 0
        assert sorted(s.scalars(select(Camera.slug))) == ["kitchen", "lobby"]  # the two registered ones
        [letter] = s.scalars(select(DeadLetter)).all()  # said where an operator looks (admin: Events)
    assert f"folder {folder!r} is not a camera slug" in letter.error
    assert (f"upload under cameras/{hint}/ instead" in letter.error) == bool(hint)


def test_a_segment_from_a_slug_folder_still_registers_its_camera(services, people, runtime, now) -> None:
    runtime.invoke_async("tests.bot.fake_functions.detect", {"result": segment_result("garage-2", now,
                                                                                      counts=[1])})
    assert runtime.run_until_idle(timeout=30)
    with services.sessions() as s:
        assert s.scalars(select(Camera.slug).where(Camera.slug == "garage-2")).one() == "garage-2"
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 0
