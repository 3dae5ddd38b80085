"""first_time: a dedupe key claimed in the caller's transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from cloud.db import utcnow
from cloud.idempotency import first_time, purge, seen, stored_key
from cloud.models import ProcessedKey


def test_first_time_once_per_scope_and_key(sessions: sessionmaker) -> None:
    with sessions() as s, s.begin():
        assert first_time(s, "twilio-sid", "SM123") is True
        assert first_time(s, "twilio-sid", "SM123") is False  # same transaction
        assert first_time(s, "event", "SM123") is True  # another scope
    with sessions() as s, s.begin():
        assert first_time(s, "twilio-sid", "SM123") is False  # a later delivery
        assert seen(s, "twilio-sid", "SM123") and not seen(s, "twilio-sid", "SM124")


def test_a_rolled_back_claim_is_not_kept(sessions: sessionmaker) -> None:
    """The key commits with the handler's effect, or not at all: a failed handler may run again."""
    with pytest.raises(RuntimeError), sessions() as s, s.begin():
        assert first_time(s, "s3-notify", "bucket:key:etag")
        raise RuntimeError("the handler failed after claiming")
    with sessions() as s, s.begin():
        assert first_time(s, "s3-notify", "bucket:key:etag") is True


def test_long_keys_are_hashed() -> None:
    key = "cameras/" + "x" * 600 + ".mkv"
    stored = stored_key("s3-notify", key)
    assert len(stored) <= 512 and stored.startswith("s3-notify:sha256:")
    assert stored == stored_key("s3-notify", key) != stored_key("s3-notify", key + "y")
    assert stored_key("event", "abc") == "event:abc"
    with pytest.raises(ValueError, match="scope"):
        stored_key("a:b", "k")


def test_long_keys_dedupe(sessions: sessionmaker) -> None:
    key = "k" * 1000
    with sessions() as s, s.begin():
        assert first_time(s, "scope", key) and not first_time(s, "scope", key)


def test_concurrent_claims_of_one_key(sessions: sessionmaker) -> None:
    """A second claimer waits for the first transaction and then sees the key: exactly one wins."""
    results: list[bool] = []
    first = sessions()
    first.begin()
    assert first_time(first, "twilio-sid", "SM-race")

    def second() -> None:
        with sessions() as s, s.begin():
            results.append(first_time(s, "twilio-sid", "SM-race"))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive() and results == []  # waiting on the first transaction
    first.commit()
    first.close()
    thread.join(10)
    assert results == [False]


def test_purge_old_keys(sessions: sessionmaker) -> None:
    with sessions() as s, s.begin():
        for scope, key in (("event", "old"), ("event", "new"), ("s3-notify", "old")):
            first_time(s, scope, key)
        s.execute(update(ProcessedKey).where(ProcessedKey.key.like("%:old"))
                  .values(created_at=utcnow() - timedelta(days=40)))
    with sessions() as s, s.begin():
        assert purge(s, timedelta(days=30), scope="event") == 1
    with sessions() as s, s.begin():
        assert purge(s, timedelta(days=30)) == 1
        assert sorted(s.scalars(select(ProcessedKey.key))) == ["event:new"]
        assert first_time(s, "event", "old") is True  # purged keys can be claimed again
