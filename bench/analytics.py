"""Analytics benchmark: N generated usage rows (default 10M) over 30 days on PostgreSQL, rollups
built from them, then the 30-day dashboard queries through the real analytics service.

    python bench/analytics.py --url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_analytics --rows 10000000

The database is created (dropped first when it exists). Rows are made server-side with
generate_series; the rollups are summed from them with one INSERT ... SELECT per table (the
same groups and histogram buckets the usage writer maintains).
"""

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

import asyncpg

from sluice.analytics.model import Narrow, Visibility
from sluice.analytics.service import Analytics
from sluice.clock import FakeClock
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.usage import histogram

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


def bucket_sql(col: str) -> str:
    # bisect_left over 20 * 2^(i/2): double-precision math, computed once per row.
    return (
        f"CASE WHEN {col} <= 20 THEN 0 ELSE LEAST({histogram.BUCKETS - 1}, "
        f"CEIL(2 * LN({col} / 20.0) / LN(2.0))::int) END"
    )


RAW = """
INSERT INTO usage_events (request_id, created_at, endpoint, key_id, model, provider, deployment,
  upstream_model, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
  tokens_estimated, latency_ms, ttft_ms, status, error_kind, streamed, partial, attempts,
  cost_micros, user_id, team_id, org_id)
SELECT 'req_' || g, to_timestamp({now} - random() * 31 * 86400), 'chat',
  'key_' || (g % 500), 'model-' || (g % 12), 'prov-' || (g % 4), 'd', 'u',
  (random() * 2000)::int, (random() * 800)::int, 0, 0, false,
  20 * power(2, random() * 10), 5, CASE WHEN g % 50 = 0 THEN 500 ELSE 200 END,
  NULL, false, false, 1, (random() * 20000)::bigint,
  'user_' || (g % 500 % 200), 'team_' || (g % 500 % 200 % 40), 'org_' || (g % 500 % 200 % 40 % 8)
FROM generate_series({lo}, {hi}) AS g
"""


def rollup_sql(table: str, width: int) -> str:
    lat = ", ".join(
        f"SUM(CASE WHEN lb = {i} THEN 1 ELSE 0 END)"
        for i in range(histogram.BUCKETS)
    )
    cols = ", ".join(histogram.COLUMNS)
    return f"""
INSERT INTO {table} (bucket, org_id, team_id, user_id, key_id, model, provider, requests, errors,
  prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, cost_micros,
  latency_ms_sum, ttft_ms_sum, ttft_count, {cols})
SELECT (FLOOR(EXTRACT(EPOCH FROM created_at) / {width}) * {width})::bigint AS b,
  COALESCE(org_id, ''), COALESCE(team_id, ''), COALESCE(user_id, ''), COALESCE(key_id, ''),
  COALESCE(model, ''), COALESCE(provider, ''), COUNT(*), SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),
  SUM(prompt_tokens), SUM(completion_tokens), SUM(cached_tokens), SUM(cache_write_tokens),
  SUM(COALESCE(cost_micros, 0)), SUM(latency_ms), SUM(COALESCE(ttft_ms, 0)), COUNT(ttft_ms), {lat}
FROM (SELECT *, {bucket_sql('latency_ms')} AS lb FROM usage_events) AS u GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


async def rollups(conn, t0: float) -> None:
    for table, width in (("usage_rollup_hourly", 3600), ("usage_rollup_daily", 86400)):
        await conn.execute(f"DELETE FROM {table}")
        await conn.execute(rollup_sql(table, width))
        n = await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
        print(f"  {table}: {n:,} rows  {time.perf_counter() - t0:6.1f}s", flush=True)
    await conn.execute("VACUUM ANALYZE")


async def build(url: str, rows: int) -> None:
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    server, name = plain.rsplit("/", 1)
    admin = await asyncpg.connect(server + "/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    storage = SqlStorage.from_url(url)
    await upgrade_engine(storage.engine)
    await storage.close()
    conn = await asyncpg.connect(plain)
    t0 = time.perf_counter()
    step = 1_000_000
    for lo in range(0, rows, step):
        await conn.execute(RAW.format(now=NOW, lo=lo, hi=min(rows, lo + step) - 1))
        print(f"  {min(rows, lo + step):>11,} raw rows  {time.perf_counter() - t0:6.1f}s", flush=True)
    await rollups(conn, t0)
    await conn.close()


async def timed(label: str, fn, repeat: int) -> None:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1000)
    print(f"{label:<44} median {statistics.median(times):7.1f} ms   max {max(times):7.1f} ms")


async def dashboard(url: str, repeat: int) -> None:
    storage = SqlStorage.from_url(url)
    a = Analytics(storage.analytics, FakeClock(NOW))
    w = a.window(None, None)
    everyone = Visibility(everything=True)
    org = Visibility(org_ids=frozenset({"org_3"}))
    none = Narrow()
    await a.summary(w, everyone, none)  # warm the pool

    async def whole() -> None:
        await a.summary(w, everyone, none)
        await a.series(w, everyone, none, interval="day")
        for by in ("model", "provider", "team", "user", "key"):
            await a.breakdown(w, everyone, none, by=by, limit=100)

    await timed("summary (30 days, admin)", lambda: a.summary(w, everyone, none), repeat)
    await timed("series day (30 days)", lambda: a.series(w, everyone, none, interval="day"), repeat)
    await timed("series hour (30 days, 720 points)", lambda: a.series(w, everyone, none, interval="hour"), repeat)
    for by in ("model", "provider", "team", "user", "key"):
        await timed(f"breakdown by {by}", lambda by=by: a.breakdown(w, everyone, none, by=by, limit=100), repeat)
    await timed("summary (org admin, one org)", lambda: a.summary(w, org, none), repeat)
    await timed("whole dashboard (summary+day series+5 breakdowns)", whole, repeat)
    page = await a.log(
        __import__("sluice.analytics.model", fromlist=["LogQuery"]).LogQuery(
            start=w.start, end=w.end, visibility=everyone, narrow=none, limit=100
        )
    )
    print(f"request log first page: {len(page[0])} rows")
    await storage.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_analytics")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--rollups-only", action="store_true", help="keep the raw rows, rebuild rollups")
    args = p.parse_args()
    if args.rollups_only:
        async def again() -> None:
            conn = await asyncpg.connect(args.url.replace("postgresql+asyncpg://", "postgresql://"))
            await rollups(conn, time.perf_counter())
            await conn.close()

        asyncio.run(again())
    elif not args.skip_build:
        asyncio.run(build(args.url, args.rows))
    asyncio.run(dashboard(args.url, args.repeat))


if __name__ == "__main__":
    main()
