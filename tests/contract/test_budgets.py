"""One contract suite for the budget store seam, run over the memory and Redis backends.

Time is a fake clock; period boundaries are crossed by moving it, never by sleeping.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from sluice.budgets import (
    BudgetExceeded,
    BudgetReservation,
    BudgetSpec,
    BudgetStore,
    format_usd,
    period_bounds,
    seed_budgets,
    usd_to_micros,
)
from sluice.budgets.memory import MemoryBudgets
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError
from tests.services import PrivateRedis

KEY = "key:key_x"
TEAM = "team:t1"
ORG = "org:o1"
TUESDAY_NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()


def at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


@dataclass
class Harness:
    store: BudgetStore
    clock: FakeClock
    make_replica: Callable[[], Awaitable[BudgetStore]]
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@pytest.fixture(params=["memory", "redis"])
async def budgets(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock(TUESDAY_NOON)
    if request.param == "memory":
        store = MemoryBudgets(clock)

        async def same() -> BudgetStore:
            return store

        harness = Harness(store, clock, same)
    else:
        from redis.asyncio import Redis

        from sluice.budgets.redis import RedisBudgets

        url = request.getfixturevalue("redis_url")
        prefix = f"sluice:test:{uuid.uuid4().hex}:"
        clients: list[Redis] = []

        async def make() -> BudgetStore:
            client = Redis.from_url(url)
            clients.append(client)
            return RedisBudgets(client, clock, prefix=prefix)

        async def cleanup() -> None:
            keys = [k async for k in clients[0].scan_iter(match=f"{prefix}*")]
            if keys:
                await clients[0].delete(*keys)
            for client in clients:
                await client.aclose()

        harness = Harness(await make(), clock, make, [cleanup])
    try:
        yield harness
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


async def refused(
    store: BudgetStore, checks: list[tuple[str, BudgetSpec]], amount: int
) -> BudgetExceeded:
    with pytest.raises(BudgetExceeded) as info:
        await store.reserve(checks, amount)
    return info.value


async def test_admits_until_a_budget_is_full_then_refuses_holding_nothing(budgets: Harness) -> None:
    store = budgets.store
    checks = [(KEY, BudgetSpec(usd=0.01, period="total")), (TEAM, BudgetSpec(usd=0.012))]
    await store.reserve(checks, 4000)
    await store.reserve(checks, 4000)
    exc = await refused(store, checks, 4000)

    assert [(e.scope, e.period, e.limit_micros) for e in exc.exhausted] == [(KEY, "total", 10_000)]
    assert exc.message == (
        "budget exceeded: this request may cost up to $0.004 (its input and maximum output at "
        "the model's price, held until it ends), more than is left of key key_x's total "
        "budget: $0.002 of $0.01 left ($0.00 spent, $0.008 held by requests in flight; never "
        "resets)"
    )
    assert exc.retry_after_s is None
    # The refused request held nothing in the team budget: 8000 + 4000 still fit.
    await store.reserve([(TEAM, BudgetSpec(usd=0.012))], 4000)
    await refused(store, [(TEAM, BudgetSpec(usd=0.012))], 1)


async def test_settle_records_the_actual_cost_and_release_records_nothing(
    budgets: Harness,
) -> None:
    store, spec = budgets.store, BudgetSpec(usd=1, period="day")
    held = await store.reserve([(KEY, spec)], 5000)
    assert await store.spent(KEY, spec) == 0
    await store.settle(held, 3200)
    await store.settle(held, 3200)
    await store.release(held)
    assert held.closed and await store.spent(KEY, spec) == 3200

    other = await store.reserve([(KEY, spec)], 5000)
    await store.release(other)
    await store.settle(other, 999)
    assert await store.spent(KEY, spec) == 3200
    # Nothing is left held: the whole remaining million minus the spend fits.
    await store.reserve([(KEY, spec)], 1_000_000 - 3200)


async def test_every_exhausted_budget_is_named_with_its_reset(budgets: Harness) -> None:
    store = budgets.store
    checks = [
        (KEY, BudgetSpec(usd=0.005, period="day")),
        (TEAM, BudgetSpec(usd=0.004, period="week")),
        (ORG, BudgetSpec(usd=100, period="month")),
    ]
    await store.settle(await store.reserve(checks, 4000), 4000)
    exc = await refused(store, checks, 1500)

    assert isinstance(exc, GatewayError)
    assert exc.kind is ErrorKind.POLICY_BUDGET_EXCEEDED and exc.status == 429
    assert exc.to_openai()["error"] == {
        "message": exc.message,
        "type": "budget_exceeded",
        "param": None,
        "code": "budget_exceeded",
    }
    assert exc.message == (
        "budget exceeded: this request may cost up to $0.0015 (its input and maximum output "
        "at the model's price, held until it ends), more than is left of key key_x's day "
        "budget: $0.001 of $0.005 left ($0.004 spent; resets 2026-03-11T00:00:00Z, in 12 h); "
        "team t1's week budget: $0.00 of $0.004 left ($0.004 spent; resets "
        "2026-03-16T00:00:00Z, in 5 d 12 h)"
    )
    assert exc.retry_after_s == at(2026, 3, 16) - TUESDAY_NOON  # the later of the two


async def test_an_exhausted_or_zero_budget_refuses_even_free_requests(budgets: Harness) -> None:
    store = budgets.store
    await refused(store, [(KEY, BudgetSpec(usd=0))], 0)
    spec = BudgetSpec(usd=0.001)
    await store.settle(await store.reserve([(KEY, spec)], 1000), 1000)
    await refused(store, [(KEY, spec)], 0)
    free = await store.reserve([(TEAM, spec)], 0)
    await store.settle(free, 0)


async def test_fifty_racing_requests_fit_a_budget_of_ten(budgets: Harness) -> None:
    replicas = [budgets.store, await budgets.make_replica()]
    spec = BudgetSpec(usd=0.01, period="month")  # ten requests of 1000 micro-dollars
    checks = [(ORG, BudgetSpec(usd=50)), (TEAM, spec)]
    results = await asyncio.gather(
        *(replicas[i % 2].reserve(checks, 1000) for i in range(50)), return_exceptions=True
    )
    admitted = [r for r in results if isinstance(r, BudgetReservation)]
    assert len(admitted) == 10
    assert all(isinstance(r, BudgetExceeded) for r in results if r not in admitted)

    costs = [900 + 7 * i for i in range(10)]
    await asyncio.gather(
        *(
            replicas[i % 2].settle(r, cost)
            for i, (r, cost) in enumerate(zip(admitted, costs, strict=True))
        )
    )
    assert await budgets.store.spent(TEAM, spec) == sum(costs)
    assert await budgets.store.spent(ORG, BudgetSpec(usd=50)) == sum(costs)


async def test_fifty_racing_requests_end_to_end(budgets: Harness) -> None:
    """Reserve, call, settle per request, all at once: never more than the budget admits."""
    replicas = [budgets.store, await budgets.make_replica()]
    spec = BudgetSpec(usd=0.01)

    tried = 0
    all_tried = asyncio.Event()

    async def request(i: int) -> int:
        nonlocal tried
        store = replicas[i % 2]
        try:
            held = await store.reserve([(KEY, spec)], 1000)
        finally:
            tried += 1
            if tried == 50:
                all_tried.set()
        try:
            await all_tried.wait()  # the upstream call, in flight until everyone has tried
            return 1000
        finally:
            await store.settle(held, 1000)

    results = await asyncio.gather(*(request(i) for i in range(50)), return_exceptions=True)
    paid = [r for r in results if isinstance(r, int)]
    assert len(paid) == 10
    assert await budgets.store.spent(KEY, spec) == sum(paid) == spec.limit_micros


@pytest.mark.parametrize(
    ("period", "last_second", "next_period"),
    [
        ("day", at(2026, 3, 10, 23, 59, 59), at(2026, 3, 11)),
        ("week", at(2026, 3, 15, 23, 59, 59), at(2026, 3, 16)),
        ("month", at(2026, 3, 31, 23, 59, 59), at(2026, 4, 1)),
    ],
)
async def test_periods_reset_on_utc_calendar_boundaries(
    budgets: Harness, period: str, last_second: float, next_period: float
) -> None:
    store, spec = budgets.store, BudgetSpec(usd=0.002, period=period)  # type: ignore[arg-type]
    total = BudgetSpec(usd=0.01, period="total")
    checks = [(KEY, spec), (TEAM, total)]
    await store.settle(await store.reserve(checks, 2000), 2000)
    budgets.clock.advance(last_second - budgets.clock.now())
    exc = await refused(store, checks, 1)
    assert exc.retry_after_s == 1.0

    budgets.clock.advance(1)
    assert await store.spent(KEY, spec) == 0
    assert await store.spent(TEAM, total) == 2000  # a total budget never resets
    await store.settle(await store.reserve(checks, 2000), 1500)
    assert await store.spent(KEY, spec) == 1500
    assert await store.spent(TEAM, total) == 3500


async def test_a_request_settled_after_midnight_is_spend_of_the_day_it_started(
    budgets: Harness,
) -> None:
    store, spec = budgets.store, BudgetSpec(usd=0.001, period="day")
    budgets.clock.advance(at(2026, 3, 10, 23, 59, 50) - budgets.clock.now())
    held = await store.reserve([(KEY, spec)], 1000)
    budgets.clock.advance(20)
    await store.settle(held, 800)
    assert await store.spent(KEY, spec) == 0
    await store.reserve([(KEY, spec)], 1000)


async def test_budgets_of_different_periods_are_independent(budgets: Harness) -> None:
    store = budgets.store
    day, month = BudgetSpec(usd=0.002, period="day"), BudgetSpec(usd=0.003, period="month")
    checks = [(KEY, day), (KEY, month)]
    await store.settle(await store.reserve(checks, 2000), 2000)
    budgets.clock.advance(86_400)
    assert (await store.spent(KEY, day), await store.spent(KEY, month)) == (0, 2000)
    exc = await refused(store, checks, 1500)
    assert [e.period for e in exc.exhausted] == ["month"]
    await store.reserve(checks, 1000)


async def test_load_seeds_the_spend_without_double_counting(budgets: Harness) -> None:
    store, spec = budgets.store, BudgetSpec(usd=0.01, period="month")
    start, _ = period_bounds("month", budgets.clock.now())
    await store.load(KEY, "month", start=start, spent_micros=7000)
    assert await store.spent(KEY, spec) == 7000
    await refused(store, [(KEY, spec)], 3001)

    await store.load(KEY, "month", start=start, spent_micros=5000)  # never lowers
    assert await store.spent(KEY, spec) == 7000
    await store.settle(await store.reserve([(KEY, spec)], 1000), 1000)
    await store.load(KEY, "month", start=start, spent_micros=7500)  # the store saw more
    assert await store.spent(KEY, spec) == 8000
    await store.load(KEY, "month", start=start, spent_micros=9000)
    assert await store.spent(KEY, spec) == 9000

    previous, _ = period_bounds("month", start - 1)
    await store.load(KEY, "month", start=previous, spent_micros=99_999)
    assert await store.spent(KEY, spec) == 9000


async def test_seed_from_the_usage_records(budgets: Harness, database_url: str) -> None:
    """Budgets survive a restart: seed each period's spend from the stored costs."""
    engine = create_async_engine(database_url)
    table = sa.Table(
        f"usage_seed_{uuid.uuid4().hex[:8]}",
        sa.MetaData(),
        sa.Column("scope", sa.String(64)),
        sa.Column("created_at", sa.Float),
        sa.Column("cost_micros", sa.BigInteger),
    )
    now = budgets.clock.now()
    rows = [
        (KEY, at(2026, 3, 10, 11), 1500),  # today
        (KEY, at(2026, 3, 9, 23), 700),  # this week and month, not today
        (KEY, at(2026, 2, 27), 100_000),  # last month
        (TEAM, at(2026, 3, 9, 1), 2500),  # Monday: this week
        (TEAM, at(2026, 3, 8, 23), 40),  # Sunday: last week
    ]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(
                table.insert(),
                [{"scope": s, "created_at": t, "cost_micros": c} for s, t, c in rows],
            )

        async def spent_since(scope: str, start: int) -> int:
            query = sa.select(sa.func.coalesce(sa.func.sum(table.c.cost_micros), 0)).where(
                table.c.scope == scope, table.c.created_at >= start
            )
            async with engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())

        specs = [
            (KEY, BudgetSpec(usd=1, period="day")),
            (KEY, BudgetSpec(usd=1, period="month")),
            (TEAM, BudgetSpec(usd=1, period="week")),
            (TEAM, BudgetSpec(usd=2, period="week")),
        ]
        await seed_budgets(budgets.store, specs, spent_since=spent_since, now=now)
        assert [await budgets.store.spent(s, spec) for s, spec in specs] == [
            1500,
            2200,
            2500,
            2500,
        ]
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
        await engine.dispose()


def test_budget_spec_and_money() -> None:
    assert BudgetSpec(usd=0.1).limit_micros == 100_000
    assert BudgetSpec(usd=12.345678, period="total").limit_micros == 12_345_678
    assert BudgetSpec(usd=1e-7).limit_micros == 0
    assert usd_to_micros("0.0000005") == 1
    assert [format_usd(m) for m in (0, 10_000, 12_500_000, 125, 1_000_000_000)] == [
        "$0.00",
        "$0.01",
        "$12.50",
        "$0.000125",
        "$1000.00",
    ]
    with pytest.raises(ValueError, match="usd must be zero or more"):
        BudgetSpec(usd=-1)
    with pytest.raises(ValueError, match="period must be one of day, week, month, total"):
        BudgetSpec(usd=1, period="year")  # type: ignore[arg-type]


def test_period_bounds_are_utc_calendar_periods() -> None:
    now = at(2028, 2, 29, 13, 14, 15)  # a leap day, Tuesday
    assert period_bounds("day", now) == (int(at(2028, 2, 29)), int(at(2028, 3, 1)))
    assert period_bounds("week", now) == (int(at(2028, 2, 28)), int(at(2028, 3, 6)))
    assert period_bounds("month", now) == (int(at(2028, 2, 1)), int(at(2028, 3, 1)))
    assert period_bounds("month", at(2027, 12, 31, 23)) == (
        int(at(2027, 12, 1)),
        int(at(2028, 1, 1)),
    )
    assert period_bounds("total", now) == (0, None)


# -- Redis only: expiry and failures -----------------------------------------------------


async def test_redis_keys_expire_a_day_after_their_period(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sluice.budgets.redis import RedisBudgets

    clock = FakeClock(TUESDAY_NOON)
    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    client = Redis.from_url(redis_url)
    try:
        store = RedisBudgets(client, clock, prefix=prefix)
        checks = [
            (KEY, BudgetSpec(usd=1, period="month")),
            (KEY, BudgetSpec(usd=1, period="total")),
        ]
        await store.settle(await store.reserve(checks, 10), 10)
        month_key = f"{prefix}{KEY}:month:{int(at(2026, 3, 1))}"
        ttl = (at(2026, 4, 2) - TUESDAY_NOON) * 1000
        assert ttl - 10_000 < await client.pttl(month_key) <= ttl
        assert await client.pttl(f"{prefix}{KEY}:total:0") == -1
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_redis_hold_of_a_dead_replica_is_freed_after_its_lease(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sluice.budgets.redis import RedisBudgets

    clock = FakeClock(TUESDAY_NOON)
    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    dead, alive = Redis.from_url(redis_url), Redis.from_url(redis_url)
    spec = BudgetSpec(usd=0.01, period="total")
    try:
        zombie = await RedisBudgets(dead, clock, prefix=prefix, lease_s=600).reserve(
            [(KEY, spec)], 8000
        )
        await dead.aclose()  # the replica dies without settling
        store = RedisBudgets(alive, clock, prefix=prefix, lease_s=600)
        held = await store.reserve([(KEY, spec)], 1000)
        await refused(store, [(KEY, spec)], 2000)
        clock.advance(599)
        await refused(store, [(KEY, spec)], 2000)

        clock.advance(2)  # the dead replica's lease is over: its 8000 are free again
        await store.settle(await store.reserve([(KEY, spec)], 9000), 9000)
        await store.settle(held, 500)
        await store.settle(zombie, 300)  # late, from a replica that came back: cost counted once
        assert await store.spent(KEY, spec) == 9800
        await store.reserve([(KEY, spec)], 200)
        await refused(store, [(KEY, spec)], 1)
    finally:
        keys = [k async for k in alive.scan_iter(match=f"{prefix}*")]
        if keys:
            await alive.delete(*keys)
        await alive.aclose()


@pytest.mark.parametrize("where", ["down", "too slow"])
async def test_redis_unreachable_refuses_with_503_and_settle_does_not_raise(
    where: str, request: pytest.FixtureRequest
) -> None:
    from redis.asyncio import Redis

    from sluice.budgets.base import BudgetHold
    from sluice.budgets.redis import RedisBudgets

    if where == "down":
        client, deadline = Redis.from_url("redis://127.0.0.1:1/0"), 5.0
    else:  # a deadline of zero expires at the first wait for the server
        client, deadline = Redis.from_url(request.getfixturevalue("redis_url")), 0.0
    try:
        store = RedisBudgets(client, FakeClock(TUESDAY_NOON), timeout_s=deadline)
        for call in (
            store.reserve([(KEY, BudgetSpec(usd=1))], 10),
            store.spent(KEY, BudgetSpec(usd=1)),
            store.load(KEY, "month", start=0, spent_micros=1),
        ):
            with pytest.raises(GatewayError) as info:
                await call
            assert info.value.kind is ErrorKind.GATEWAY_UNAVAILABLE
        held = BudgetReservation(
            id="r1", amount_micros=10, holds=(BudgetHold(KEY, "month", 0, None),)
        )
        await store.settle(held, 10)
        assert held.closed
    finally:
        await client.aclose()


async def test_redis_a_settle_during_a_stall_is_sent_again_and_counted_once(
    private_redis: PrivateRedis,
) -> None:
    """Redis freezes while a request settles: the settle times out (it may still run when
    Redis wakes), is sent again once Redis answers, frees the hold and adds the cost once,
    in every budget of the request."""
    from redis.asyncio import Redis

    from sluice.budgets import scripts
    from sluice.budgets.redis import RedisBudgets
    from sluice.limits.lua import LuaScript

    clock = FakeClock(TUESDAY_NOON)
    client = Redis.from_url(private_redis.url)
    checks = [(KEY, BudgetSpec(usd=0.01, period="day")), (TEAM, BudgetSpec(usd=1, period="month"))]
    try:
        store = RedisBudgets(client, clock, timeout_s=0.5)
        held = await store.reserve(checks, 6000)
        await refused(store, checks, 5000)  # the key's 10 000 hold 6000 in flight
        private_redis.freeze()
        try:
            await store.settle(held, 2500)
            assert store.owed.pending == 1
            assert not await store.owed.retry()  # still frozen: kept for later
        finally:
            private_redis.thaw()
        for _ in range(20):  # bounded: Redis answers again within a few tries
            if await store.owed.retry():
                break
        assert store.owed.pending == 0
        for scope, spec in checks:
            assert await store.spent(scope, spec) == 2500
        # The same guarded settle sent yet again (a copy that reached the server late)
        # changes nothing: the holds are gone.
        keys = []
        for hold in held.holds:
            key = f"sluice:budget:{hold.scope}:{hold.period}:{hold.start}"
            keys += [key, f"{key}:holds"]
        replay = [f"{held.id}:6000", 6000, 2500, 1, 0, 0]
        await LuaScript(client, scripts.ADJUST, timeout_s=5)(keys, replay)
        for scope, spec in checks:
            assert await store.spent(scope, spec) == 2500
        await store.settle(await store.reserve(checks, 7500), 7500)  # the hold is gone
        await refused(store, checks, 1)
        assert await store.spent(KEY, checks[0][1]) == 10_000
    finally:
        await client.aclose()
