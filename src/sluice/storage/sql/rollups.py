"""Adding a batch of usage events to the rollup tables, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.storage.sql import tables as t
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S, HOUR_S, GroupKey, Sums, aggregate

METRICS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_micros",
    "latency_ms_sum",
    "ttft_ms_sum",
    "ttft_count",
    *t.LATENCY_COLUMNS,
)
KEY_COLUMNS = ("bucket", *t.ROLLUP_DIMENSIONS)
COLUMNS = (*KEY_COLUMNS, *METRICS)
TABLES: tuple[tuple[Table, int], ...] = ((t.rollup_hourly, HOUR_S), (t.rollup_daily, DAY_S))


def _values(key: GroupKey, s: Sums) -> tuple[Any, ...]:
    return (
        *key,
        s.requests,
        s.errors,
        s.prompt_tokens,
        s.completion_tokens,
        s.cached_tokens,
        s.cache_write_tokens,
        s.cost_micros,
        s.latency_ms_sum,
        s.ttft_ms_sum,
        s.ttft_count,
        *s.latency,
    )


def _sqlite_upsert(table: Table) -> str:
    adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)
    return (
        f"INSERT INTO {table.name} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {adds}"
    )


_SQLITE = {table.name: _sqlite_upsert(table) for table, _ in TABLES}


def _pg_upsert(table: Table) -> Any:
    stmt = postgresql.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS),
        set_={m: table.c[m] + stmt.excluded[m] for m in METRICS},
    )


async def add(conn: AsyncConnection, events: Sequence[UsageEvent]) -> None:
    """Add ``events`` (rows just inserted, none counted before) to the hourly and daily
    rollups: one upsert row per distinct group of the batch."""
    if not events:
        return
    sqlite = conn.dialect.name == "sqlite"
    for table, width in TABLES:
        # Sorted, so concurrent writers (replicas) lock rows in one order: no deadlocks.
        rows = [_values(k, s) for k, s in sorted(aggregate(events, width).items())]
        if sqlite:
            await conn.exec_driver_sql(_SQLITE[table.name], rows)
        else:
            await conn.execute(
                _pg_upsert(table), [dict(zip(COLUMNS, r, strict=True)) for r in rows]
            )
