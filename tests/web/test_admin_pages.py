"""The admin pages do what they say: people, cameras, cleaning, messages, events, settings, the dashboard."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.models import Camera, CleaningRequest, Role, Setting, Subscription, User
from cloud.db import utcnow
from cloud.models import BusEvent, DeadLetter, Invocation
from tests.web.conftest import RESIDENT, RESIDENT_NAME, SNAPSHOT_KEY, page_token


def card(html: str, slug: str) -> str:
    start = html.index(f'data-camera="{slug}"')
    return html[start:html.index("</article>", start)]


def test_dashboard_shows_each_camera_with_snapshot_people_now_and_plot(admin_client: FlaskClient,
                                                                      building: dict) -> None:
    html = admin_client.get("/admin/").get_data(as_text=True)
    lobby, kitchen = card(html, "lobby"), card(html, "kitchen")
    assert f"/admin/media/{SNAPSHOT_KEY}" in lobby
    assert '<div class="value big">2</div>' in lobby  # the latest segment's last analysed frame
    assert "1 min ago" in lobby  # last seen
    assert lobby.count('class="point"') == 24 and "<svg" in lobby and "peak 4" in lobby
    assert "No snapshot yet" in kitchen and "No detections in the last 24 hours" in kitchen
    alerts = html[html.index("Recent alerts"):]
    assert RESIDENT_NAME in alerts and "Corb alert: 3 people at Lobby" in alerts
    assert "in this picture" not in alerts  # the answer to "snapshot lobby" is not an alert


def test_add_edit_and_remove_a_person_with_subscriptions(admin_client: FlaskClient, services: Any,
                                                        building: dict) -> None:
    token = page_token(admin_client, "/admin/people/new")
    response = admin_client.post("/admin/people/new", data={
        "csrf_token": token, "name": "Cleo Cleaner", "phone": "+1 (555) 000-0003", "role": "cleaner",
        "subscriptions": ["all", str(building["kitchen_id"])]})
    assert response.status_code == 302
    with services.session() as db:
        cleo = db.scalars(select(User).where(User.name == "Cleo Cleaner")).one()
        assert cleo.phone == "+15550000003" and cleo.role is Role.cleaner and not cleo.opted_out
        assert sorted((s.camera_id or 0) for s in cleo.subscriptions) == [0, building["kitchen_id"]]
    people = admin_client.get("/admin/people").get_data(as_text=True)
    assert "Cleo Cleaner" in people and "All cameras" in people

    form = admin_client.get(f"/admin/people/{cleo.id}").get_data(as_text=True)
    checked = set(re.findall(r'<input checked id="subscriptions-\d+" name="subscriptions" type="checkbox" '
                             r'value="(\w+)"', form))
    assert checked == {"all", str(building["kitchen_id"])}
    response = admin_client.post(f"/admin/people/{cleo.id}", data={
        "csrf_token": token, "name": "Cleo C.", "phone": "+15550000003", "role": "admin", "opted_out": "y",
        "subscriptions": [str(building["camera_id"])]})
    assert response.status_code == 302
    with services.session() as db:
        cleo = db.get(User, cleo.id)
        assert (cleo.name, cleo.role, cleo.opted_out) == ("Cleo C.", Role.admin, True)
        assert [s.camera_id for s in cleo.subscriptions] == [building["camera_id"]]

    response = admin_client.post(f"/admin/people/{cleo.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    with services.session() as db:
        assert db.get(User, cleo.id) is None
        assert db.scalar(select(func.count(Subscription.id)).where(Subscription.user_id == cleo.id)) == 0


def test_person_form_rejects_bad_and_duplicate_numbers(admin_client: FlaskClient, services: Any,
                                                      building: dict) -> None:
    token = page_token(admin_client, "/admin/people/new")
    bad = admin_client.post("/admin/people/new", data={"csrf_token": token, "name": "X", "phone": "555-1234",
                                                       "role": "member"})
    assert bad.status_code == 200 and "international format" in bad.get_data(as_text=True)
    dup = admin_client.post("/admin/people/new", data={"csrf_token": token, "name": "Y", "phone": RESIDENT,
                                                       "role": "member"})
    assert dup.status_code == 200 and f"already belongs to {RESIDENT_NAME}" in dup.get_data(as_text=True)
    role = admin_client.post("/admin/people/new", data={"csrf_token": token, "name": "Z",
                                                        "phone": "+15550000077", "role": "superuser"})
    assert role.status_code == 200 and "Not a valid choice" in role.get_data(as_text=True)
    with services.session() as db:
        assert db.scalar(select(func.count(User.id))) == 1


def test_add_and_edit_a_camera_whose_slug_is_fixed(admin_client: FlaskClient, services: Any,
                                                  building: dict) -> None:
    token = page_token(admin_client, "/admin/cameras/new")
    invalid = admin_client.post("/admin/cameras/new", data={"csrf_token": token, "slug": "Back Door!",
                                                            "name": "B"})
    assert invalid.status_code == 200 and "Lower-case letters" in invalid.get_data(as_text=True)
    response = admin_client.post("/admin/cameras/new", data={"csrf_token": token, "slug": "back-door",
                                                             "name": "Back door", "area": "courtyard"})
    assert response.status_code == 302
    dup = admin_client.post("/admin/cameras/new",
                            data={"csrf_token": token, "slug": "lobby", "name": "Again"})
    assert "already uses lobby" in dup.get_data(as_text=True)
    response = admin_client.post(f"/admin/cameras/{building['camera_id']}", data={
        "csrf_token": token, "slug": "renamed", "name": "Main lobby", "area": "entrance"})
    assert response.status_code == 302
    with services.session() as db:
        cameras = {c.slug: (c.name, c.area) for c in db.scalars(select(Camera))}
    assert cameras == {"lobby": ("Main lobby", "entrance"), "kitchen": ("Kitchen", "kitchen"),
                       "back-door": ("Back door", "courtyard")}
    listing = admin_client.get("/admin/cameras").get_data(as_text=True)
    assert "cameras/lobby/2026-11-27T10-00-00Z.mkv" in listing  # the last segment processed


def test_cleaning_requests_open_and_done_and_closing_one(admin_client: FlaskClient, services: Any,
                                                        building: dict) -> None:
    with services.session() as db:
        db.add_all([
            CleaningRequest(area="kitchen", note="spilled coffee", requester_id=building["user_id"],
                            report="Kitchen, last 24 h: 12 people, busiest 08:00-09:00."),
            CleaningRequest(area="lobby", note="mud", status="done", closed_at=utcnow(),
                            report="Lobby: quiet."),
        ])
    html = admin_client.get("/admin/cleaning").get_data(as_text=True)
    open_part, done_part = html.split("<h2>Done</h2>")
    assert "spilled coffee" in open_part and RESIDENT_NAME in open_part and "busiest 08:00-09:00" in open_part
    assert "mud" in done_part and "Lobby: quiet." in done_part
    with services.session() as db:
        request_id = db.scalars(select(CleaningRequest.id).where(CleaningRequest.status == "open")).one()
    response = admin_client.post(f"/admin/cleaning/{request_id}/close", data={"csrf_token": page_token(
        admin_client, "/admin/cleaning")}, follow_redirects=True)
    assert f"Closed request #{request_id}." in response.get_data(as_text=True)
    with services.session() as db:
        closed = db.get(CleaningRequest, request_id)
        assert closed.status == "done" and closed.closed_at is not None


def test_messages_with_thumbnails_and_filtered_by_phone(admin_client: FlaskClient, services: Any,
                                                       building: dict) -> None:
    from bot.models import Message

    with services.session() as db:
        db.add(Message(direction="in", sid="SMin1", from_number=RESIDENT, to_number="corb", body="status",
                       status="received"))
        db.add(Message(direction="in", sid="SMin2", from_number="+15559999999", to_number="corb",
                       body="who is this <script>", status="received"))
    html = admin_client.get("/admin/messages").get_data(as_text=True)
    assert f'src="/admin/media/{SNAPSHOT_KEY}"' in html and "who is this &lt;script&gt;" in html
    filtered = admin_client.get("/admin/messages", query_string={"phone": "+1 555 000 0002"}).get_data(
        as_text=True)
    assert "Corb alert: 3 people at Lobby" in filtered and ">status<" in filtered
    assert "who is this" not in filtered


def test_events_list_and_replay_of_a_dead_letter(admin_client: FlaskClient, services: Any) -> None:
    payload = {"source": "corb.sms", "detail": {"command_type": "status", "sender": RESIDENT}}
    with services.session() as db:
        db.add(BusEvent(id="evt-1", source="corb.sms", detail_type="command", body=json.dumps(payload),
                        status="failed", targets=1))
        db.add(Invocation(request_id="req-1", function="bot.handlers.status.handle", trigger="events",
                          payload=json.dumps(payload), status="dead_letter", attempts=3, last_error="boom"))
        db.add(DeadLetter(request_id="req-1", function="bot.handlers.status.handle",
                          payload=json.dumps(payload), error="KeyError: 'sender'", attempts=3))
    html = admin_client.get("/admin/events").get_data(as_text=True)
    assert "KeyError: &#39;sender&#39;" in html and "dead letter" in html  # the letter, the invocation
    assert "&#34;command_type&#34;: &#34;status&#34;" in html and "<code>corb.sms</code>" in html  # the event
    with services.session() as db:
        letter_id = db.scalars(select(DeadLetter.id)).one()
    response = admin_client.post(f"/admin/events/dead-letters/{letter_id}/replay",
                                 data={"csrf_token": page_token(admin_client, "/admin/events")},
                                 follow_redirects=True)
    assert f"Replayed dead letter #{letter_id}" in response.get_data(as_text=True)
    with services.session() as db:
        assert db.get(DeadLetter, letter_id).replayed_at is not None
        replay = db.scalars(select(Invocation).where(Invocation.trigger == "replay")).one()
        assert replay.function == "bot.handlers.status.handle" and json.loads(replay.payload) == payload
        original = db.scalars(select(Invocation.status).where(Invocation.request_id == "req-1")).one()
        assert original == "replayed"
    assert admin_client.post("/admin/events/dead-letters/999/replay", data={
        "csrf_token": page_token(admin_client, "/admin/events")}).status_code == 404


def test_settings_saved_and_read_back(admin_client: FlaskClient, services: Any) -> None:
    html = admin_client.get("/admin/settings").get_data(as_text=True)
    assert 'value="600"' in html and 'value="30"' in html and 'value="120"' in html  # the defaults
    token = page_token(admin_client)
    response = admin_client.post("/admin/settings", data={"csrf_token": token, "alert_cooldown_s": "900",
                                                          "retention_days": "14", "camera_grace_s": "300"})
    assert response.status_code == 302
    html = admin_client.get("/admin/settings").get_data(as_text=True)
    assert 'value="900"' in html and 'value="14"' in html and 'value="300"' in html
    bad = admin_client.post("/admin/settings", data={"csrf_token": token, "alert_cooldown_s": "-1",
                                                     "retention_days": "0", "camera_grace_s": "5"})
    assert bad.status_code == 200 and bad.get_data(as_text=True).count('class="errors"') == 3
    with services.session() as db:
        assert dict(db.execute(select(Setting.key, Setting.value)).all()) == {
            "alert_cooldown_s": "900", "retention_days": "14", "camera_grace_s": "300"}
    # The bot's handlers read these keys the same way.
    from bot.handlers import setting_int

    with services.session() as db:
        assert setting_int(db, "alert_cooldown_s", 600) == 900


def test_admin_errors_are_pages_of_the_site(admin_client: FlaskClient) -> None:
    response = admin_client.get("/admin/people/4242")
    assert response.status_code == 404 and "Back to the dashboard" in response.get_data(as_text=True)


def test_events_say_what_happened_in_plain_words(admin_client: FlaskClient, services: Any,
                                                 building: dict) -> None:
    from cloud.events import destination_event, destination_record

    text = {"source": "corb.sms", "detail-type": "command",
            "detail": {"command_type": "status", "sender": RESIDENT, "text": "status lobby"}}
    result = {"command_type": "cleaning_closed", "request_id": 4}
    record = destination_record(function="bot.handlers.cleaning.close_request", request_id="r1",
                                request_payload={}, response_payload=result, success=True, attempts=1)
    closed = destination_event(record, success=True)
    with services.session() as db:
        db.add(BusEvent(id="evt-t", source="corb.sms", detail_type="command", body=json.dumps(text),
                        status="delivered", targets=1))
        db.add(BusEvent(id="evt-c", source="lambda", detail_type=closed["detail-type"],
                        body=json.dumps(closed), status="unmatched", targets=0))
    html = admin_client.get("/admin/events").get_data(as_text=True)
    happened = html[html.index("What happened</h2>"):]
    assert f"{RESIDENT_NAME} asked for the status: &#34;status lobby&#34;" in happened
    assert "Cleaning request #4 closed" in happened
    assert ">handled<" in happened and ">nothing to do<" in happened
    # The runtime's words are still there, one click away, not in the sentence.
    assert "<summary>Details</summary>" in happened
    assert "Lambda Function Invocation Result - Success" in happened
    assert "Invocation Success" not in happened and "\u2192 cleaning_closed" not in happened


def test_messages_name_corb_one_way_and_come_a_page_at_a_time(admin_client: FlaskClient, services: Any,
                                                               building: dict) -> None:
    from bot.models import Message

    with services.session() as db:
        db.add_all([Message(direction="out", sid=f"SMp{i}", from_number="+15550001000" if i % 2 else "corb",
                            to_number=RESIDENT, body=f"reply {i}", status="sent") for i in range(60)])
    html = admin_client.get("/admin/messages").get_data(as_text=True)
    assert "+15550001000</span>" not in html and ">corb<" not in html
    named = html.count('<span title="+15550001000">Corb</span>'), html.count('<span title="corb">Corb</span>')
    assert named[0] == named[1] > 0
    assert html.count('class="body-cell"') == 50 and "reply 59" in html and "reply 9<" not in html
    older = re.search(r'href="(/admin/messages\?before=\d+)">Older messages', html).group(1)
    page2 = admin_client.get(older).get_data(as_text=True)
    assert "reply 9<" in page2 and "reply 10<" not in page2 and "Newest" in page2
    assert "Older messages" not in page2  # 62 messages: the second page holds the last 12


def test_the_root_leads_to_the_sign_in(client: FlaskClient, building: dict) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert client.get("/admin/").headers["Location"].startswith("/admin/login")
    login = client.get("/admin/login").get_data(as_text=True)
    assert "corb admin create" in login
