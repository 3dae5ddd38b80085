"""The SQL database shared by the bot and the local runtime: one declarative base, one engine recipe.

SQLite on one machine, PostgreSQL in production (``DATABASE_URL``). The recipe sets what each needs
for several threads and processes to share it safely.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """Naive UTC: the same on SQLite and PostgreSQL ``timestamp without time zone`` columns."""
    return datetime.now(UTC).replace(tzinfo=None)


def normalise_url(url: str) -> str:
    """``postgres://`` and bare ``postgresql://`` (as RDS and Heroku write them) use psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


SQLITE_BUSY_S = 30.0  # how long a SQLite writer waits for another's transaction before "database is locked"
_DML = ("insert", "update", "delete", "replace")

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own busy wait alone
    fcntl = None  # type: ignore[assignment]


class WriteGate:
    """One SQLite writer at a time, across the threads and processes sharing a database file, woken at once.

    SQLite lets one transaction write at a time; the others wait in its busy handler, which sleeps
    1, 2, 5, 10, ... 100 ms between tries (no wake-up when the lock is freed). Under a steady write load
    (the webhook's workers, the runtime and its sandboxes all committing), a waiter sleeps on long after
    the lock is free: tens of milliseconds at p99 for writes that hold the lock well under one. The gate
    queues writers on an OS lock instead (a thread lock in the process, ``flock`` on ``<db>-writer.lock``
    between processes), taken just before a transaction's first write and released when it commits or
    rolls back: the next writer runs as soon as the lock is free. The kernel drops a dead process's
    ``flock``, so a ``kill -9`` frees it as it frees SQLite's own locks.

    It is only a queue in front of SQLite's locking, which still decides: a writer that cannot take the
    gate (the lock file cannot be opened, or the thread lock is not free within ``SQLITE_BUSY_S``) goes on
    to SQLite's busy handler as before, and so does a second connection writing in a thread whose first
    connection holds the gate.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._holder: Any = None  # the DBAPI connection whose transaction holds the gate
        self._thread: int | None = None
        self._pid = os.getpid()

    def _file(self) -> int | None:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError:  # a read-only folder: SQLite refuses the write itself, as it should
                return None
        return self._fd

    def acquire(self, dbapi_conn: Any) -> None:
        if self._pid != os.getpid():  # forked: the parent's lock and holder are not this process's
            self._reset()
        if self._holder is dbapi_conn or self._thread == threading.get_ident():
            return
        if not self._lock.acquire(timeout=SQLITE_BUSY_S):
            return
        fd = self._file()
        try:
            if fd is None:
                raise OSError("no lock file")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            self._lock.release()
            return
        self._holder, self._thread = dbapi_conn, threading.get_ident()

    def release(self, dbapi_conn: Any) -> None:
        if self._holder is not dbapi_conn or self._pid != os.getpid():
            return
        self._holder = self._thread = None
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
        self._lock.release()


_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


def write_gate(database: str) -> WriteGate:
    """The process's gate for one SQLite file (every engine on that file shares it)."""
    path = os.path.abspath(database) + "-writer.lock"
    with _gates_lock:
        return _gates.setdefault(path, WriteGate(path))


def _gate_writes(engine: Engine, gate: WriteGate) -> None:
    """Take ``gate`` before a transaction's first write; give it back when the transaction ends.

    Wraps this engine's own dialect (not engine events: with a listener, every statement pays for
    SQLAlchemy's event dispatch). pysqlite opens the transaction (BEGIN) itself, just before a write
    statement, so a write on a connection not yet in a transaction is where a writer starts.
    """
    dialect = engine.dialect

    def writing(run: Callable[..., Any]) -> Callable[..., Any]:
        def execute(cursor: Any, statement: str, *args: Any) -> Any:
            dbapi_conn = cursor.connection
            if not dbapi_conn.in_transaction and statement.lstrip()[:7].lower().startswith(_DML):
                gate.acquire(dbapi_conn)
            return run(cursor, statement, *args)

        return execute

    def releasing(end: Callable[[Any], None]) -> Callable[[Any], None]:
        def ended(connection: Any) -> None:  # the pool's proxy (commit, rollback) or the DBAPI connection
            try:
                end(connection)
            finally:
                gate.release(getattr(connection, "dbapi_connection", connection))

        return ended

    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, name, writing(getattr(dialect, name)))
    for name in ("do_commit", "do_rollback", "do_close"):  # the pool's reset on return rolls back too
        setattr(dialect, name, releasing(getattr(dialect, name)))


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """The engine for ``url``. On SQLite every commit is on disk before it returns (``synchronous=FULL``),
    unless ``durable=False``: ``NORMAL``, where a commit survives the process's death (kill -9) but the
    last ones may be lost in a power cut or an OS crash (WAL: the database stays consistent, and a later
    FULL commit makes every earlier one durable too). Only for writes that are redone when lost, such as
    the runtime's claims and outcomes (an invocation whose claim or outcome is lost runs again, and
    handlers dedupe); never for a write that answers someone (the webhook's 200 to Twilio)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_S})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # WAL lets the webhook read while the runtime writes; FULL: a commit survives a power cut.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_S * 1000)}")
            cur.close()

        database = engine.url.database
        if fcntl is not None and database and database != ":memory:" and not database.startswith("file:"):
            _gate_writes(engine, write_gate(database))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)
