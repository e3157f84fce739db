"""A batch of usage rows and its rollups, written in one transaction with as little work on
the event loop as the drivers allow.

The usage writer calls this for every flush, so it skips SQLAlchemy's statement compiler:
the statement texts are fixed (SQLite caches them, asyncpg keeps them prepared per
connection), rows go to the driver as plain tuples (SQLite ``executemany``) or as one array
per column (PostgreSQL ``unnest``: one round trip for any number of rows).

Exactly once: a batch retried after an unclear commit must not be counted twice in the
rollups. The rollups are therefore summed only from the rows the insert really stored.
PostgreSQL's insert returns their ids (``ON CONFLICT DO NOTHING ... RETURNING``). SQLite's
``executemany`` cannot return rows, so its insert is checked by count: when fewer rows than
sent were stored, the transaction is rolled back and the batch is written again after
reading which ids are stored already (rare: only a retry gets there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluice.storage.sql import rollups
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import sqlite_time
from sluice.usage.bounds import bound
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import HourSums, RowValues, add_hours, batch_rows, rollup_rows
from sluice.usage.slices import in_slices

USAGE_COLUMNS = (
    "request_id",
    "created_at",
    "endpoint",
    "key_id",
    "model",
    "provider",
    "deployment",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "tokens_estimated",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_kind",
    "error_message",
    "streamed",
    "partial",
    "end_user",
    "attempts",
    "attempt_errors",
    "cost_micros",
    "user_id",
    "team_id",
    "org_id",
    "upstream_ms",
    "trace_id",
    "mcp_server",
    "mcp_tool",
    "bytes_in",
    "bytes_out",
    "rpc_error",
    "batch_id",
    "cache",
    "cost_saved_micros",
    "units",
    "unit_kind",
)
"""Every column of ``usage_events``, in the order of the row tuples below."""


def first_of_each(events: Sequence[UsageEvent]) -> list[UsageEvent]:
    """The batch without repeated request ids (the first of each is kept)."""
    seen: dict[str, UsageEvent] = {}
    for e in events:
        seen.setdefault(e.request_id, e)
    return list(seen.values()) if len(seen) != len(events) else list(events)


def _json(value: list[str] | None) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _values(e: UsageEvent, created_at: Any, *, flag: Any) -> tuple[Any, ...]:
    """A row in :data:`USAGE_COLUMNS` order; ``flag`` converts booleans for the driver."""
    return (
        e.request_id,
        created_at,
        e.endpoint,
        e.key_id,
        e.model,
        e.provider,
        e.deployment,
        e.upstream_model,
        e.prompt_tokens,
        e.completion_tokens,
        e.cached_tokens,
        e.cache_write_tokens,
        flag(e.tokens_estimated),
        e.latency_ms,
        e.ttft_ms,
        e.status,
        e.error_kind,
        e.error_message,
        flag(e.streamed),
        flag(e.partial),
        e.end_user,
        e.attempts,
        _json(e.attempt_errors),
        e.cost_micros,
        e.user_id,
        e.team_id,
        e.org_id,
        e.upstream_ms,
        e.trace_id,
        e.mcp_server,
        e.mcp_tool,
        e.bytes_in,
        e.bytes_out,
        e.rpc_error,
        e.batch_id,
        e.cache,
        e.cost_saved_micros,
        e.units,
        e.unit_kind,
    )


def sqlite_row(e: UsageEvent) -> tuple[Any, ...]:
    return _values(e, sqlite_time(e.created_at), flag=int)


def pg_row(e: UsageEvent) -> tuple[Any, ...]:
    return _values(e, datetime.fromtimestamp(e.created_at, UTC), flag=bool)


class _AlreadyStored(Exception):
    """Some rows of the batch were stored by an earlier attempt: roll back and recount."""


ROW_SLICE = (20, 200)
"""Events turned into rows and rollup sums between two yields to the event loop: 20 (~0.1 ms
on the benchmark host) while the loop is nearly idle, 200 while it is saturated
(:func:`sluice.usage.slices.in_slices`). A 500-row batch built in one piece held the loop
~2.5 ms, and a request whose answer arrived meanwhile waited that long (the c=1 p99)."""


async def _prepared(
    events: Sequence[UsageEvent], row: Callable[[UsageEvent], tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], tuple[list[RowValues], list[RowValues]]]:
    """``row(e)`` for every event and the batch's rollup rows (hours, days), computed a
    slice at a time (:data:`ROW_SLICE`) with the loop let through in between. Each event is
    first made to fit its row (:func:`sluice.usage.bounds.bound`, in place, so the rollups
    and a retry see the same values)."""
    rows: list[tuple[Any, ...]] = []
    hours: HourSums = {}
    async for chunk in in_slices(events, *ROW_SLICE):
        rows.extend(row(bound(e)) for e in chunk)
        add_hours(hours, chunk)
    return rows, rollup_rows(hours)


def _columns(names: Sequence[str]) -> str:
    return ", ".join(names)


# SQLite: one cached statement per table, rows as tuples through executemany.
SQLITE_USAGE_INSERT = (
    f"INSERT OR IGNORE INTO {t.usage.name} ({_columns(USAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in USAGE_COLUMNS)})"
)


# PostgreSQL: the whole batch as one JSON array of rows, unpacked server-side: one statement
# per batch. (Arrays per column would cost asyncpg an isinstance() per element on the loop.)
_PG_USAGE_TYPES = {
    "created_at": "timestamptz",
    "prompt_tokens": "int4",
    "completion_tokens": "int4",
    "cached_tokens": "int4",
    "cache_write_tokens": "int4",
    "tokens_estimated": "bool",
    "latency_ms": "float8",
    "ttft_ms": "float8",
    "status": "int4",
    "streamed": "bool",
    "partial": "bool",
    "attempts": "int4",
    "cost_micros": "int8",
    "upstream_ms": "float8",
    "bytes_in": "int8",
    "bytes_out": "int8",
    "rpc_error": "int4",
    "cost_saved_micros": "int8",
    "units": "float8",
}


def _pg_usage_insert() -> str:
    picks = ", ".join(
        rollups.pg_field(i, "json" if c == "attempt_errors" else _PG_USAGE_TYPES.get(c))
        for i, c in enumerate(USAGE_COLUMNS)
    )
    return (
        f"INSERT INTO {t.usage.name} ({_columns(USAGE_COLUMNS)}) "
        f"SELECT {picks} FROM jsonb_array_elements($1::jsonb) AS r "
        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
    )


PG_USAGE_INSERT = _pg_usage_insert()


async def _stored_ids(conn: AsyncConnection, ids: list[str]) -> set[str]:
    query = select(t.usage.c.request_id).where(t.usage.c.request_id.in_(ids))
    return set((await conn.execute(query)).scalars().all())


async def write_sqlite(engine: AsyncEngine, events: Sequence[UsageEvent]) -> None:
    """Insert ``events`` (no repeated ids) and add the stored ones to the rollups."""
    rows, (hours, days) = await _prepared(events, sqlite_row)
    try:
        async with engine.begin() as conn:
            stored = await conn.exec_driver_sql(SQLITE_USAGE_INSERT, rows)
            if stored.rowcount != len(rows):
                raise _AlreadyStored
            await rollups.add_sqlite(conn, hours, days)
        return
    except _AlreadyStored:
        pass
    async with engine.begin() as conn:
        known = await _stored_ids(conn, [e.request_id for e in events])
        fresh = [e for e in events if e.request_id not in known]
        if fresh:
            await conn.exec_driver_sql(SQLITE_USAGE_INSERT, [sqlite_row(e) for e in fresh])
            await rollups.add_sqlite(conn, *batch_rows(fresh))


async def write_postgresql(engine: AsyncEngine, events: Sequence[UsageEvent]) -> None:
    """Insert ``events`` (no repeated ids) and add the stored ones to the rollups: two
    statements, whatever the batch size."""
    values, (hours, days) = await _prepared(events, pg_row)
    rows = orjson.dumps(values).decode()
    async with engine.begin() as conn:
        result = await conn.exec_driver_sql(PG_USAGE_INSERT, (rows,))
        stored = result.scalars().all()
        if len(stored) != len(events):
            ids = set(stored)
            fresh = [e for e in events if e.request_id in ids]
            if not fresh:
                return
            hours, days = batch_rows(fresh)
        await rollups.add_postgresql(conn, hours, days)
