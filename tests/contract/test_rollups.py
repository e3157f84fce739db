"""Rollups equal the raw rows: a randomized burst through the real writer, over SQLite and
PostgreSQL; the migration's backfill; a retried batch is not counted twice."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sluice.storage.sql import tables as t
from sluice.storage.sql.coarse_rollups import dimensions
from sluice.storage.sql.migrate import upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.usage import histogram
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

T0 = 1_700_000_000.0

events_st = st.lists(
    st.builds(
        UsageEvent,
        request_id=st.integers(0, 400).map(lambda i: f"req_{i}"),  # repeats: duplicates
        created_at=st.floats(T0, T0 + 3 * 86_400, allow_nan=False),
        endpoint=st.just("chat"),
        key_id=st.sampled_from(["key_a", "key_b", "master", None]),
        model=st.sampled_from(["m1", "m2", None]),
        provider=st.sampled_from(["p1", "p2", None]),
        prompt_tokens=st.integers(0, 5000),
        completion_tokens=st.integers(0, 5000),
        cached_tokens=st.integers(0, 100),
        latency_ms=st.floats(0, 200_000, allow_nan=False),
        ttft_ms=st.none() | st.floats(0, 5000, allow_nan=False),
        status=st.sampled_from([200, 200, 200, 429, 499, 500, 503]),
        cost_micros=st.none() | st.integers(0, 10_000_000),
        user_id=st.sampled_from(["u1", "u2", None]),
        team_id=st.sampled_from(["t1", None]),
        org_id=st.sampled_from(["o1", "o2", None]),
    ),
    max_size=120,
)


async def _reset(storage: SqlStorage) -> None:
    async with storage.engine.begin() as conn:
        for table in (t.usage, t.rollup_hourly, t.rollup_daily, *(c for c, _ in t.COARSE_ROLLUPS)):
            await conn.execute(table.delete())


def _expected(rows: list[UsageEvent], width: int) -> dict[tuple[Any, ...], list[float]]:
    """Plain per-bucket sums, written independently of the writer's aggregation."""
    out: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0] * 8)
    for e in rows:
        key = (
            int(e.created_at) - int(e.created_at) % width,
            e.org_id or "",
            e.team_id or "",
            e.user_id or "",
            e.key_id or "",
            e.model or "",
            e.provider or "",
        )
        acc = out[key]
        acc[0] += 1
        acc[1] += e.status >= 400
        acc[2] += e.prompt_tokens
        acc[3] += e.completion_tokens
        acc[4] += e.cached_tokens
        acc[5] += e.cost_micros or 0
        acc[6] += e.latency_ms
        acc[7] += 1 if e.ttft_ms is not None else 0
    return dict(out)


async def _actual(storage: SqlStorage, table: Any) -> dict[tuple[Any, ...], list[float]]:
    async with storage.engine.connect() as conn:
        rows = (await conn.execute(select(table))).all()
    out = {}
    for r in rows:
        m = r._mapping
        key = (m["bucket"], *(m[d] for d in dimensions(table)))
        assert sum(m[c] for c in histogram.COLUMNS) == m["requests"]
        out[key] = [
            m["requests"],
            m["errors"],
            m["prompt_tokens"],
            m["completion_tokens"],
            m["cached_tokens"],
            m["cost_micros"],
            m["latency_ms_sum"],
            m["ttft_count"],
        ]
    return out


def _projected(
    full: dict[tuple[Any, ...], list[float]], table: Any
) -> dict[tuple[Any, ...], list[float]]:
    """Full-rollup sums (``_expected``) summed again over a coarse table's dimensions."""
    at = [1 + t.ROLLUP_DIMENSIONS.index(d) for d in dimensions(table)]
    out: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0.0] * 8)
    for key, sums in full.items():
        acc = out[(key[0], *(key[i] for i in at))]
        for i, v in enumerate(sums):
            acc[i] += v
    return dict(out)


async def _check_coarse(storage: SqlStorage, events: list[UsageEvent]) -> None:
    for table, width in t.COARSE_ROLLUPS:
        _close(await _actual(storage, table), _projected(_expected(events, width), table))


def _close(a: dict[tuple[Any, ...], list[float]], b: dict[tuple[Any, ...], list[float]]) -> None:
    assert a.keys() == b.keys()
    for k, va in a.items():
        assert va[:6] == pytest.approx(b[k][:6], abs=0), k
        assert va[6] == pytest.approx(b[k][6], rel=1e-9, abs=1e-6), k
        assert va[7] == b[k][7], k


async def _check(database_url: str, events: list[UsageEvent], batch: int) -> None:
    storage = SqlStorage.from_url(database_url)
    try:
        await upgrade_engine(storage.engine)
        await _reset(storage)
        writer = UsageWriter(storage.usage, storage.keys, batch_size=batch)
        for i, e in enumerate(events):
            writer.record(e)
            if i % 37 == 36:
                await writer.flush()
        await writer.close()
        stored = await storage.usage.recent(limit=10_000)
        first: dict[str, UsageEvent] = {}
        for e in events:
            first.setdefault(e.request_id, e)
        assert {e.request_id for e in stored} == set(first)
        _close(await _actual(storage, t.rollup_hourly), _expected(stored, 3600))
        _close(await _actual(storage, t.rollup_daily), _expected(stored, 86_400))
        await _check_coarse(storage, stored)
        async with storage.engine.connect() as conn:
            raw_cost = await conn.scalar(select(func.coalesce(func.sum(t.usage.c.cost_micros), 0)))
            daily_cost = await conn.scalar(
                select(func.coalesce(func.sum(t.rollup_daily.c.cost_micros), 0))
            )
        assert int(raw_cost or 0) == int(daily_cost or 0)
    finally:
        await storage.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=events_st, batch=st.integers(1, 60))
def test_rollups_equal_the_raw_rows_after_a_random_burst(
    database_url: str, events: list[UsageEvent], batch: int
) -> None:
    asyncio.run(_check(database_url, events, batch))


def _ev(rid: str, ts: float, cost: int) -> UsageEvent:
    return UsageEvent(rid, ts, "chat", "key_a", "m1", provider="p1", cost_micros=cost, org_id="o1")


async def test_a_batch_written_twice_counts_once(storage: SqlStorage) -> None:
    batch = [_ev("r1", T0, 10), _ev("r2", T0 + 1, 20)]
    await storage.usage.insert_many(batch)
    await storage.usage.insert_many([*batch, _ev("r3", T0 + 2, 5)])
    assert await storage.usage.count() == 3
    assert await storage.spend.spent_since("key:key_a", int(T0 // 86_400 * 86_400)) == 35
    assert await storage.spend.spent_since("org:o1", int(T0 // 86_400 * 86_400)) == 35
    assert await storage.spend.spent_since("key:key_a", int(T0) + 1) == 25  # from raw rows


async def test_the_migration_sums_existing_rows_into_rollups(storage: SqlStorage) -> None:
    from alembic import command

    from sluice.storage.sql.migrate import _config

    events = [_ev(f"r{i}", T0 + i * 1800, i) for i in range(100)]
    await storage.usage.insert_many(events)
    async with storage.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_config(c), "0006"))
    assert await storage.usage.count() == 100
    await upgrade_engine(storage.engine)
    hourly = await _actual(storage, t.rollup_hourly)
    assert hourly == _expected(await storage.usage.recent(limit=1000), 3600)
    assert sum(v[0] for v in (await _actual(storage, t.rollup_daily)).values()) == 100
    assert await storage.spend.spent_since("key:key_a", 0) == sum(range(100))


async def test_the_backfill_pages_through_more_rows_than_one_chunk(storage: SqlStorage) -> None:
    from alembic import command

    from sluice.storage.sql.migrate import _config

    # 12 000 rows: three read pages; hours span pages, and three rows share each timestamp,
    # so a page ends inside a run of equal created_at values.
    events = [
        UsageEvent(
            f"r{i:05d}",
            T0 + (i // 3) * 30,
            "chat",
            f"key_{i % 7}",
            f"m{i % 3}",
            provider="p1",
            prompt_tokens=i % 50,
            latency_ms=float(i % 900),
            ttft_ms=5.0 if i % 2 else None,
            status=500 if i % 11 == 0 else 200,
            cost_micros=i,
            user_id=f"u{i % 7 % 4}",
            team_id="t1",
            org_id="o1",
        )
        for i in range(12_000)
    ]
    for at in range(0, len(events), 2000):
        await storage.usage.insert_many(events[at : at + 2000])
    await _check_coarse(storage, events)
    written_hourly = await _actual(storage, t.rollup_hourly)
    written_daily = await _actual(storage, t.rollup_daily)
    async with storage.engine.begin() as conn:
        await conn.run_sync(lambda c: command.downgrade(_config(c), "0006"))
    await upgrade_engine(storage.engine)
    hourly = await _actual(storage, t.rollup_hourly)
    assert len(hourly) == 714  # 34 hours x 21 (key, model) groups
    assert hourly == written_hourly == _expected(events, 3600)
    assert await _actual(storage, t.rollup_daily) == written_daily == _expected(events, 86_400)
    await _check_coarse(storage, events)  # summed from the full rollups by the migration
