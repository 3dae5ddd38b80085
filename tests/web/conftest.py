"""Fixtures for the web tests: the app on a migrated database, an admin who can sign in, an API token,
and a building with a camera, a detection whose annotated snapshot is a real JPEG in the bucket."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import cv2
import numpy as np
import pytest
from flask.testing import FlaskClient

from bot.admin.auth import generate_api_token, generate_password, hash_api_token, hash_password
from bot.models import AdminAccount, ApiToken, Camera, Detection, Message, Role, Subscription, User
from cloud.db import utcnow

ADMIN_USER = "ada"
RESIDENT = "+15550000002"
RESIDENT_NAME = "Max Member"
CORB = "+15005550006"
SNAPSHOT_KEY = "snapshots/lobby/2026-11-27T10-00-00Z.jpg"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def jpeg(width: int = 640, height: int = 360, label: str = "lobby") -> bytes:
    """A real JPEG: a dark scene with a boxed 'person', as the detector annotates its best frame."""
    image = np.full((height, width, 3), (46, 38, 30), np.uint8)
    cv2.rectangle(image, (0, int(height * .7)), (width, height), (70, 80, 90), -1)
    cv2.rectangle(image, (int(width * .42), int(height * .25)), (int(width * .56), int(height * .85)),
                  (80, 200, 120), 3)
    cv2.putText(image, f"person 0.91 - {label}", (int(width * .42), int(height * .22)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.6, (80, 200, 120), 2)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return data.tobytes()


@pytest.fixture
def admin_password(services: Any) -> str:
    password = generate_password()
    with services.session() as db:
        db.add(AdminAccount(username=ADMIN_USER, password_hash=hash_password(password)))
    return password


def login(client: FlaskClient, password: str, username: str = ADMIN_USER, **kwargs: Any) -> Any:
    token = csrf_token(client.get("/admin/login").get_data(as_text=True))
    return client.post("/admin/login", data={"csrf_token": token, "username": username,
                                             "password": password}, **kwargs)


@pytest.fixture
def admin_client(client: FlaskClient, admin_password: str) -> FlaskClient:
    response = login(client, admin_password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def page_token(client: FlaskClient, path: str = "/admin/settings") -> str:
    """The CSRF token a signed-in admin's page carries."""
    return csrf_token(client.get(path).get_data(as_text=True))


@pytest.fixture
def api_token(services: Any) -> str:
    token = generate_api_token()
    with services.session() as db:
        db.add(ApiToken(name="tests", token_hash=hash_api_token(token)))
    return token


@pytest.fixture
def building(services: Any) -> dict[str, Any]:
    """A lobby camera with a day of detections (the latest with a snapshot), a subscribed resident,
    and an alert MMS sent to them."""
    now = utcnow()
    picture = jpeg()
    services.bucket.put(SNAPSHOT_KEY, picture, "image/jpeg")
    with services.session() as db:
        lobby = Camera(slug="lobby", name="Lobby", area="ground floor",
                       last_segment_key="cameras/lobby/2026-11-27T10-00-00Z.mkv", last_segment_at=now)
        kitchen = Camera(slug="kitchen", name="Kitchen", area="kitchen")
        resident = User(phone=RESIDENT, name=RESIDENT_NAME, role=Role.member)
        db.add_all([lobby, kitchen, resident])
        db.flush()
        resident.subscriptions.append(Subscription(camera_id=lobby.id))
        for hour in range(23, 0, -1):
            start = now - timedelta(hours=hour)
            peak = (hour * 7) % 5
            db.add(Detection(camera_id=lobby.id, segment_key=f"cameras/lobby/{hour}.mkv", etag=f"e{hour}",
                             start_time=start, end_time=start + timedelta(seconds=60), peak=peak,
                             mean=peak / 2, unique_people=peak, counts=json.dumps([peak, peak])))
        latest = Detection(camera_id=lobby.id, segment_key="cameras/lobby/latest.mkv", etag="latest",
                           start_time=now - timedelta(minutes=2), end_time=now - timedelta(minutes=1),
                           peak=3, mean=2.5, unique_people=3, counts="[2, 3, 2]", snapshot_key=SNAPSHOT_KEY,
                           model="nanodet-m")
        db.add(latest)
        db.add(Message(direction="out", sid="SMalert1", from_number=CORB, to_number=RESIDENT,
                       body="Corb alert: 3 people at Lobby (10:00 UTC). Text UNSUBSCRIBE LOBBY to stop these "
                            "alerts.", media_key=SNAPSHOT_KEY, status="delivered"))
        db.add(Message(direction="out", sid="SMsnap1", from_number="corb", to_number=RESIDENT,
                       body="Lobby at 10:00 UTC: 3 people in this picture, the busiest moment of the latest "
                            "video. Link expires in 1 hour.", media_key=SNAPSHOT_KEY, status="sent"))
        db.flush()
        return {"camera_id": lobby.id, "kitchen_id": kitchen.id, "user_id": resident.id,
                "detection_id": latest.id, "snapshot": picture}
