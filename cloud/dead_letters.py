"""Dead letters: async invocations that failed every retry, what Lambda's onFailure destination receives.

Locally the runtime writes the row itself when it gives up; on AWS the declaration routes every failure
destination record (source ``lambda``, detail-type ``... - Failure``) to ``record``. Both paths insert
idempotently on the request id, so the local runtime may do both. ``replay`` re-invokes the original
request payload through an ``Invoker`` (the local queue, or Lambda's async invoke on AWS).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import utcnow
from cloud.models import DeadLetter, Invocation

__all__ = ["Invoker", "Replayed", "format_error", "insert_dead_letter", "list_dead_letters", "record",
           "replay", "function_from_arn", "RECORDER"]

log = logging.getLogger(__name__)

RECORDER = "cloud.dead_letters.record"  # the function failure records are routed to


class Invoker(Protocol):
    """Something that queues an asynchronous invocation and returns its request id.

    Locally ``LocalInvoker`` / ``LocalRuntime``; on AWS, Lambda's ``Invoke`` with ``InvocationType="Event"``
    (``cloud.adapters.open_invoker`` chooses). ``trigger`` says why (``"replay"``); implementations may
    ignore it.
    """

    def invoke_async(self, function: str, payload: Any, trigger: str = "direct") -> str: ...


@dataclass(frozen=True)
class Replayed:
    """One replayed dead letter: the letter's id, its function and the new invocation's request id."""

    dead_letter_id: int
    function: str
    request_id: str


def format_error(error: Any) -> str:
    """A Lambda error payload (``errorType``, ``errorMessage``, ``stackTrace``) as readable text."""
    if not isinstance(error, dict):
        return str(error)
    head = f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"
    trace = error.get("stackTrace") or []
    return head + ("\n" + "".join(str(line) for line in trace) if trace else "")


def insert_dead_letter(session: Session, *, request_id: str, function: str, payload: Any, error: str,
                       attempts: int) -> bool:
    """Insert a dead letter unless one exists for ``request_id``; True if inserted (caller's transaction)."""
    values = {"request_id": request_id, "function": function, "payload": json.dumps(payload),
              "error": error, "attempts": attempts, "created_at": utcnow()}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = (insert(DeadLetter).values(**values).on_conflict_do_nothing(index_elements=["request_id"])
            .returning(DeadLetter.id))
    return session.execute(stmt).first() is not None


def function_from_arn(arn: str, functions: Sequence[str] = ()) -> str:
    """The dotted function a destination record's ``functionArn`` names, when the declaration knows it.

    The embedded mode names each function's Lambda after it (``cloud.events.function_arn``); on AWS
    the Lambda name (e.g. Zappa's ``corb-dev``) is kept, and replay invokes that Lambda.
    """
    from cloud.events import function_arn

    unqualified = arn.split(":$LATEST")[0]
    for fn in functions:
        if function_arn(fn).split(":$LATEST")[0] == unqualified:
            return fn
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 and parts[5] == "function" else arn


# -- the onFailure destination, as a function ------------------------------------------------------

_engines: dict[str, sessionmaker] = {}
_engines_lock = threading.Lock()


def _sessions_for_env() -> sessionmaker:
    """Sessions on the configured database, one engine per URL per process (a warm Lambda reuses it)."""
    from cloud.config import load_config
    from cloud.db import make_engine, make_sessionmaker

    url = load_config().database_url
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_sessionmaker(make_engine(url))
        return _engines[url]


def record(event: dict, context: Any = None) -> dict:
    """Write the dead letter a failure destination event describes (idempotent on its request id)."""
    detail = event.get("detail", event)
    ctx = detail.get("requestContext") or {}
    request_id = ctx.get("requestId")
    if not request_id:
        raise ValueError("not a Lambda destination record: no requestContext.requestId")
    functions: Sequence[str] = ()
    try:
        from cloud.config import load_config
        from cloud.declaration import load_declaration

        functions = load_declaration(load_config().stage).functions
    except Exception:  # the ARN's own name is a fine fallback
        log.debug("declaration unavailable; keeping the Lambda name", exc_info=True)
    function = function_from_arn(ctx.get("functionArn", ""), functions)
    with _sessions_for_env()() as session, session.begin():
        inserted = insert_dead_letter(session, request_id=request_id, function=function,
                                      payload=detail.get("requestPayload"),
                                      error=format_error(detail.get("responsePayload")),
                                      attempts=int(ctx.get("approximateInvokeCount") or 0))
    log.warning("dead letter %s for %s %s", request_id, function, "recorded" if inserted else "already known")
    return {"kind": "dead_letter", "request_id": request_id, "function": function, "new": inserted}


# -- listing and replay ----------------------------------------------------------------------------

def list_dead_letters(session: Session, *, include_replayed: bool = False, function: str | None = None,
                      since: datetime | None = None, limit: int = 100) -> list[DeadLetter]:
    """Dead letters, newest first (not yet replayed unless ``include_replayed``)."""
    stmt = select(DeadLetter).order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc()).limit(limit)
    if not include_replayed:
        stmt = stmt.where(DeadLetter.replayed_at.is_(None))
    if function is not None:
        stmt = stmt.where(DeadLetter.function == function)
    if since is not None:
        stmt = stmt.where(DeadLetter.created_at >= since)
    return list(session.scalars(stmt))


def replay(sessions: sessionmaker, invoker: Invoker, ids: Sequence[int] | None = None) -> list[Replayed]:
    """Re-invoke each dead letter's original payload on its function; stamps ``replayed_at``.

    ``ids=None`` replays every letter not yet replayed; listed ids are replayed even if they were
    before (an operator asked twice). Each letter is stamped in its own transaction right after its
    invocation is queued, so a failure part-way leaves the rest untouched and says which failed.
    """
    with sessions() as session:
        stmt = select(DeadLetter).order_by(DeadLetter.id)
        stmt = stmt.where(DeadLetter.id.in_(list(ids))) if ids is not None else stmt.where(
            DeadLetter.replayed_at.is_(None))
        letters = list(session.scalars(stmt))
    missing = sorted(set(ids or ()) - {dl.id for dl in letters})
    if missing:
        raise KeyError(f"no dead letter(s) with id {missing}")
    done: list[Replayed] = []
    for letter in letters:
        request_id = invoker.invoke_async(letter.function, json.loads(letter.payload), trigger="replay")
        with sessions() as session, session.begin():
            session.execute(update(DeadLetter).where(DeadLetter.id == letter.id).values(replayed_at=utcnow()))
            # The original invocation (local runtime only) is superseded by the new one.
            session.execute(update(Invocation).where(Invocation.request_id == letter.request_id,
                                                     Invocation.status == "dead_letter")
                            .values(status="replayed", updated_at=utcnow()))
        log.info("replayed dead letter %s (%s) as %s", letter.id, letter.function, request_id)
        done.append(Replayed(letter.id, letter.function, request_id))
    return done
