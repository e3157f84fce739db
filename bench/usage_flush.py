"""Cost of one usage-writer flush of 200 rows: raw insert alone (what the writer did before
rollups) vs raw insert + dedup check + hourly/daily rollup upserts (now), SQLite and PostgreSQL.

    python bench/usage_flush.py [--pg postgresql+asyncpg://postgres@127.0.0.1:5432/bench_flush]

Reports wall time per flush and the event-loop time (CPU on the loop thread) per flush.
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time

import asyncpg

from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.storage.sql.usage import _SQLITE_USAGE_INSERT, _sqlite_row, _usage_row
from sluice.storage.sql import tables as t
from sluice.usage.event import UsageEvent

N = 200


def batch(i: int) -> list[UsageEvent]:
    rnd = random.Random(i)
    now = 1_800_000_000.0 + i
    return [
        UsageEvent(f"req_{i}_{j}", now, "chat", f"key_{rnd.randrange(50)}", f"m{rnd.randrange(5)}",
                   provider="p", prompt_tokens=100, completion_tokens=50, latency_ms=rnd.random() * 2000,
                   cost_micros=123, user_id=f"u{rnd.randrange(20)}", team_id="t1", org_id="o1")
        for j in range(N)
    ]


async def raw_only(storage: SqlStorage, events: list[UsageEvent]) -> None:
    async with storage.engine.begin() as conn:
        if storage.engine.dialect.name == "sqlite":
            await conn.exec_driver_sql(_SQLITE_USAGE_INSERT, [_sqlite_row(e) for e in events])
        else:
            from sqlalchemy.dialects import postgresql
            stmt = postgresql.insert(t.usage).on_conflict_do_nothing(index_elements=["request_id"])
            await conn.execute(stmt, [_usage_row(e) for e in events])


async def measure(url: str, label: str) -> None:
    storage = SqlStorage.from_url(url)
    await upgrade_engine(storage.engine)
    for name, fn in (("raw only (before)", raw_only), ("raw + rollups (now)", lambda s, e: s.usage.insert_many(e))):
        walls, cpus = [], []
        for i in range(40):
            events = batch(i + (1000 if "now" in name else 0))
            c0, w0 = time.thread_time(), time.perf_counter()
            await fn(storage, events)
            cpus.append((time.thread_time() - c0) * 1000)
            walls.append((time.perf_counter() - w0) * 1000)
        print(f"{label:<10} {name:<22} wall median {statistics.median(walls[5:]):6.2f} ms  "
              f"loop CPU median {statistics.median(cpus[5:]):6.2f} ms")
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
