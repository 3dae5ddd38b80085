"""Attacks on ``POST /sms`` and ``/sms/status``: forged and replayed signatures, rewritten field
boundaries, over-long fields, fuzzed signed bodies, and a database that cannot write."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from bot.models import Message
from cloud.models import BusEvent
from tests.attacks.conftest import twilio_form
from tests.bot.conftest import MEMBER, new_sid, sign
from tests.conftest import _pg_exec


def counts(services: Any) -> tuple[int, int]:
    """(inbound messages, bus events) stored so far."""
    with services.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")),
                s.scalar(select(func.count()).select_from(BusEvent)))


def boundary_rewrites(form: dict[str, str]) -> list[dict[str, str]]:
    """Every request that carries the same Twilio signature as ``form`` by moving one field boundary:
    the SDK signs ``name1value1name2value2...`` in name order, so a value may swallow the next pair."""
    names = sorted(form)
    out = []
    for i, name in enumerate(names[:-1]):
        nxt = names[i + 1]
        rewritten = {k: v for k, v in form.items() if k != nxt}
        rewritten[name] = form[name] + nxt + form[nxt]
        out.append(rewritten)
    return out


def test_a_captured_message_replayed_with_moved_boundaries_is_one_message(post_signed, services,
                                                                          people) -> None:
    form = twilio_form(MEMBER, "request cleaning kitchen")
    signature = sign(services.config.base_url + "/sms", form)
    assert post_signed(form, signature=signature).status_code == 200
    assert counts(services) == (1, 1)
    # The issue's replay first: MessageSid=<sid>NumMedia0 with NumMedia dropped (same signature).
    issue = {k: v for k, v in form.items() if k != "NumMedia"}
    issue["MessageSid"] = form["MessageSid"] + "NumMedia0"
    assert sign(services.config.base_url + "/sms", issue) == signature
    assert post_signed(issue, signature=signature).status_code == 400
    for rewritten in boundary_rewrites(form):
        assert sign(services.config.base_url + "/sms", rewritten) == signature  # still "valid"
        response = post_signed(rewritten, signature=signature)
        assert response.status_code in (200, 400), rewritten
    assert counts(services) == (1, 1)  # one SMS, one command: nothing a replay can add


def test_a_repeated_field_is_refused(post_signed, services, people) -> None:
    form = twilio_form(MEMBER, "status")
    doubled = [*form.items(), ("MessageSid", form["MessageSid"])]  # same signature: the SDK dedupes values
    assert sign(services.config.base_url + "/sms", form) == sign(services.config.base_url + "/sms",
                                                                   _multi(doubled))
    assert post_signed(doubled).status_code == 400
    assert counts(services) == (0, 0)


def _multi(pairs: list[tuple[str, str]]) -> Any:
    from werkzeug.datastructures import MultiDict

    return MultiDict(pairs)


BAD_FIELDS = [
    ("From", "+1" + "5" * 31), ("To", "+1" + "5" * 31), ("MessageSid", "SM" + "a" * 63),
    ("MessageSid", "SM" + "A" * 32), ("MessageSid", "SMS" + "a" * 32), ("SmsSid", "SM" + "b" * 32),
    ("From", "+1555 000 0002"), ("AccountSid", "AC" + "0" * 31), ("NumMedia", "0x1"),
]


def test_fields_of_the_wrong_shape_or_length_are_refused_at_the_edge(post_signed, services, people) -> None:
    for field, value in BAD_FIELDS:
        form = twilio_form(MEMBER, "status")
        form[field] = value
        if field == "MessageSid":  # the aliases follow, so only the shape is wrong
            form["SmsSid"] = form["SmsMessageSid"] = value
        response = post_signed(form)
        assert response.status_code == 400, (field, value)  # on PostgreSQL a long one was a 500
    assert counts(services) == (0, 0)


def test_a_status_callback_for_a_malformed_sid_is_refused(post_signed, services, people) -> None:
    for form in ({"MessageSid": "SM" + "a" * 70, "MessageStatus": "delivered"},
                 {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered", "ErrorCode": "x" * 40}):
        assert post_signed(form, "/sms/status").status_code == 400


FIELD_NAMES = st.sampled_from(["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "AccountSid",
                               "MediaUrl0", "X"])
FIELD_VALUES = st.one_of(st.text(max_size=80), st.just(MEMBER), st.builds(new_sid),
                         st.sampled_from(["status", "snapshot lobby", "STOP", "0", ""]))


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(real=st.booleans(), extra=st.lists(st.tuples(FIELD_NAMES, FIELD_VALUES), max_size=10))
def test_fuzzed_signed_bodies_never_break_the_webhook(post_signed, services, people, real: bool,
                                                      extra: list[tuple[str, str]]) -> None:
    """500 signed bodies per engine (1,000 in all): each is answered 200 or 400, never a 500, and what
    is stored has the shapes the edge promises."""
    pairs = [*(twilio_form().items() if real else ()), *extra]  # a real message, tampered with, or junk
    before = counts(services)[0]
    response = post_signed(pairs)
    assert response.status_code in (200, 400), (pairs, response.status_code)
    stored = counts(services)[0] - before
    assert stored in (0, 1)
    if response.status_code == 400:
        assert stored == 0
    with services.sessions() as s:
        rows = s.execute(select(Message.sid, Message.from_number).where(Message.direction == "in"))
        for sid, sender in rows:
            assert sid.startswith(("SM", "MM")) and len(sid) == 34 and len(sender) <= 32


@pytest.fixture
def broken_storage(services: Any, database_url: str) -> Any:
    """Makes the database refuse writes the way a full disk or a read-only database does: SQLite with no
    page to grow into ("database or disk is full"), PostgreSQL read-only ("read-only transaction")."""
    engine = services.engine

    def break_it() -> None:
        engine.dispose()
        if engine.dialect.name == "sqlite":
            @event.listens_for(engine, "connect")
            def _full(dbapi_conn, _record) -> None:  # noqa: ANN001
                pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
                dbapi_conn.execute(f"PRAGMA max_page_count={pages}")
            broken.append(_full)
        else:
            _pg_exec(f'ALTER DATABASE "{engine.url.database}" SET default_transaction_read_only = on')
        engine.dispose()

    def mend() -> None:
        engine.dispose()
        if engine.dialect.name == "sqlite":
            event.remove(engine, "connect", broken.pop())
        else:
            _pg_exec(f'ALTER DATABASE "{engine.url.database}" SET default_transaction_read_only = off')
        engine.dispose()

    broken: list[Any] = []
    return break_it, mend


def test_a_full_or_read_only_database_asks_twilio_to_retry_and_loses_nothing(
        post_signed, services, people, broken_storage, caplog) -> None:
    break_it, mend = broken_storage
    break_it()
    form = twilio_form(MEMBER, "x" * 1500 + " status")  # big enough to need a new page on SQLite
    answers = []
    with caplog.at_level(logging.ERROR, logger="bot.webhook"):
        for _ in range(40):  # SQLite fills its last page after a few rows; PostgreSQL refuses the first
            answers.append(post_signed(form))
            if answers[-1].status_code != 200:
                break
            form = twilio_form(MEMBER, form["Body"])
    refused = answers[-1]
    assert refused.status_code == 503
    assert refused.mimetype == "application/xml" and "<Response" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"].isdigit()
    assert all(a.status_code == 200 for a in answers[:-1])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"could not store /sms {form['MessageSid']}" in logged and "could not publish" not in logged
    stored_before = counts(services)
    mend()
    assert post_signed(form).status_code == 200  # Twilio's retry of the same message is taken once
    assert post_signed(form).status_code == 200
    assert counts(services) == (stored_before[0] + 1, stored_before[1] + 1)
