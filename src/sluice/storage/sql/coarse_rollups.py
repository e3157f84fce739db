"""Adding a batch of usage events to the coarse rollups (``tables.COARSE_ROLLUPS``).

The same sums as the full rollups (``rollups.py``) with fewer dimensions, so a dashboard over
everything reads a few thousand rows instead of every (owner, model) group. Called by the
usage writer right after ``rollups.add``, in the same transaction: raw rows, full and coarse
rollups commit together. Each table gets one upsert of one row per distinct group of the
batch; a batch of a few hundred events has few coarse groups (tens to a few hundred).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.storage.sql import tables as t
from sluice.storage.sql.rollups import METRICS
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import Sums

Key = tuple[int | str, ...]


def dimensions(table: Table) -> tuple[str, ...]:
    """The grouping columns of a rollup table after ``bucket``."""
    return tuple(c.name for c in table.primary_key.columns if c.name != "bucket")


def aggregate(events: Sequence[UsageEvent], width_s: int, dims: tuple[str, ...]) -> dict[Key, Sums]:
    """Sum events per (bucket of ``width_s`` seconds, *dims*); a missing value is ``""``."""
    out: dict[Key, Sums] = {}
    for e in events:
        key: Key = (int(e.created_at // width_s) * width_s, *(getattr(e, d) or "" for d in dims))
        sums = out.get(key)
        if sums is None:
            sums = out[key] = Sums()
        sums.add(e)
    return out


def _values(key: Key, s: Sums) -> tuple[Any, ...]:
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
    keys = ("bucket", *dimensions(table))
    columns = (*keys, *METRICS)
    adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    )


def _pg_upsert(table: Table) -> Any:
    stmt = postgresql.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["bucket", *dimensions(table)],
        set_={m: table.c[m] + stmt.excluded[m] for m in METRICS},
    )


_SQLITE = {table.name: _sqlite_upsert(table) for table, _ in t.COARSE_ROLLUPS}


async def add(conn: AsyncConnection, events: Sequence[UsageEvent]) -> None:
    """Add ``events`` (rows just inserted, none counted before) to every coarse rollup."""
    if not events:
        return
    sqlite = conn.dialect.name == "sqlite"
    for table, width in t.COARSE_ROLLUPS:
        dims = dimensions(table)
        # Sorted, so concurrent writers (replicas) lock rows in one order: no deadlocks.
        rows = [_values(k, s) for k, s in sorted(aggregate(events, width, dims).items())]
        if sqlite:
            await conn.exec_driver_sql(_SQLITE[table.name], rows)
        else:
            names = ("bucket", *dims, *METRICS)
            await conn.execute(_pg_upsert(table), [dict(zip(names, r, strict=True)) for r in rows])
