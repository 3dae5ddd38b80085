"""The REST API: bearer tokens, JSON errors everywhere under /api/, time filters, and a fuzz run of
every operation against the API's own OpenAPI document (schemathesis)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import select

from bot.api.openapi import openapi_document
from bot.models import ApiToken, CleaningRequest
from cloud.db import utcnow
from cloud.models import BusEvent
from tests.web.conftest import SNAPSHOT_KEY


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic YWRhOnB3", "Bearer corb_not-a-token"])
def test_requests_without_a_valid_token_get_401_json(client: FlaskClient, building: dict,
                                                     header: str | None) -> None:
    response = client.get("/api/cameras", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.json["status"] == 401 and response.json["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="corb"'
    assert "lobby" not in response.get_data(as_text=True)


def test_cameras_with_their_latest_detection(client: FlaskClient, building: dict, api_token: str,
                                             services: Any) -> None:
    response = client.get("/api/cameras", headers=auth(api_token))
    assert response.status_code == 200
    cameras = {c["slug"]: c for c in response.json["cameras"]}
    lobby = cameras["lobby"]
    assert lobby["latest_snapshot"] == "/api/cameras/lobby/latest.jpg"
    assert lobby["latest_detection"]["peak"] == 3 and lobby["latest_detection"]["counts"] == [2, 3, 2]
    assert lobby["latest_detection"]["end_time"].endswith("Z")
    assert cameras["kitchen"]["latest_detection"] is None and cameras["kitchen"]["latest_snapshot"] is None
    assert client.get("/api/cameras/kitchen", headers=auth(api_token)).json["name"] == "Kitchen"
    with services.session() as db:  # the token's last use is recorded for `corb api token list`
        assert db.scalars(select(ApiToken.last_used_at)).one() is not None


def test_latest_snapshot_is_the_bucket_picture(client: FlaskClient, building: dict, api_token: str) -> None:
    response = client.get("/api/cameras/lobby/latest.jpg", headers=auth(api_token))
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.data == building["snapshot"] and response.data[:3] == b"\xff\xd8\xff"
    missing = client.get("/api/cameras/kitchen/latest.jpg", headers=auth(api_token))
    assert missing.status_code == 404 and missing.json == {"status": 404,
                                                           "message": "camera 'kitchen' has no snapshot yet"}


def test_detections_filtered_by_time_and_camera(client: FlaskClient, building: dict, api_token: str) -> None:
    now = utcnow()
    everything = client.get("/api/detections", headers=auth(api_token)).json["detections"]
    assert len(everything) == 24 and everything[0]["id"] == building["detection_id"]  # newest first
    since = (now - timedelta(hours=3, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = client.get("/api/detections", query_string={"since": since}, headers=auth(api_token)).json
    assert len(recent["detections"]) == 4  # 3 h, 2 h, 1 h ago and the latest
    offset = (now - timedelta(hours=3, minutes=30) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    assert len(client.get("/api/detections", query_string={"since": offset},
                          headers=auth(api_token)).json["detections"]) == 4  # the same instant, another zone
    until = (now - timedelta(hours=20, minutes=30)).isoformat() + "z"  # any fraction digits, lower-case z
    old = client.get("/api/detections", query_string={"until": until, "limit": "2"},
                     headers=auth(api_token)).json
    assert [d["segment_key"] for d in old["detections"]] == ["cameras/lobby/21.mkv", "cameras/lobby/22.mkv"]
    kitchen = client.get("/api/detections", query_string={"camera": "kitchen"}, headers=auth(api_token))
    assert kitchen.json == {"detections": []}
    unknown = client.get("/api/detections", query_string={"camera": "nope"}, headers=auth(api_token))
    assert unknown.status_code == 404


@pytest.mark.parametrize("query", [
    {"since": "yesterday"}, {"until": "2026-13-01T00:00:00Z"}, {"since": "1700000000"}, {"since": ""},
    {"since": "2026-11-27T10:00:00"}, {"until": "2026-11-27"}, {"until": "2026-02-30T10:00:00Z"},
    {"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"limit": ""}, {"camera": "lob\x00by"},
    {"sinse": "2026-11-27T10:00:00Z"}])
def test_bad_query_values_are_400_json(client: FlaskClient, building: dict, api_token: str,
                                       query: dict[str, str]) -> None:
    response = client.get("/api/detections", query_string=query, headers=auth(api_token))
    assert response.status_code == 400
    assert response.json["status"] == 400 and response.json["message"]


def test_events_and_cleaning_requests(client: FlaskClient, services: Any, building: dict,
                                      api_token: str) -> None:
    body = {"id": "e1", "source": "corb.sms", "detail-type": "command", "detail": {"command_type": "status"}}
    with services.session() as db:
        db.add(BusEvent(id="e1", source="corb.sms", detail_type="command", body=json.dumps(body),
                        status="delivered", targets=1))
        db.add(BusEvent(id="e2", source="lambda", detail_type="x", body="{}", status="unmatched"))
        db.add(CleaningRequest(area="kitchen", note="crumbs", requester_id=building["user_id"]))
        db.add(CleaningRequest(area="lobby", note="mud", status="done", closed_at=utcnow(), report="ok"))
    events = client.get("/api/events", query_string={"source": "corb.sms"}, headers=auth(api_token)).json
    assert [(e["id"], e["detail"]) for e in events["events"]] == [("e1", {"command_type": "status"})]
    done = client.get("/api/cleaning-requests", query_string={"status": "done"}, headers=auth(api_token)).json
    assert [(r["note"], r["report"]) for r in done["cleaning_requests"]] == [("mud", "ok")]
    everyone = client.get("/api/cleaning-requests", headers=auth(api_token)).json["cleaning_requests"]
    assert {r["requester"] for r in everyone} == {"Max Member", None}
    assert client.get("/api/cleaning-requests", query_string={"status": "lost"},
                      headers=auth(api_token)).status_code == 400


def test_errors_under_api_are_json_even_404_405_and_500(services: Any, building: dict, api_token: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import create_app

    app = create_app(services)  # not TESTING: an exception becomes a 500 response, as in production
    client = app.test_client()
    assert client.get("/api/nowhere", headers=auth(api_token)).json == {
        "status": 404, "message": client.get("/api/nowhere").json["message"]}
    response = client.post("/api/cameras", headers=auth(api_token))
    assert response.status_code == 405 and response.json["status"] == 405
    assert "GET" in response.headers["Allow"]

    def broken(*args: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr("bot.api.views.camera_json", broken)
    response = client.get("/api/cameras", headers=auth(api_token))
    assert response.status_code == 500
    assert response.json == {"status": 500, "message": "internal server error"}  # no internals leak


def test_openapi_document_is_public_and_describes_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").json
    assert document == json.loads(json.dumps(openapi_document()))
    assert document["openapi"].startswith("3.")
    described = {path.replace("{slug}", "<slug>") for path in document["paths"]}
    routes = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/api/")} - {"/api/openapi.json"}
    assert described == routes
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}


class CurrentApp:
    """A WSGI app standing for the test's own: the schema is made at import, each test's app later."""

    app: Flask | None = None

    def __call__(self, environ: dict, start_response: Any) -> Any:
        assert self.app is not None
        return self.app(environ, start_response)


CURRENT = CurrentApp()
# The document the app serves (test_openapi_document_is_public... checks they are the same).
schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = CURRENT  # every request, the checks' own probes included, goes to the app in-process


@schema.parametrize()
# The app (and its database) is shared by a test's examples on purpose: the API is read-only.
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_api_conforms_to_its_openapi_document(case: Any, app: Flask, building: dict, api_token: str) -> None:
    """No 500s, and every response (status, content type, body) matches the document."""
    CURRENT.app = app
    case.call_and_validate(headers=auth(api_token))


def test_snapshot_key_is_not_a_public_path(client: FlaskClient, building: dict) -> None:
    assert client.get(f"/{SNAPSHOT_KEY}").status_code == 404
    assert client.get(f"/static/../var/bucket/{SNAPSHOT_KEY}").status_code == 404
