"""Every instruction Corb texts ("Text UNSUBSCRIBE KITCHEN to undo"), sent back verbatim through the
real webhook, bus and handlers, does what the text said it would, and nothing more."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot import replies
from bot.models import Camera, CleaningRequest, Subscription, User
from cloud.models import Invocation
from tests.bot.conftest import ADMIN, CLEANER, MEMBER, analysed, outbox, segment_result, settle

# "Text DONE 7 when finished", "text UNSUBSCRIBE ALL, then ...": the upper-case words after "text".
INSTRUCTION = re.compile(r"\b(?:[Tt]ext|Try) ((?:[A-Z][A-Z0-9-]*|\d+)(?: (?:[A-Z][A-Z0-9-]*|\d+))*)")


def instructions(body: str) -> list[str]:
    return INSTRUCTION.findall(body)


def last_reply(services: Any, phone: str) -> str:
    return outbox(services, phone)[-1].body


def texting(sms: Any, runtime: Any, services: Any):  # noqa: ANN201 - a small closure
    def send(phone: str, body: str) -> str:
        before = len(outbox(services, phone))
        sms(phone, body)
        settle(runtime)
        after = outbox(services, phone)
        assert len(after) > before, f"no answer to {body!r}"
        return after[-1].body

    return send


def subscriptions(services: Any, phone: str) -> set[str | None]:
    with services.sessions() as s:
        rows = s.execute(select(Camera.slug).select_from(Subscription)
                         .join(User, User.id == Subscription.user_id)
                         .outerjoin(Camera, Camera.id == Subscription.camera_id).where(User.phone == phone))
        return {slug for (slug,) in rows}


def opted_out(services: Any, phone: str) -> bool:
    with services.sessions() as s:
        return bool(s.scalar(select(User.opted_out).where(User.phone == phone)))


def test_the_undo_of_a_subscription_undoes_only_it(sms, services, people, runtime) -> None:
    send = texting(sms, runtime, services)
    send(MEMBER, "subscribe lobby")
    answer = send(MEMBER, "subscribe kitchen")
    assert answer == ("Subscribed: you will get a picture when people appear on Kitchen. "
                      "Text UNSUBSCRIBE KITCHEN to undo.")
    [undo] = instructions(answer)
    assert send(MEMBER, undo) == replies.unsubscribed("Kitchen")
    assert subscriptions(services, MEMBER) == {"lobby"} and not opted_out(services, MEMBER)
    assert send(MEMBER, "status lobby").startswith("Lobby: ")  # still texted: not opted out


def test_the_undo_of_all_and_of_an_area(sms, services, people, runtime) -> None:
    send = texting(sms, runtime, services)
    with services.session() as s:
        s.add_all([Camera(slug="cam-7", name="Upstairs hall", area="second floor"),
                   Camera(slug="cam-8", name="Stairs", area="second floor")])
    answer = send(ADMIN, "subscribe second floor")
    [undo] = instructions(answer)
    assert undo == "UNSUBSCRIBE SECOND FLOOR"
    send(ADMIN, "subscribe all")
    assert subscriptions(services, ADMIN) == {"cam-7", "cam-8", None}
    send(ADMIN, undo)
    assert subscriptions(services, ADMIN) == {None}
    [undo_all] = instructions(last_reply_of(send, ADMIN, "subscribe all", services))
    send(ADMIN, undo_all)
    assert subscriptions(services, ADMIN) == set() and not opted_out(services, ADMIN)


def last_reply_of(send: Any, phone: str, body: str, services: Any) -> str:
    """Ask again once the earlier subscription is gone, so the answer is a fresh "Subscribed"."""
    with services.session() as s:
        s.execute(Subscription.__table__.delete().where(
            Subscription.user_id == s.scalar(select(User.id).where(User.phone == phone))))
    return send(phone, body)


def test_an_alert_says_how_to_stop_exactly_those_alerts(sms, services, people, runtime, now) -> None:
    send = texting(sms, runtime, services)
    send(MEMBER, "subscribe kitchen")
    send(ADMIN, "subscribe all")
    analysed(services, runtime, segment_result("kitchen", now - timedelta(minutes=1), counts=[0, 2]))
    to_member, to_admin = outbox(services, MEMBER)[-1].body, outbox(services, ADMIN)[-1].body
    [member_undo], [admin_undo] = instructions(to_member), instructions(to_admin)
    assert (member_undo, admin_undo) == ("UNSUBSCRIBE KITCHEN", "UNSUBSCRIBE ALL")
    send(MEMBER, member_undo)
    send(ADMIN, admin_undo)
    assert subscriptions(services, MEMBER) == set() == subscriptions(services, ADMIN)
    assert not opted_out(services, MEMBER) and not opted_out(services, ADMIN)


def test_follows_all_explains_a_way_that_works(sms, services, people, runtime) -> None:
    send = texting(sms, runtime, services)
    send(MEMBER, "subscribe all")
    answer = send(MEMBER, "unsubscribe lobby")
    assert answer == replies.follows_all("Lobby")
    assert instructions(answer) == ["UNSUBSCRIBE ALL"] and "then SUBSCRIBE <camera>" in answer
    send(MEMBER, "UNSUBSCRIBE ALL")
    send(MEMBER, "SUBSCRIBE kitchen")
    assert subscriptions(services, MEMBER) == {"kitchen"}


def test_stop_start_and_help(sms, services, people, runtime) -> None:
    send = texting(sms, runtime, services)
    stopped = send(MEMBER, "STOP")
    assert instructions(stopped) == ["START"] and opted_out(services, MEMBER)
    started = send(MEMBER, "START")
    assert started == replies.STARTED and not opted_out(services, MEMBER)
    assert instructions(started) == ["HELP"] and send(MEMBER, "HELP") == replies.HELP
    unknown = send(MEMBER, "blorp")
    assert instructions(unknown) == ["HELP"]


def test_a_cleaning_request_without_an_area_asks_which_and_the_answer_works(sms, services, people,
                                                                             runtime) -> None:
    send = texting(sms, runtime, services)
    question = send(MEMBER, "request cleaning")
    assert question == replies.which_area(["kitchen", "lobby"])
    with services.sessions() as s:
        assert s.scalars(select(CleaningRequest)).first() is None
    assert outbox(services, CLEANER) == []  # nothing dispatched
    [verb] = instructions(question)
    confirmation = send(MEMBER, f"{verb} kitchen")
    assert confirmation.startswith("Cleaning request #1 sent to 1 cleaner.")
    report = outbox(services, CLEANER)[-1].body
    assert report.startswith("Cleaning request #1: kitchen.")
    [done] = instructions(report)
    assert done == "DONE 1"
    assert send(CLEANER, done) == replies.request_closed(1)
    assert last_reply(services, MEMBER) == replies.request_done(1, "kitchen", "Cleo Cleaner")


def test_a_building_with_one_area_needs_no_question(sms, services, people, runtime) -> None:
    with services.session() as s:
        s.execute(Camera.__table__.update().values(area="ground floor"))
    send = texting(sms, runtime, services)
    assert send(MEMBER, "request cleaning").startswith("Cleaning request #1 sent")
    assert outbox(services, CLEANER)[-1].body.startswith("Cleaning request #1: ground floor.")


def test_done_without_a_number_closes_the_only_open_request_or_asks_which(sms, services, people,
                                                                          runtime) -> None:
    send = texting(sms, runtime, services)
    assert send(CLEANER, "done") == replies.NONE_OPEN
    send(MEMBER, "request cleaning lobby")
    assert send(CLEANER, "done") == replies.request_closed(1)
    with services.sessions() as s:  # the function's result names the request it closed, for the Events page
        results = [r for (r,) in s.execute(select(Invocation.result).where(
            Invocation.function == "bot.handlers.cleaning.close_request"))]
    assert any('"request_id": 1' in (r or "") for r in results), results
    send(MEMBER, "request cleaning lobby")
    send(ADMIN, "request cleaning kitchen")
    answer = send(CLEANER, "done")
    assert answer == "Which request? Open: #2, #3. Text DONE and its number, e.g. DONE 2."
    example = answer.split("e.g. ")[1].removesuffix(".")  # the example to follow: "DONE 2"
    assert send(CLEANER, example) == replies.request_closed(2)
    assert send(CLEANER, "done") == replies.request_closed(3)


def test_the_camera_list_suggests_a_status_that_works(sms, services, people, runtime) -> None:
    send = texting(sms, runtime, services)
    listing = send(MEMBER, "cameras")
    [suggestion] = instructions(listing)
    assert suggestion == "STATUS KITCHEN"
    assert send(MEMBER, suggestion) == "Kitchen: no video analysed yet."
