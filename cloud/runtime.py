"""The local serverless runtime: every declared function runs on one machine as Lambda runs it on AWS.

Rows of ``invocations`` are the queue. A dispatcher thread claims due rows and runs each on a worker
pool, with Lambda's asynchronous-invocation semantics:

- **Claiming.** ``pending`` / ``retrying`` rows whose ``next_attempt_at`` is due are claimed with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (two runtimes never wait on or share a row) and,
  on both databases, an ``UPDATE ... WHERE id=? AND status=? AND attempts=?`` compare-and-set: the row
  becomes ``running``, ``attempts`` goes up by one.
- **Leases.** While a row is ``running`` its ``next_attempt_at`` is its lease expiry: the runtime renews
  it every ``lease_s / 3`` while the function runs (up to the function's declared timeout). A row whose
  lease expired (its runtime was killed, or the function overran its timeout) is taken back by any
  runtime as a failed attempt: the handler may have half-run, and handlers are idempotent.
- **Fencing.** Every completion updates the row only ``WHERE status='running' AND attempts=<claimed>``;
  a runtime that lost its lease cannot overwrite the attempt that replaced it.
- **Outcomes**, each committed in one transaction with the row's new state: on success, the onSuccess
  destination record on the bus (``source`` ``lambda``); on an exception, a retry after
  ``backoff_base * 2**(attempt-1)`` seconds, and after the last retry a ``dead_letters`` row (the local
  onFailure destination), status ``dead_letter`` and the Failure destination record on the bus.
  The event an invocation came from rolls up to ``delivered`` or ``failed`` when its last target ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from cloud import local_bus
from cloud.db import utcnow
from cloud.dead_letters import RECORDER, format_error, insert_dead_letter
from cloud.events import ACCOUNT, REGION, destination_event, destination_record, eventbridge_event
from cloud.idempotency import first_time
from cloud.local_bus import LocalBus, enqueue, store_events
from cloud.models import BusEvent, Invocation
from cloud.sandbox import Outcome, Sandbox, error_payload, remove_stale_tmp, run_handler

if TYPE_CHECKING:
    from cloud.bucket import FolderBucket
    from cloud.config import Config
    from cloud.declaration import Declaration, Schedule
    from cloud.watcher import BucketWatcher

__all__ = ["Embedded", "LocalInvoker", "LocalRuntime", "purge_history", "start_embedded"]

log = logging.getLogger(__name__)

WAITING = ("pending", "retrying")
UNFINISHED = ("pending", "running", "retrying")

Isolation = Literal["thread", "process"]


class Poller(Protocol):
    """A source of invocations the runtime should wait for in ``run_until_idle`` (the bucket watcher)."""

    def poll(self) -> int: ...

    def pending(self) -> int: ...


class LocalInvoker:
    """Queue an asynchronous invocation in the database: any runtime on that database will run it.

    Enough for processes that only submit work (the web app's replay button, ``corb replay``).
    """

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    def invoke_async(self, function: str, payload: Any, trigger: str = "direct") -> str:
        """Lambda's ``InvocationType=Event``: returns the request id once the invocation is durable."""
        with self.sessions() as session, session.begin():
            request_id = enqueue(session, function, payload, trigger=trigger)
        local_bus.notify()
        return request_id


@dataclass
class _Claim:
    """An invocation this runtime is running (``attempt`` is the fencing token)."""

    id: int
    request_id: str
    function: str
    payload: str
    event_id: str | None
    attempt: int
    timeout_s: float = 30.0
    pool: str = ""
    started: float = field(default_factory=time.monotonic)
    future: Future | None = None
    sandbox: Sandbox | None = None
    interrupted: bool = False  # killed because the runtime stops: the attempt does not count

    @property
    def key(self) -> tuple[int, int]:
        """Bookkeeping is per attempt: a late attempt's clean-up never touches its successor's entry."""
        return self.id, self.attempt


@dataclass
class _Pool:
    """One Lambda function's concurrency (a Zappa stage is one Lambda): its own slots and sandboxes."""

    stage: str
    size: int
    nice: int = 0
    functions: frozenset[str] = frozenset()
    running: int = 0
    idle: list[Sandbox] = field(default_factory=list)


class LocalRuntime(LocalInvoker):
    """Runs declared functions from the ``invocations`` queue; see the module docstring for semantics."""

    def __init__(self, sessions: sessionmaker, declaration: Declaration, *, bus: LocalBus | None = None,
                 workers: int = 4, poll_interval: float = 0.5, backoff_base: float = 1.0,
                 lease_s: float = 30.0, timeout_grace_s: float = 5.0, schedules: bool = True,
                 pollers: list[Poller] | None = None, isolation: Isolation = "thread",
                 concurrency: Mapping[str, int] | None = None, nice: Mapping[str, int] | None = None,
                 tmp_root: Path | None = None) -> None:
        """``workers`` is each stage's concurrency unless ``concurrency`` (stage -> slots) says otherwise;
        ``nice`` lowers a stage's sandboxes' CPU priority. ``isolation="process"`` runs every invocation
        in a killable sandbox process (what ``corb serve`` does); ``"thread"`` runs it in this process
        (tests that count runs in memory), where a timed-out handler cannot be stopped."""
        super().__init__(sessions)
        self.declaration = declaration
        self.bus = bus or LocalBus(sessions, declaration)
        self.isolation = isolation
        self.tmp_root = Path(tmp_root) if tmp_root is not None else None
        if isolation == "process" and self.tmp_root is None:
            raise ValueError("process isolation needs tmp_root (the sandboxes' temp directories)")
        self.pools = self._make_pools(workers, dict(concurrency or {}), dict(nice or {}))
        self.workers = sum(p.size for p in self.pools.values())
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.lease_s = lease_s
        self.timeout_grace_s = timeout_grace_s
        self.schedules_enabled = schedules
        self.pollers: list[Poller] = list(pollers or [])
        self.id = uuid.uuid4().hex[:8]
        bind = sessions.kw.get("bind")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"
        self._running: dict[tuple[int, int], _Claim] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._last_renewal = 0.0
        self._last_reap = 0.0
        self._schedule_slots: dict[tuple[str, str], str] = {}

    def _make_pools(self, workers: int, concurrency: dict[str, int],
                    nice: dict[str, int]) -> dict[str, _Pool]:
        by_stage: dict[str, set[str]] = {stage: set() for stage in self.declaration.stages}
        for function, settings in self.declaration.function_settings.items():
            by_stage.setdefault(settings.stage, set()).add(function)
        return {stage: _Pool(stage, max(1, concurrency.get(stage, workers)), nice.get(stage, 0),
                             frozenset(functions)) for stage, functions in by_stage.items()}

    @classmethod
    def from_config(cls, config: Config, *, sessions: sessionmaker, declaration: Declaration | None = None,
                    **kwargs: Any) -> LocalRuntime:
        if declaration is None:
            from cloud.declaration import load_declaration

            declaration = load_declaration(config.stage)
        return cls(sessions, declaration, **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LocalRuntime:
        """Start the dispatcher thread and the worker pool (idempotent)."""
        if self.started:
            return self
        self._stopping.clear()
        if self.tmp_root is not None:
            remove_stale_tmp(self.tmp_root)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"corb-fn-{self.id}")
        local_bus.add_listener(self._wake.set)
        self._thread = threading.Thread(target=self._loop, name=f"corb-runtime-{self.id}", daemon=True)
        self._thread.start()
        if self.isolation == "process":
            threading.Thread(target=self._prewarm, name=f"corb-prewarm-{self.id}", daemon=True).start()
        log.info("runtime %s started (%s isolation): %s; %d rules, %d S3 triggers, %d schedules", self.id,
                 self.isolation, ", ".join(f"{p.stage} x{p.size}" for p in self.pools.values()),
                 len(self.declaration.rules), len(self.declaration.s3_triggers),
                 len(self.declaration.schedules))
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop claiming, let running invocations finish (up to ``timeout``), then stop the threads.

        With process isolation, what still runs after ``timeout`` is killed and its row handed back
        (``pending``, the attempt not counted): the next start runs it again at once. With threads, it
        keeps its row ``running``; its lease expires and a runtime takes it back as a failed attempt.
        """
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive() and self.isolation == "process":
            with self._lock:
                cut = list(self._running.values())
            for claim in cut:
                claim.interrupted = True
                if claim.sandbox is not None:
                    claim.sandbox.kill()
            self._thread.join(10)
        if self._thread.is_alive():
            log.warning("runtime %s: %d invocation(s) still running at stop", self.id, len(self._running))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for pool in self.pools.values():
            with self._lock:
                idle, pool.idle = pool.idle, []
            for sandbox in idle:
                sandbox.close()
        local_bus.remove_listener(self._wake.set)
        self._thread = None
        self._pool = None
        log.info("runtime %s stopped", self.id)

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the dispatcher ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("runtime %s: dispatcher error (retrying)", self.id)
            self._wake.wait(min(self.poll_interval, self.lease_s / 3))
            self._wake.clear()
        # Draining: no new claims; keep the leases of what still runs alive until it finishes.
        while True:
            with self._lock:
                futures = [c.future for c in self._running.values() if c.future is not None]
            if not futures:
                return
            try:
                self._renew_leases(force=False)
            except Exception:
                log.exception("runtime %s: lease renewal failed", self.id)
            wait(futures, timeout=min(self.poll_interval, self.lease_s / 3), return_when=FIRST_COMPLETED)

    def tick(self) -> int:
        """One round of the dispatcher: leases, schedules, then claim what the pool has room for."""
        self._renew_leases()
        now_m = time.monotonic()
        if now_m - self._last_reap >= max(self.poll_interval, self.lease_s / 6):  # not on every wake-up
            self._last_reap = now_m
            self._reap_expired()
        if self.schedules_enabled:
            self.fire_schedules()
        return self._dispatch()

    def _dispatch(self) -> int:
        """Claim, per pool, what that pool has free slots for: a busy pool never delays another's work."""
        claimed = 0
        for pool in self.pools.values():
            with self._lock:
                free = pool.size - pool.running
            if free <= 0 or self._pool is None or self._stopping.is_set():
                continue
            claims = self._claim(free, pool)
            for claim in claims:
                with self._lock:
                    self._running[claim.key] = claim
                    pool.running += 1
                claim.future = self._pool.submit(self._execute, claim)
            claimed += len(claims)
        return claimed

    def _claim(self, limit: int, pool: _Pool | None = None) -> list[_Claim]:
        now = utcnow()
        lease_until = now + timedelta(seconds=self.lease_s)
        pool = pool or self.pools[self.declaration.stage]
        with self.sessions() as session, session.begin():
            # Everything the claim needs in this one read (a row's function and payload never change), so the
            # write transaction the first UPDATE opens holds SQLite's write lock for the UPDATEs alone.
            query = (select(Invocation.id, Invocation.status, Invocation.attempts, Invocation.request_id,
                            Invocation.function, Invocation.payload, Invocation.event_id)
                     .where(Invocation.status.in_(WAITING), Invocation.next_attempt_at <= now)
                     .order_by(Invocation.next_attempt_at, Invocation.id).limit(limit))
            if pool.stage != self.declaration.stage:
                query = query.where(Invocation.function.in_(sorted(pool.functions)))
            else:  # the main stage also runs functions no stage declares (they fail as Lambda would)
                others = sorted(f for p in self.pools.values() if p is not pool for f in p.functions)
                if others:
                    query = query.where(Invocation.function.not_in(others))
            if self._postgres:
                query = query.with_for_update(skip_locked=True)
            won: list[tuple[Any, int]] = []
            for row in session.execute(query).all():
                inv_id, status, attempts = row.id, row.status, row.attempts
                # Compare-and-set: on SQLite another runtime may have claimed it since the SELECT.
                result = session.execute(
                    update(Invocation)
                    .where(Invocation.id == inv_id, Invocation.status == status,
                           Invocation.attempts == attempts)
                    .values(status="running", attempts=attempts + 1, next_attempt_at=lease_until,
                            updated_at=now).execution_options(synchronize_session=False))
                if result.rowcount == 1:
                    won.append((row, attempts + 1))
            if not won:
                return []
        claims = []
        for r, attempt in won:
            claims.append(_Claim(id=r.id, request_id=r.request_id, function=r.function, payload=r.payload,
                                 event_id=r.event_id, attempt=attempt, pool=pool.stage,
                                 timeout_s=self.declaration.settings(r.function).timeout_s))
        log.debug("runtime %s claimed %s", self.id, [c.request_id for c in claims])
        return claims

    # -- running one invocation ---------------------------------------------------------------------
    def _execute(self, claim: _Claim) -> None:
        try:
            payload = json.loads(claim.payload)
            log.info("invoking %s (%s, attempt %d)", claim.function, claim.request_id, claim.attempt)
            outcome = self._run(claim, payload)
            if claim.interrupted:
                self._release(claim)
                return
            if outcome.error is not None:
                error = outcome.error
                log.warning("%s (%s) attempt %d failed: %s: %s", claim.function, claim.request_id,
                            claim.attempt, error["errorType"], error["errorMessage"])
                self._complete_failure(claim, payload, error)
                return
            self._complete_success(claim, payload, outcome.result, outcome.result_text or "null")
        except Exception:
            # The row stays 'running'; its lease expires and the attempt counts as failed.
            log.exception("runtime %s: could not record the outcome of %s", self.id, claim.request_id)
        finally:
            with self._lock:
                if self._running.get(claim.key) is claim:
                    del self._running[claim.key]
                self.pools[claim.pool].running -= 1
            self._wake.set()

    def _run(self, claim: _Claim, payload: Any) -> Outcome:
        """Run the handler: in this process, or in a pooled sandbox that is killed past the timeout."""
        settings = self.declaration.settings(claim.function)
        if self.isolation == "thread":
            return run_handler(claim.function, payload, claim.request_id, settings.timeout_s,
                               settings.memory_mb)
        pool = self.pools[claim.pool]
        with self._lock:
            sandbox = pool.idle.pop() if pool.idle else None
        if sandbox is None or not sandbox.alive:
            sandbox = self._new_sandbox(pool)
        claim.sandbox = sandbox
        if claim.interrupted:  # stop() came while the sandbox started
            sandbox.kill()
            return Outcome(error={"errorType": "Runtime.Interrupted"})
        outcome = sandbox.invoke(claim.function, claim.payload, claim.request_id, settings.timeout_s,
                                 settings.memory_mb)
        claim.sandbox = None
        if sandbox.alive and not self._stopping.is_set():
            with self._lock:
                pool.idle.append(sandbox)
        else:
            sandbox.close()
        return outcome

    def _new_sandbox(self, pool: _Pool) -> Sandbox:
        assert self.tmp_root is not None
        return Sandbox(self.tmp_root, nice=pool.nice, preload=tuple(sorted(pool.functions)))

    def _prewarm(self) -> None:
        """One warm sandbox for the main stage at start, so the first SMS reply does not wait for one."""
        pool = self.pools[self.declaration.stage]
        try:
            sandbox = self._new_sandbox(pool)
        except Exception:
            log.exception("runtime %s: could not start a warm sandbox", self.id)
            return
        with self._lock:
            keep = not self._stopping.is_set()
            if keep:
                pool.idle.append(sandbox)
        if not keep:
            sandbox.close()

    def _release(self, claim: _Claim) -> None:
        """Hand back an attempt this runtime cut off at stop: pending again, the attempt not counted."""
        with self.sessions() as session, session.begin():
            if self._fenced(session, claim, status="pending", attempts=claim.attempt - 1,
                            next_attempt_at=utcnow()):
                log.info("%s (%s) was stopped with the runtime; it runs again on the next start",
                         claim.function, claim.request_id)

    def _fenced(self, session: Session, claim: _Claim, **values: Any) -> bool:
        """Update the claimed row only if this runtime still holds that attempt."""
        result = session.execute(
            update(Invocation)
            .where(Invocation.id == claim.id, Invocation.status == "running",
                   Invocation.attempts == claim.attempt)
            .values(updated_at=utcnow(), **values).execution_options(synchronize_session=False))
        if result.rowcount != 1:
            log.warning("runtime %s: %s attempt %d lost its lease; outcome discarded", self.id,
                        claim.request_id, claim.attempt)
            return False
        return True

    def _complete_success(self, claim: _Claim, payload: Any, result: Any, result_text: str) -> None:
        with self.sessions() as session, session.begin():
            if not self._fenced(session, claim, status="succeeded", result=result_text, last_error=None):
                return
            if self.declaration.async_config(claim.function).on_success == "bus":
                record = destination_record(function=claim.function, request_id=claim.request_id,
                                            request_payload=payload, response_payload=result, success=True,
                                            attempts=claim.attempt)
                store_events(session, [destination_event(record, success=True)], self.declaration,
                             bus_name=self.bus.name)
            self._roll_up(session, claim.event_id)
        log.info("%s (%s) succeeded", claim.function, claim.request_id)
        local_bus.notify()

    def _complete_failure(self, claim: _Claim, payload: Any, error: dict) -> None:
        config = self.declaration.async_config(claim.function)
        text = format_error(error)
        with self.sessions() as session, session.begin():
            if claim.attempt <= config.max_retries:
                delay = self.backoff_base * 2 ** (claim.attempt - 1)
                self._fenced(session, claim, status="retrying", last_error=text,
                             next_attempt_at=utcnow() + timedelta(seconds=delay))
                log.info("%s (%s) will be retried in %.2fs", claim.function, claim.request_id, delay)
                return
            if not self._fenced(session, claim, status="dead_letter", last_error=text):
                return
            insert_dead_letter(session, request_id=claim.request_id, function=claim.function, payload=payload,
                               error=text, attempts=claim.attempt)
            if config.on_failure == "bus" and claim.function != RECORDER:  # never loop on the recorder
                record = destination_record(function=claim.function, request_id=claim.request_id,
                                            request_payload=payload, response_payload=error, success=False,
                                            attempts=claim.attempt, function_error="Unhandled")
                store_events(session, [destination_event(record, success=False)], self.declaration,
                             bus_name=self.bus.name)
            self._roll_up(session, claim.event_id)
        log.error("%s (%s) failed %d times: dead letter", claim.function, claim.request_id, claim.attempt)
        local_bus.notify()

    def _roll_up(self, session: Session, event_id: str | None) -> None:
        """Mark the source event delivered / failed once none of its targets is unfinished."""
        if not event_id:
            return
        if self._postgres:  # serialise the targets of one event finishing at once
            session.execute(select(BusEvent.id).where(BusEvent.id == event_id).with_for_update())
        statuses = set(session.scalars(select(Invocation.status).where(Invocation.event_id == event_id)))
        if statuses & set(UNFINISHED):
            return
        new = "failed" if "dead_letter" in statuses else "delivered"
        session.execute(update(BusEvent).where(BusEvent.id == event_id).values(status=new))

    # -- leases ------------------------------------------------------------------------------------
    def _renew_leases(self, *, force: bool = False) -> None:
        now_m = time.monotonic()
        if not force and now_m - self._last_renewal < self.lease_s / 3:
            return
        self._last_renewal = now_m
        with self._lock:
            # A function past its timeout (plus grace) is not renewed: its lease runs out as on Lambda.
            live = [c for c in self._running.values()
                    if now_m - c.started < c.timeout_s + self.timeout_grace_s]
        if not live:
            return
        until = utcnow() + timedelta(seconds=self.lease_s)
        with self.sessions() as session, session.begin():
            for c in live:
                session.execute(update(Invocation).where(
                    Invocation.id == c.id, Invocation.status == "running", Invocation.attempts == c.attempt)
                    .values(next_attempt_at=until))

    def _reap_expired(self) -> int:
        """Take back invocations whose lease ran out; each counts as a failed attempt."""
        now = utcnow()
        with self.sessions() as session:
            rows = session.execute(
                select(Invocation.id, Invocation.request_id, Invocation.function, Invocation.payload,
                       Invocation.event_id, Invocation.attempts)
                .where(Invocation.status == "running", Invocation.next_attempt_at <= now).limit(100)).all()
        for r in rows:
            claim = _Claim(id=r.id, request_id=r.request_id, function=r.function, payload=r.payload,
                           event_id=r.event_id, attempt=r.attempts,
                           timeout_s=self.declaration.settings(r.function).timeout_s)
            with self._lock:
                mine = claim.key in self._running
            if mine:
                exc: Exception = TimeoutError(f"Task timed out after {claim.timeout_s:.2f} seconds")
                error = error_payload(exc, r.request_id, "Sandbox.Timedout")
            else:
                exc = RuntimeError("the runtime running this invocation stopped before it finished "
                                   "(lease expired); the handler may have run in part")
                error = error_payload(exc, r.request_id, "Runtime.ExitError")
            log.warning("runtime %s: lease of %s (%s) expired", self.id, r.request_id, r.function)
            self._complete_failure(claim, json.loads(r.payload), error)
        return len(rows)

    # -- schedules ---------------------------------------------------------------------------------
    def fire_schedules(self, now: datetime | None = None) -> int:
        """Queue each schedule once per slot, across every runtime on the database (processed_keys)."""
        now = now or utcnow()
        fired = 0
        for schedule in self.declaration.schedules:
            slot = schedule.slot(now)
            key = (schedule.function, schedule.expression)
            if slot is None or self._schedule_slots.get(key) == slot:
                continue
            with self.sessions() as session, session.begin():
                if first_time(session, "schedule", f"{schedule.rule_name}|{schedule.expression}|{slot}"):
                    enqueue(session, schedule.function, scheduled_event(schedule), trigger="schedule",
                            rule=schedule.rule_name)
                    fired += 1
            self._schedule_slots[key] = slot
        if fired:
            local_bus.notify()
        return fired

    # -- waiting -----------------------------------------------------------------------------------
    def _busy(self, horizon: datetime) -> bool:
        with self._lock:
            if self._running:
                return True
        with self.sessions() as session:
            count = session.scalar(select(func.count(Invocation.id)).where(or_(
                Invocation.status == "running",
                Invocation.status.in_(WAITING) & (Invocation.next_attempt_at <= horizon))))
        return bool(count)

    def run_until_idle(self, timeout: float = 30.0) -> bool:
        """Run until nothing is pending, running, or retrying within ``timeout``; False if time ran out.

        Starts the runtime if needed (and stops it again after). Pollers (the bucket watcher) are polled
        here too, so a file that lands just before the call is seen.
        """
        started_here = not self.started
        if started_here:
            self.start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                pending = 0
                for poller in self.pollers:
                    poller.poll()
                    pending += poller.pending()
                if not pending and not self._busy(utcnow() + timedelta(seconds=max(remaining, 0))):
                    return True
                if remaining <= 0:
                    return False
                self._wake.set()
                time.sleep(min(0.02, max(remaining, 0.001)))
        finally:
            if started_here:
                self.stop()


def scheduled_event(schedule: Schedule) -> dict:
    """The event Zappa's scheduled targets deliver: an EventBridge "Scheduled Event" plus ``kwargs``."""
    arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{schedule.rule_name}"
    event = eventbridge_event("aws.events", "Scheduled Event", {}, resources=[arn])
    event["kwargs"] = dict(schedule.kwargs)
    return event


def purge_history(session: Session, older_than: timedelta) -> dict[str, int]:
    """Delete finished history older than ``older_than``: delivered / unmatched events and succeeded /
    replayed invocations (failures and dead letters stay until an operator deals with them)."""
    cutoff = utcnow() - older_than
    invocations = session.execute(delete(Invocation).where(
        Invocation.status.in_(("succeeded", "replayed")), Invocation.updated_at < cutoff)).rowcount
    events = session.execute(delete(BusEvent).where(
        BusEvent.status.in_(("delivered", "unmatched")), BusEvent.time < cutoff)).rowcount
    return {"invocations": invocations, "events": events}


@dataclass
class Embedded:
    """The embedded cloud beside the web app: the declaration, the bus, the runtime, the watcher."""

    declaration: Declaration
    bus: LocalBus
    runtime: LocalRuntime
    watcher: BucketWatcher | None

    def stop(self, timeout: float = 30.0) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.runtime.stop(timeout)


def start_embedded(config: Config, *, sessions: sessionmaker, bucket: FolderBucket | None = None,
                   workers: int = 4, check: bool = True, runtime_sessions: sessionmaker | None = None,
                   **runtime_kwargs: Any) -> Embedded:
    """What ``corb serve`` runs in-process: check every function imports, then start the runtime and,
    with the folder bucket, its watcher. Call ``stop()`` on shutdown (it lets running work finish).
    ``runtime_sessions`` (default ``sessions``) is for the runtime's own bookkeeping (claims, outcomes)."""
    from cloud.declaration import load_declaration

    declaration = load_declaration(config.stage)
    if check:
        declaration.check_functions()
    bus = LocalBus(sessions, declaration)
    runtime = LocalRuntime(runtime_sessions or sessions, declaration, bus=bus, workers=workers,
                           **runtime_kwargs)
    watcher = None
    if config.bucket == "folder":
        from cloud.bucket import FolderBucket, open_bucket
        from cloud.watcher import BucketWatcher

        folder = bucket or open_bucket(config)
        if isinstance(folder, FolderBucket):
            watcher = BucketWatcher(folder, declaration, sessions)
            runtime.pollers.append(watcher)
    runtime.start()
    if watcher is not None:
        watcher.start()
    return Embedded(declaration, bus, runtime, watcher)

