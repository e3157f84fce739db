"""Engine creation per dialect (SQLite pragmas, pool settings)."""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

WORKER_NICE = 10
"""How much lower SQLite's worker threads run than the event loop (Linux ``nice``)."""


class WorkerPriority:
    """The scheduling of an engine's SQLite worker threads.

    aiosqlite does SQLite's work (usage inserts, mostly) on threads of this process. On a
    busy core such a thread competes with the event loop for the CPU, and a batch insert's
    burst shows up in request latency: a niced thread that is running when the loop wakes
    keeps the core until the next scheduler tick (~5 ms here). So the workers run as
    ``SCHED_IDLE`` (Linux): they use the time the loop leaves, and the loop takes the core
    back the moment it has work. A loop that never idles would starve them, so
    :meth:`urgent` (the usage writer calls it when rows pile up) turns them into ordinary
    threads at ``nice`` :data:`WORKER_NICE` until the backlog is written. Best effort: a
    platform or driver without the threads or the calls keeps the default.
    """

    def __init__(self) -> None:
        self._threads: set[int] = set()
        self._urgent = False

    def adopt(self, dbapi_conn: Any) -> None:
        thread = getattr(getattr(dbapi_conn, "_connection", None), "_thread", None)
        native_id = getattr(thread, "native_id", None)
        if native_id is not None:
            self._threads.add(native_id)
            self._apply(native_id)

    def urgent(self, on: bool) -> None:
        """Ordinary (niced) scheduling while ``on``, idle-time scheduling otherwise."""
        if on != self._urgent:
            self._urgent = on
            for native_id in list(self._threads):
                self._apply(native_id)

    def _apply(self, native_id: int) -> None:
        try:
            if hasattr(os, "SCHED_IDLE") and not self._urgent:
                os.sched_setscheduler(native_id, os.SCHED_IDLE, os.sched_param(0))
                return
            if hasattr(os, "SCHED_OTHER"):
                os.sched_setscheduler(native_id, os.SCHED_OTHER, os.sched_param(0))
            if hasattr(os, "setpriority"):
                os.setpriority(os.PRIO_PROCESS, native_id, WORKER_NICE)
        except OSError:  # the thread ended (its connection closed), or not permitted
            self._threads.discard(native_id)


_PRIORITIES: weakref.WeakKeyDictionary[Any, WorkerPriority] = weakref.WeakKeyDictionary()


def worker_priority(engine: AsyncEngine) -> WorkerPriority | None:
    """The worker-thread scheduling of a SQLite engine (``None`` for other databases)."""
    return _PRIORITIES.get(engine.sync_engine)


def dialect_insert(dialect_name: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_*``), imported for the dialect in use only:
    a SQLite gateway does not load the PostgreSQL dialect at start-up."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseTimeouts:
    """How long the engine waits for PostgreSQL (SQLite waits on its file lock, 30 s).

    A frozen or unreachable server otherwise holds a request for as long as the TCP
    connection lives; past these bounds the wait fails with an error that
    ``sluice.storage.availability.database_unavailable`` recognises."""

    connect_s: float = 10.0
    """Opening a connection (TCP, TLS, authentication); also the longest wait for a pooled
    connection when every one is busy."""
    command_s: float | None = None
    """One statement, from sending it to its last row; ``None``: unbounded (migrations and
    the CLI, whose statements may run long on big tables)."""


def create_engine(url: str, *, timeouts: DatabaseTimeouts | None = None) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})
        priority = _PRIORITIES[engine.sync_engine] = WorkerPriority()

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            priority.adopt(dbapi_conn)

        return engine
    if parsed.get_backend_name() == "postgresql":
        bounds = timeouts or DatabaseTimeouts()
        return create_async_engine(
            url,
            pool_size=5,
            max_overflow=10,
            pool_pre_ping=True,
            pool_timeout=bounds.connect_s,
            connect_args={"timeout": bounds.connect_s, "command_timeout": bounds.command_s},
        )
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://..."
    )
