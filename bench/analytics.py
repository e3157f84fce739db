"""Analytics benchmark: N generated usage rows (default 10M) over 90 days on PostgreSQL, rollups
built from them (full and coarse), then the 30-day dashboard queries of an admin, a team admin
and a user, and hourly series over 1, 7 and 30 days, through the real analytics service.

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

from sluice.analytics.model import LogQuery, Narrow, Visibility
from sluice.analytics.service import Analytics
from sluice.clock import FakeClock
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.storage.sql import tables as t
from sluice.usage import histogram

ROLLUP_TABLES = (
    t.rollup_hourly,
    t.rollup_daily,
    *(table for table, _ in getattr(t, "COARSE_ROLLUPS", ())),
)
# Coarse rollups, summed from the full hourly/daily ones (absent in older schemas).
DERIVED = tuple(
    (table.name, width, tuple(c.name for c in table.primary_key.columns if c.name != "bucket"))
    for table, width in getattr(t, "COARSE_ROLLUPS", ())
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()


SPAN_DAYS = 90
KEYS, USERS, TEAMS, ORGS, MODELS, PROVIDERS = 5000, 2000, 50, 4, 50, 8

# One row per request. Keys are drawn skewed (a few busy services, a long tail of people):
# key k = 5000 * r^2. Keys below 4000 belong to user k % 2000, the rest are service-account
# keys (no user); team = k % 50 (users' teams agree: 2000 is a multiple of 50), org = team % 4.
# Each key mostly uses a few of the 50 models (offset 50 * r^3 from its own first model);
# model i is served by provider i % 8. 2 % errors, 70 % streamed (with a time to first token).
RAW = """
INSERT INTO usage_events (request_id, created_at, endpoint, key_id, model, provider, deployment,
  upstream_model, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
  tokens_estimated, latency_ms, ttft_ms, status, error_kind, streamed, partial, attempts,
  cost_micros, user_id, team_id, org_id)
SELECT 'req_' || lpad(g::text, 10, '0'), to_timestamp({now} - rt * {span} * 86400), 'chat',
  'key_' || k, 'model-' || m, 'prov-' || (m % {providers}), 'd', 'u',
  (random() * 2000)::int, (random() * 800)::int, 0, 0, false,
  20 * power(2, random() * 10), CASE WHEN rs < 0.7 THEN 5 + random() * 400 END,
  CASE WHEN rs > 0.98 THEN 500 ELSE 200 END, NULL, rs < 0.7, false, 1,
  (random() * 20000)::bigint,
  CASE WHEN k < 4000 THEN 'user_' || (k % {users}) END, 'team_' || (k % {teams}),
  'org_' || (k % {teams} % {orgs})
FROM (
  SELECT g, k, ({models} + k * 7 + floor(power(rm, 3) * {models})::int) % {models} AS m, rt, rs
  FROM (
    SELECT g, floor({keys} * power(random(), 2))::int AS k, random() AS rm, random() AS rt,
      random() AS rs
    FROM generate_series({lo}, {hi}) AS g
  ) AS a
) AS s
"""


def bucket_sql(col: str) -> str:
    # bisect_left over 20 * 2^(i/2): double-precision math, computed once per row.
    return (
        f"CASE WHEN {col} <= 20 THEN 0 ELSE LEAST({histogram.BUCKETS - 1}, "
        f"CEIL(2 * LN({col} / 20.0) / LN(2.0))::int) END"
    )


def rollup_sql(table: str, width: int) -> str:
    """The full rollup (every dimension) summed from the raw rows."""
    lat = ", ".join(f"SUM(CASE WHEN lb = {i} THEN 1 ELSE 0 END)" for i in range(histogram.BUCKETS))
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
FROM (SELECT *, {bucket_sql("latency_ms")} AS lb FROM usage_events) AS u GROUP BY 1, 2, 3, 4, 5, 6, 7
"""


def derived_sql(table: str, width: int, dims: tuple[str, ...], source: str) -> str:
    """A coarser rollup summed from a finer one (same sums, fewer dimensions)."""
    metrics = [
        c.name for c in t.rollup_hourly.columns if c.name not in ("bucket", *t.ROLLUP_DIMENSIONS)
    ]
    keys = ", ".join(dims)
    sums = ", ".join(f"SUM({m})" for m in metrics)
    return f"""
INSERT INTO {table} (bucket, {keys}, {", ".join(metrics)})
SELECT bucket / {width} * {width}, {keys}, {sums} FROM {source}
GROUP BY 1, {", ".join(str(i + 2) for i in range(len(dims)))}
"""


async def rollups(url: str, conn, t0: float, *, full: bool = True) -> None:
    await conn.execute("SET work_mem = '512MB'")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    # Tables or indexes added to the rollup set since this data set was made.
    storage = SqlStorage.from_url(url)
    async with storage.engine.begin() as c:
        await c.run_sync(_create_rollup_tables)
    await storage.close()
    for table, width in (("usage_rollup_hourly", 3600), ("usage_rollup_daily", 86400)):
        if not full:
            break
        await conn.execute(f"TRUNCATE {table}")
        await conn.execute(rollup_sql(table, width))
        n = await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
        print(f"  {table}: {n:,} rows  {time.perf_counter() - t0:6.1f}s", flush=True)
    for table, width, dims in DERIVED:
        await conn.execute(f"TRUNCATE {table}")
        source = "usage_rollup_hourly" if width == 3600 else "usage_rollup_daily"
        await conn.execute(derived_sql(table, width, dims, source))
        n = await conn.fetchval(f"SELECT COUNT(*) FROM {table}")
        print(f"  {table}: {n:,} rows  {time.perf_counter() - t0:6.1f}s", flush=True)
    await conn.execute("VACUUM ANALYZE")
    print(f"  vacuum analyze  {time.perf_counter() - t0:6.1f}s", flush=True)


def _create_rollup_tables(sync_conn) -> None:
    for table in ROLLUP_TABLES:
        table.create(sync_conn, checkfirst=True)
        for index in table.indexes:
            index.create(sync_conn, checkfirst=True)


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
    await conn.execute("SET synchronous_commit = off")
    await conn.execute("SET maintenance_work_mem = '1GB'")
    # Load without the secondary indexes, then build them once (much faster than row by row).
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'usage_events' "
        "AND indexname NOT LIKE '%pkey'"
    )
    for ix in indexes:
        await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
    t0 = time.perf_counter()
    step = 1_000_000
    for lo in range(0, rows, step):
        sql = RAW.format(
            now=NOW,
            span=SPAN_DAYS,
            lo=lo,
            hi=min(rows, lo + step) - 1,
            keys=KEYS,
            users=USERS,
            teams=TEAMS,
            orgs=ORGS,
            models=MODELS,
            providers=PROVIDERS,
        )
        await conn.execute(sql)
        print(
            f"  {min(rows, lo + step):>11,} raw rows  {time.perf_counter() - t0:6.1f}s", flush=True
        )
    for ix in indexes:
        await conn.execute(ix["indexdef"])
    print(f"  raw indexes  {time.perf_counter() - t0:6.1f}s", flush=True)
    await rollups(url, conn, t0)
    await conn.close()


async def timed(label: str, fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1000)
    median = statistics.median(times)
    print(f"| {label} | {median:.1f} ms | {max(times):.1f} ms |", flush=True)
    return median


# What the console's usage page shows: an admin (everything), a team admin looking at their
# team (the busiest one), a user looking at their own usage (the busiest user).
SCOPES = {
    "admin": (Visibility(everything=True), Narrow()),
    "team": (
        Visibility(
            team_ids=frozenset({"team_0"}),
            user_ids=frozenset({"user_0"}),
            key_ids=frozenset({"key_0"}),
        ),
        Narrow(team_id="team_0"),
    ),
    "user": (Visibility(user_ids=frozenset({"user_0"}), key_ids=frozenset({"key_0"})), Narrow()),
}
BREAKDOWN_BY = ("model", "team", "user", "key")


def dashboard_calls(a: Analytics, w, v: Visibility, n: Narrow):
    return [
        ("summary", lambda: a.summary(w, v, n)),
        ("series day", lambda: a.series(w, v, n, interval="day")),
        *(
            (f"breakdown by {by}", lambda by=by: a.breakdown(w, v, n, by=by, limit=100))
            for by in BREAKDOWN_BY
        ),
    ]


async def dashboard(url: str, repeat: int, only: set[str] | None) -> None:
    storage = SqlStorage.from_url(url)
    a = Analytics(storage.analytics, FakeClock(NOW))
    w30 = a.window(None, None)
    await a.summary(w30, *SCOPES["admin"])  # warm the pool
    print("| scope: query (30 days unless said) | median | max |\n|---|---|---|")
    for name, (v, n) in SCOPES.items():
        if only and name not in only:
            continue
        calls = dashboard_calls(a, w30, v, n)
        for label, fn in calls:
            await timed(f"{name}: {label}", fn, repeat)

        async def sequential(calls=calls) -> None:
            for _, fn in calls:
                await fn()

        async def concurrent(calls=calls) -> None:
            await asyncio.gather(*(fn() for _, fn in calls))

        await timed(f"**{name}: dashboard, 6 queries one after another**", sequential, repeat)
        await timed(f"**{name}: dashboard, 6 queries concurrently**", concurrent, repeat)
        for days in (1, 7, 30):
            w = a.window(datetime.fromtimestamp(NOW - days * 86400, UTC), None)
            await timed(
                f"{name}: series hour, {days} day(s)",
                lambda w=w, v=v, n=n: a.series(w, v, n, interval="hour"),
                repeat,
            )
    page, _ = await a.log(
        LogQuery(
            start=w30.start, end=w30.end, visibility=SCOPES["admin"][0], narrow=Narrow(), limit=100
        )
    )
    print(f"request log first page: {len(page)} rows")
    await storage.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/bench_analytics")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--scopes", help="comma-separated subset of admin,team,user")
    p.add_argument("--rollups-only", action="store_true", help="keep the raw rows, rebuild rollups")
    p.add_argument(
        "--coarse-only",
        action="store_true",
        help="keep raw rows and full rollups; add missing tables/indexes, rebuild coarse rollups",
    )
    args = p.parse_args()
    if args.rollups_only or args.coarse_only:

        async def again() -> None:
            conn = await asyncpg.connect(args.url.replace("postgresql+asyncpg://", "postgresql://"))
            await rollups(args.url, conn, time.perf_counter(), full=not args.coarse_only)
            await conn.close()

        asyncio.run(again())
    elif not args.skip_build:
        asyncio.run(build(args.url, args.rows))
    only = set(args.scopes.split(",")) if args.scopes else None
    asyncio.run(dashboard(args.url, args.repeat, only))


if __name__ == "__main__":
    main()
