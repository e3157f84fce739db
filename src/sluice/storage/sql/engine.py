"""Engine creation per dialect (SQLite pragmas, pool settings)."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

WORKER_NICE = 10
"""How much lower SQLite's worker threads run than the event loop (Linux ``nice``)."""


def _lower_worker_priority(dbapi_conn: Any) -> None:
    """Run the SQLite connection's worker thread at a lower priority than the event loop.

    aiosqlite does SQLite's work (usage inserts, mostly) on a thread of this process. On a
    busy core that thread competes with the event loop for the CPU, and a batch insert's
    burst shows up in request latency. At a lower priority the scheduler lets the loop run
    first whenever it has work; the inserts use the idle time. Best effort: a platform or
    driver without the thread (or without ``setpriority``) keeps the default.
    """
    thread = getattr(getattr(dbapi_conn, "_connection", None), "_thread", None)
    native_id = getattr(thread, "native_id", None)
    if native_id is None or not hasattr(os, "setpriority"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, native_id, WORKER_NICE)
    except OSError:
        return


def dialect_insert(dialect_name: str) -> Any:
    """The dialect's ``insert`` (with ``on_conflict_*``), imported for the dialect in use only:
    a SQLite gateway does not load the PostgreSQL dialect at start-up."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a ``sqlite+aiosqlite`` or ``postgresql+asyncpg`` URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            from pathlib import Path

            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            _lower_worker_priority(dbapi_conn)

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_async_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://..."
    )
