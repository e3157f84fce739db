"""Cost of one usage-writer flush (200 rows), SQLite and PostgreSQL, three ways:

- ``raw only``: the insert of the raw rows alone (what the writer did before rollups);
- ``analytics merge``: the first rollup writer (dedupe SELECT, SQLAlchemy-compiled upserts
  with dict parameters on PostgreSQL), kept here for comparison;
- ``now``: ``SqlUsage.insert_many`` (sluice/storage/sql/usage_batch.py).

Two batch shapes: ``spread`` (50 keys x 20 users x 5 models: ~one rollup group per row, the
worst case) and ``one group`` (one key and model, as in bench/run.sh).

    python bench/usage_flush.py [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/bench_flush]

Reports the median wall time per flush and the event-loop thread's CPU time per flush.
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from typing import Any

import asyncpg
import orjson
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from sluice.storage.sql import tables as t
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.storage.sql.usage_batch import (
    PG_USAGE_INSERT,
    SQLITE_USAGE_INSERT,
    USAGE_COLUMNS,
    pg_row,
    sqlite_row,
)
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S, HOUR_S, aggregate
from sluice.storage.sql import rollups

N = 200
ROUNDS = 40


def batch(i: int, spread: bool) -> list[UsageEvent]:
    rnd = random.Random(i)
    now = 1_800_000_000.0 + i
    pick = (lambda n: rnd.randrange(n)) if spread else (lambda n: 0)
    return [
        UsageEvent(
            f"req_{i}_{j}",
            now,
            "chat",
            f"key_{pick(50)}",
            f"m{pick(5)}",
            provider="p",
            prompt_tokens=100,
            completion_tokens=50,
            latency_ms=rnd.random() * 2000,
            cost_micros=123,
            user_id=f"u{pick(20)}",
            team_id="t1",
            org_id="o1",
        )
        for j in range(N)
    ]


async def raw_only(storage: SqlStorage, events: list[UsageEvent]) -> None:
    async with storage.engine.begin() as conn:
        if storage.engine.dialect.name == "sqlite":
            await conn.exec_driver_sql(SQLITE_USAGE_INSERT, [sqlite_row(e) for e in events])
        else:
            rows = orjson.dumps([pg_row(e) for e in events]).decode()
            await conn.exec_driver_sql(PG_USAGE_INSERT, (rows,))


def _dict_row(e: UsageEvent) -> dict[str, Any]:
    row = dict(zip(USAGE_COLUMNS, pg_row(e)))
    row["attempt_errors"] = e.attempt_errors
    return row


async def analytics_merge(storage: SqlStorage, events: list[UsageEvent]) -> None:
    """The writer as the analytics branch merged it (commit f5cf00c)."""
    async with storage.engine.begin() as conn:
        ids = list({e.request_id for e in events})
        query = select(t.usage.c.request_id).where(t.usage.c.request_id.in_(ids))
        stored = set((await conn.execute(query)).scalars().all())
        fresh = [e for e in events if e.request_id not in stored]
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            await conn.exec_driver_sql(SQLITE_USAGE_INSERT, [sqlite_row(e) for e in fresh])
        else:
            stmt = postgresql.insert(t.usage).on_conflict_do_nothing(index_elements=["request_id"])
            await conn.execute(stmt, [_dict_row(e) for e in fresh])
        for (table, width), sql in zip(
            ((t.rollup_hourly, HOUR_S), (t.rollup_daily, DAY_S)), rollups.SQLITE_UPSERTS
        ):
            rows = [
                (
                    *k,
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
                for k, s in sorted(aggregate(fresh, width).items())
            ]
            if sqlite:
                await conn.exec_driver_sql(sql, rows)
            else:
                stmt = postgresql.insert(table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(rollups.KEY_COLUMNS),
                    set_={m: table.c[m] + stmt.excluded[m] for m in rollups.METRICS},
                )
                await conn.execute(stmt, [dict(zip(rollups.COLUMNS, r)) for r in rows])


async def now(storage: SqlStorage, events: list[UsageEvent]) -> None:
    await storage.usage.insert_many(events)


async def measure(url: str, label: str) -> None:
    storage = SqlStorage.from_url(url)
    await upgrade_engine(storage.engine)
    seed = 0
    variants = (("raw only", raw_only), ("analytics merge", analytics_merge), ("now", now))
    for spread in (True, False):
        shape = "spread" if spread else "one group"
        walls: dict[str, list[float]] = {name: [] for name, _ in variants}
        cpus: dict[str, list[float]] = {name: [] for name, _ in variants}
        for r in range(ROUNDS):  # interleaved, so the database's growth is shared fairly
            for name, fn in variants[r % 3 :] + variants[: r % 3]:
                seed += 1
                events = batch(seed, spread)
                c0, w0 = time.thread_time(), time.perf_counter()
                await fn(storage, events)
                cpus[name].append((time.thread_time() - c0) * 1000)
                walls[name].append((time.perf_counter() - w0) * 1000)
        for name, _ in variants:
            print(
                f"{label:<10} {shape:<9} {name:<16} wall median {statistics.median(walls[name][5:]):6.2f} ms"
                f"  loop CPU median {statistics.median(cpus[name][5:]):6.2f} ms",
                flush=True,
            )
    await storage.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pg", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_flush")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        await measure(f"sqlite+aiosqlite:///{os.path.join(d, 'f.db')}", "SQLite")
    plain = args.pg.replace("postgresql+asyncpg://", "postgresql://")
    server, name = plain.rsplit("/", 1)
    admin = await asyncpg.connect(server + "/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await measure(args.pg, "PostgreSQL")


asyncio.run(main())
