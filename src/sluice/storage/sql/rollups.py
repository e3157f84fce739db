"""The rollup tables' statements (full and coarse): a batch's hourly and daily sums (from
:func:`sluice.usage.rollup.batch_rows`) added to the stored rows, inside the caller's
transaction. Fixed statement texts, rows as tuples (SQLite ``executemany``) or as one JSON
array unpacked by the server (PostgreSQL), so no statement is compiled per flush."""

from __future__ import annotations

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.storage.sql import coarse_rollups
from sluice.storage.sql import tables as t
from sluice.usage.rollup import DAY_S, HOUR_S, SUM_FIELDS, RowValues

METRICS = (*SUM_FIELDS, *t.LATENCY_COLUMNS)
KEY_COLUMNS = ("bucket", *t.ROLLUP_DIMENSIONS)
COLUMNS = (*KEY_COLUMNS, *METRICS)
"""A rollup row's columns, in the order of :data:`sluice.usage.rollup.RowValues`."""
TABLES = (t.rollup_hourly.name, t.rollup_daily.name)


def _sqlite_upsert(table: str) -> str:
    adds = ", ".join(f"{m} = {m} + excluded.{m}" for m in METRICS)
    return (
        f"INSERT INTO {table} ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) "
        f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {adds}"
    )


SQLITE_UPSERTS = tuple(_sqlite_upsert(name) for name in TABLES)


def pg_field(index: int, sql_type: str | None) -> str:
    """Field ``index`` of a JSON row ``r`` (``jsonb_array_elements``) as ``sql_type``; a
    JSON ``null`` becomes SQL ``NULL``. ``None``: as text."""
    text = f"r->>{index}"
    return text if sql_type is None else f"({text})::{sql_type}"


def _pg_type(column: str) -> str | None:
    if column in t.ROLLUP_DIMENSIONS:
        return None
    return "float8" if column in ("latency_ms_sum", "ttft_ms_sum") else "int8"


def _pg_sum(metric: str) -> str:
    return f"sum({metric})" if _pg_type(metric) == "float8" else f"sum({metric})::int8"


def _pg_upserts() -> str:
    """Every rollup table in one statement: one round trip. ``$1`` and ``$2`` are the hourly
    and the daily rows as JSON arrays; the coarse tables are summed from them server-side."""

    def rows(param: int) -> str:
        picks = ", ".join(f"{pg_field(i, _pg_type(c))} AS {c}" for i, c in enumerate(COLUMNS))
        return f"SELECT {picks} FROM jsonb_array_elements(${param}::jsonb) AS r"

    def upsert(table: str, source: str) -> str:
        adds = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in METRICS)
        return (
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM {source} "
            f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {adds}"
        )

    hourly, daily = TABLES
    ctes = [
        f"hour_rows AS MATERIALIZED ({rows(1)})",
        f"day_rows AS MATERIALIZED ({rows(2)})",
        f"hours AS ({upsert(hourly, 'hour_rows')})",
        *coarse_rollups.pg_ctes("hour_rows", HOUR_S, METRICS, _pg_sum),
        *coarse_rollups.pg_ctes("day_rows", DAY_S, METRICS, _pg_sum),
    ]
    return f"WITH {', '.join(ctes)} {upsert(daily, 'day_rows')}"


PG_UPSERTS = _pg_upserts()


async def add_sqlite(conn: AsyncConnection, hours: list[RowValues], days: list[RowValues]) -> None:
    """The full rollups; SQLite's triggers (migration 0008) keep the coarse ones. A batch of
    MCP rows only has none (an empty ``executemany`` would run the statement unbound)."""
    for statement, rows in zip(SQLITE_UPSERTS, (hours, days), strict=True):
        if rows:
            await conn.exec_driver_sql(statement, rows)


async def add_postgresql(
    conn: AsyncConnection, hours: list[RowValues], days: list[RowValues]
) -> None:
    await conn.exec_driver_sql(
        PG_UPSERTS, (orjson.dumps(hours).decode(), orjson.dumps(days).decode())
    )
