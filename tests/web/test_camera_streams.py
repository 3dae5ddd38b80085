"""The admin camera page's stream fields: stored, shown back only redacted, blank keeps, a box removes."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from bot.models import Camera
from tests.web.conftest import page_token

MAIN = "rtsp://admin:hunter2@192.168.1.20:554/stream1"
SUB = "rtsp://admin:hunter2@192.168.1.20:554/stream2"


def streams(services: Any, slug: str = "lobby") -> tuple[str | None, str | None]:
    with services.sessions() as db:
        cam = db.scalars(select(Camera).where(Camera.slug == slug)).one()
        return cam.stream_url, cam.substream_url


def test_streams_are_saved_shown_redacted_kept_when_blank_and_removed(admin_client: FlaskClient,
                                                                      services: Any, building: dict) -> None:
    path = f"/admin/cameras/{building['camera_id']}"
    token = page_token(admin_client, path)
    base = {"csrf_token": token, "name": "Lobby", "area": "lobby"}
    assert admin_client.post(path, data={**base, "stream": MAIN, "substream": SUB}).status_code == 302
    assert streams(services) == (MAIN, SUB)
    html = admin_client.get(path).get_data(as_text=True)
    assert "rtsp://admin:***@192.168.1.20:554/stream1" in html
    assert "rtsp://admin:***@192.168.1.20:554/stream2" in html
    assert "hunter2" not in html and "Leave blank to keep it." in html
    assert admin_client.post(path, data={**base, "stream": "", "substream": ""}).status_code == 302
    assert streams(services) == (MAIN, SUB)  # blank keeps
    assert admin_client.post(path, data={**base, "remove_substream": "y"}).status_code == 302
    assert streams(services) == (MAIN, None)


def test_a_stream_the_agent_cannot_read_is_refused_without_echoing_it(admin_client: FlaskClient,
                                                                     services: Any, building: dict) -> None:
    path = f"/admin/cameras/{building['camera_id']}"
    token = page_token(admin_client, path)
    response = admin_client.post(path, data={"csrf_token": token, "name": "Lobby",
                                             "stream": "ftp://admin:hunter2@cam/x"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "streams are not supported" in html and "hunter2" not in html
    assert streams(services) == (None, None)
