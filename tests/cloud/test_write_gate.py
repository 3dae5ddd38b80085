"""SQLite writers queue on the write gate (``cloud.db.WriteGate``): held from a transaction's first write to
its end, shared by every engine and thread of a process, across processes by ``flock``, freed by kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from cloud.db import make_engine, write_gate

HOLDER = """
import sys, time
from sqlalchemy import text
from cloud.db import make_engine
engine = make_engine(sys.argv[1])
with engine.begin() as conn:
    conn.execute(text("INSERT INTO t VALUES (1)"))
    print("holding", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    return url


def held(url: str) -> bool:
    return write_gate(url.removeprefix("sqlite:///"))._holder is not None


def test_a_transaction_holds_the_gate_from_its_first_write_to_its_end(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        assert not held(url)  # reads take nothing
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert held(url)
    assert not held(url)
    conn = engine.connect()
    conn.execute(text("UPDATE t SET x = 2"))
    assert held(url)
    conn.rollback()
    assert not held(url)
    with pytest.raises(Exception, match="nosuch"), engine.begin() as conn:
        conn.execute(text("INSERT INTO nosuch VALUES (1)"))
    assert not held(url)
    conn = engine.connect()
    conn.execute(text("INSERT INTO t VALUES (3)"))
    conn.close()  # returned to the pool: rolled back, and the gate with it
    assert not held(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]  # only the committed write
    engine.dispose()


def test_writers_in_threads_and_engines_all_commit(url: str) -> None:
    engines = [make_engine(url), make_engine(url)]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(50):
                with engines[n % 2].begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": n * 1000 + i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 300
    assert not held(url)
    for engine in engines:
        engine.dispose()


def test_a_second_connection_writing_in_the_same_thread_is_not_stuck_on_the_gate(url: str) -> None:
    """Nested writers in one thread go straight to SQLite (whose busy timeout answers), as before the gate."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        other = engine.connect()
        other.execute(text("PRAGMA busy_timeout=100"))
        t0 = time.monotonic()
        with pytest.raises(Exception, match="locked"):
            other.execute(text("INSERT INTO t VALUES (2)"))
        assert time.monotonic() - t0 < 10
        other.rollback()
        other.close()
    assert not held(url)
    engine.dispose()


def test_a_writer_in_another_process_waits_and_a_kill_9_frees_it(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        engine = make_engine(url)
        done = threading.Event()

        def write() -> None:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
            done.set()

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        assert not done.wait(0.5)  # queued behind the other process's transaction
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert done.wait(10)  # the kernel dropped the dead holder's lock: the writer goes on
        with engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalars().all() == [2]  # the killed write is gone
        engine.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_only_an_engine_asked_not_to_be_durable_skips_the_fsync(url: str) -> None:
    """FULL (on disk at commit) by default; NORMAL (survives kill -9, not a power cut) for the runtime's
    bookkeeping (``corb runtime``), whose lost writes are redone."""
    for durable, level in ((True, 2), (False, 1)):
        engine = make_engine(url, durable=durable)
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == level
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        engine.dispose()
