"""A camera's counting zone, set by an admin on the camera page or with ``corb cameras add --zone``.

The zone is stored in the bucket (``config/cameras/<slug>.json``, where the detection function reads it)
and the camera in the database: a save writes both or neither, whatever fails.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.cli import main
from bot.models import Camera
from cloud.camera_settings import CameraSettings, load_settings, save_settings, settings_key
from tests.web.conftest import SNAPSHOT_KEY, page_token

LOWER_PART = "0,0.4 1,0.4 1,1 0,1"
LOWER_PART_ZONE = ((0.0, 0.4), (1.0, 0.4), (1.0, 1.0), (0.0, 1.0))


def zone_text(page: str) -> str:
    """What the zone textarea holds (WTForms starts a textarea with a new line)."""
    match = re.search(r'<textarea[^>]*name="zone"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no zone field on the page"
    return html_lib.unescape(match.group(1)).strip()


def field_errors(page: str, name: str) -> list[str]:
    """The errors listed under one form field (each field is one ``<div class="field ...">``)."""
    [block] = [b for b in page.split('<div class="field')[1:] if f'name="{name}"' in b]
    assert block.startswith(" has-error"), "the field is not marked as wrong"
    return [html_lib.unescape(e) for e in re.findall(r"<li>(.*?)</li>", block)]


def stored_object(services: Any, slug: str) -> dict | None:
    info = services.bucket.head(settings_key(slug))
    return None if info is None else json.loads(services.bucket.get(settings_key(slug)))


def camera_names(services: Any) -> dict[str, str]:
    with services.sessions() as db:
        return dict(db.execute(select(Camera.slug, Camera.name)).all())


def post_camera(client: FlaskClient, path: str, **data: str) -> Any:
    form = {"csrf_token": page_token(client, path), "name": "Lobby", "area": "ground floor", "zone": ""}
    return client.post(path, data={**form, **data})


def test_camera_page_shows_the_snapshot_and_an_empty_zone_by_default(admin_client: FlaskClient,
                                                                     building: dict) -> None:
    page = admin_client.get(f"/admin/cameras/{building['camera_id']}").get_data(as_text=True)
    assert zone_text(page) == ""
    assert "0,0 top left, 1,1 bottom right" in page and "Empty: the whole picture counts" in page
    assert f'src="/admin/media/{SNAPSHOT_KEY}"' in page  # the latest snapshot, to see what the zone covers
    assert "No zone: the whole picture counts." in page and "<polygon" not in page


def test_saving_a_zone_writes_it_to_the_bucket_and_the_page_shows_it_back(
        admin_client: FlaskClient, services: Any, building: dict) -> None:
    path = f"/admin/cameras/{building['camera_id']}"
    response = post_camera(admin_client, path, name="Main lobby", zone=" 0,0.4  1,0.4\n1,1 ; 0,1 ")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert stored_object(services, "lobby") == {"version": 1, "zone": [list(p) for p in LOWER_PART_ZONE]}
    assert load_settings(services.bucket, "lobby") == CameraSettings(zone=LOWER_PART_ZONE)
    assert camera_names(services)["lobby"] == "Main lobby"

    page = admin_client.get(path).get_data(as_text=True)
    assert "Saved camera Main lobby." in page
    assert zone_text(page) == LOWER_PART  # normalised, as it is read back
    assert f'<polygon class="zone" points="{LOWER_PART}"' in page  # drawn over the snapshot
    assert f'd="M0,0 1,0 1,1 0,1Z M{LOWER_PART}Z"' in page  # the outside shaded
    assert 'viewBox="0 -0.0625 1 1.0625" preserveAspectRatio="none"' in page  # below the caption bar
    assert "style=" not in page and "<script>" not in page  # nothing the CSP would block
    assert stored_object(services, "kitchen") is None  # the other camera untouched


def test_a_new_camera_gets_its_zone(admin_client: FlaskClient, services: Any, building: dict) -> None:
    response = post_camera(admin_client, "/admin/cameras/new", slug="back-door", name="Back door",
                           zone="0.5,0 1,0 1,1 0.5,1")
    assert response.status_code == 302, response.get_data(as_text=True)
    right_half = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))
    assert load_settings(services.bucket, "back-door").zone == right_half
    assert camera_names(services)["back-door"] == "Back door"


@pytest.mark.parametrize(("zone", "message"), [
    ("0,0 2,2 1,0", "Corner 2,2 is outside the frame"),
    ("0,0 1,1", "A zone needs at least 3 corners, got 2."),
    ("0,0 1,0 abc", "'abc' is not a point"),
    ("0,0 1,0 1,0.0001", "too small to count people in"),
])
def test_a_bad_zone_shows_why_next_to_the_field_and_saves_nothing(
        admin_client: FlaskClient, services: Any, building: dict, zone: str, message: str) -> None:
    save_settings(services.bucket, "lobby", CameraSettings(zone=LOWER_PART_ZONE))
    before = stored_object(services, "lobby")
    path = f"/admin/cameras/{building['camera_id']}"
    response = post_camera(admin_client, path, name="Renamed", zone=zone)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert any(message in e for e in field_errors(page, "zone")), field_errors(page, "zone")
    assert zone_text(page) == zone  # what the admin typed, to fix
    assert camera_names(services)["lobby"] == "Lobby" and stored_object(services, "lobby") == before

    response = post_camera(admin_client, "/admin/cameras/new", slug="back-door", name="Back door", zone=zone)
    assert response.status_code == 200
    assert any(message in e for e in field_errors(response.get_data(as_text=True), "zone"))
    assert "back-door" not in camera_names(services) and stored_object(services, "back-door") is None


def test_clearing_the_zone_removes_the_bucket_object(admin_client: FlaskClient, services: Any,
                                                    building: dict) -> None:
    path = f"/admin/cameras/{building['camera_id']}"
    assert post_camera(admin_client, path, zone=LOWER_PART).status_code == 302
    assert stored_object(services, "lobby") is not None
    assert post_camera(admin_client, path, zone="  ").status_code == 302
    assert services.bucket.head(settings_key("lobby")) is None
    page = admin_client.get(path).get_data(as_text=True)
    assert zone_text(page) == "" and "<polygon" not in page


def test_a_bucket_failure_saves_nothing_and_says_so(admin_client: FlaskClient, services: Any,
                                                    building: dict) -> None:
    # A folder where the object goes: the bucket refuses both the write and the delete, as a real fault.
    services.bucket.path_for(settings_key("lobby")).mkdir(parents=True)
    path = f"/admin/cameras/{building['camera_id']}"
    for zone in (LOWER_PART, ""):
        response = post_camera(admin_client, path, name="Renamed", zone=zone)
        assert response.status_code == 503
        page = response.get_data(as_text=True)
        assert "Nothing was saved: the counting zone could not be stored in the bucket." in page
        assert zone_text(page) == zone
        assert camera_names(services)["lobby"] == "Lobby"  # the database change was rolled back

    services.bucket.path_for(settings_key("back-door")).mkdir(parents=True)
    response = post_camera(admin_client, "/admin/cameras/new", slug="back-door", name="Back door",
                           zone=LOWER_PART)
    assert response.status_code == 503 and "Add camera" in response.get_data(as_text=True)
    assert "back-door" not in camera_names(services)


# -- the command line ------------------------------------------------------------------------------

def test_cli_add_with_a_zone_stores_it_lists_it_and_clears_it(services: Any) -> None:
    run = CliRunner().invoke
    added = run(main, ["cameras", "add", "lobby", "--name", "Lobby", "--zone", "0,0.4 1,0.4 1,1 0,1"])
    assert added.exit_code == 0, added.output
    assert f"Counting zone: {LOWER_PART}." in added.output
    assert load_settings(services.bucket, "lobby").zone == LOWER_PART_ZONE
    assert run(main, ["cameras", "add", "kitchen"]).exit_code == 0
    listing = run(main, ["cameras", "list"]).output
    assert re.search(rf"^lobby .* zone {re.escape(LOWER_PART)}$", listing, re.M), listing
    assert re.search(r"^kitchen .* whole picture$", listing, re.M), listing

    renamed = run(main, ["cameras", "add", "lobby", "--name", "Main lobby"])  # no --zone: zone unchanged
    assert renamed.exit_code == 0 and "Counting zone" not in renamed.output
    assert load_settings(services.bucket, "lobby").zone == LOWER_PART_ZONE

    cleared = run(main, ["cameras", "add", "lobby", "--zone", ""])
    assert cleared.exit_code == 0 and "Counting zone: the whole picture." in cleared.output
    assert services.bucket.head(settings_key("lobby")) is None
    assert re.search(r"^lobby .* whole picture$", run(main, ["cameras", "list"]).output, re.M)


def test_cli_refuses_a_bad_zone_and_saves_nothing(services: Any) -> None:
    result = CliRunner().invoke(main, ["cameras", "add", "lobby", "--zone", "0,0 1.5,0 1,1"])
    assert result.exit_code == 2
    assert "Invalid value for --zone: corner 1.5,0 is outside the frame" in result.output
    with services.sessions() as db:
        assert db.scalar(select(func.count(Camera.id))) == 0
    assert services.bucket.head(settings_key("lobby")) is None


def test_cli_bucket_failure_saves_nothing(services: Any) -> None:
    services.bucket.path_for(settings_key("lobby")).mkdir(parents=True)
    result = CliRunner().invoke(main, ["cameras", "add", "lobby", "--zone", LOWER_PART])
    assert result.exit_code == 1
    assert "Nothing saved: could not store camera lobby's settings in the bucket" in result.output
    assert camera_names(services) == {}


def test_settings_written_in_a_transaction_that_fails_are_put_back(services: Any) -> None:
    """The bucket write comes before the commit; if the commit (or anything after the write) fails, the
    previous settings are restored, so the bucket never holds a zone the database does not agree with."""
    from bot.camera_config import camera_transaction

    save_settings(services.bucket, "lobby", CameraSettings(zone=LOWER_PART_ZONE))
    with pytest.raises(RuntimeError, match="commit refused"), camera_transaction(services) as (db, save):
        db.add(Camera(slug="lobby", name="Lobby"))
        db.flush()
        save("lobby", CameraSettings())  # clears the zone...
        save("kitchen", CameraSettings(zone=((0, 0), (1, 0), (1, 1))))
        assert services.bucket.head(settings_key("lobby")) is None
        raise RuntimeError("commit refused")  # ...then the transaction fails
    assert load_settings(services.bucket, "lobby").zone == LOWER_PART_ZONE
    assert services.bucket.head(settings_key("kitchen")) is None
    assert camera_names(services) == {}
