"""Alerts over SQLite and PostgreSQL with a fake clock and a real webhook receiver on
loopback: thresholds fire once per period, replicas sharing a database fire once, breaker
incidents fire once, failed deliveries are retried and recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sluice.alerts import AlertQuery, WatchedDeployment
from sluice.budgets.memory import MemoryBudgets
from sluice.budgets.spec import BudgetSpec, period_bounds, usd_to_micros
from sluice.clock import FakeClock
from sluice.routing.breaker import BreakerConfig, MemoryBreakers
from sluice.storage.sql.repository import SqlStorage
from tests.alerts_support import (
    DAY_START,
    Receiver,
    make_service,
    principal_with,
    webhook_receiver,
)

TEAM = "team:t1"
DAILY = BudgetSpec(usd=10, period="day")
DEP = WatchedDeployment("mock/chat", "mock-gpt", "mock", "chat")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as r:
        yield r


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def spend(budgets: MemoryBudgets, clock: FakeClock, usd: float) -> None:
    """Add settled spend (as the usage of requests would), past the limit if need be."""
    start, _ = period_bounds("day", clock.now())
    spent = await budgets.spent(TEAM, DAILY) + usd_to_micros(usd)
    await budgets.load(TEAM, "day", start=start, spent_micros=spent)


def hook(receiver: Receiver, **extra: object) -> dict[str, object]:
    return {"webhooks": [{"url": receiver.url, "name": "ops", **extra}]}


async def test_thresholds_fire_once_each_and_again_next_period(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 3600)
    budgets = MemoryBudgets(clock)
    owner = principal_with((TEAM, DAILY), team_id="t1", org_id="o1")
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=budgets,
        clock=clock,
        principals=[owner],
        config=hook(receiver),
    )

    async def step(usd: float) -> list[int | None]:
        await spend(budgets, clock, usd)
        fired = await service.check_budgets()
        await service.drain()
        return [a.threshold_pct for a in fired]

    assert await step(4.99) == []
    assert await step(0.01) == [50]  # exactly 50 %
    assert await step(0) == []
    assert await step(3.0) == [80]
    assert await step(1.99) == []
    assert await step(0.01) == [100]
    assert await step(5.0) == []  # over the limit: nothing new in this period
    assert [b["sluice"]["threshold_pct"] for b in receiver.bodies] == [50, 80, 100]
    stored = await storage.alerts.list(AlertQuery())
    assert [(a.threshold_pct, a.delivery, a.attempts) for a in stored] == [
        (100, "sent", 1),
        (80, "sent", 1),
        (50, "sent", 1),
    ]
    assert all(a.period_start == DAY_START and a.org_id == "o1" for a in stored)
    assert stored[0].spent_micros == 10_000_000 and stored[0].limit_micros == 10_000_000

    clock.advance(86_400)  # the next day: a new period, the thresholds fire again
    assert await step(0) == []
    assert await step(6.0) == [50]
    again = await storage.alerts.list(AlertQuery(limit=1))
    assert again[0].period_start == DAY_START + 86_400 and again[0].threshold_pct == 50
    assert len(receiver.bodies) == 4


async def test_a_jump_sends_the_highest_threshold_and_records_the_rest_superseded(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 60)
    budgets = MemoryBudgets(clock)
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=budgets,
        clock=clock,
        principals=[principal_with((TEAM, DAILY))],
        config=hook(receiver),
    )
    await spend(budgets, clock, 9.0)
    fired = await service.check_budgets()
    await service.drain()
    assert [a.threshold_pct for a in fired] == [80]
    stored = {a.threshold_pct: a.delivery for a in await storage.alerts.list(AlertQuery())}
    assert stored == {80: "sent", 50: "superseded"}
    assert len(receiver.bodies) == 1
    assert await service.check_budgets() == []


async def test_two_replicas_sharing_one_database_fire_once(
    database_url: str, storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    """Two processes, one database, one shared budget store (what Redis is for replicas):
    every threshold is recorded and delivered once, however the checks interleave."""
    clock = FakeClock(DAY_START + 60)
    budgets = MemoryBudgets(clock)
    other = SqlStorage.from_url(database_url)
    try:
        replicas = [
            make_service(
                repo=repo,
                session=session,
                budgets=budgets,
                clock=clock,
                principals=[principal_with((TEAM, DAILY))],
                config=hook(receiver),
            )
            for repo in (storage.alerts, other.alerts)
        ]
        fired: list[int | None] = []
        for usd in (5.0, 3.0, 2.0):
            await spend(budgets, clock, usd)
            for batch in await asyncio.gather(*(r.check_budgets() for r in replicas)):
                fired += [a.threshold_pct for a in batch]
            await asyncio.gather(*(r.drain() for r in replicas))
        assert sorted(fired) == [50, 80, 100]
        assert sorted(b["sluice"]["threshold_pct"] for b in receiver.bodies) == [50, 80, 100]
        # A replica started later (or restarted) finds them recorded and sends nothing.
        late = make_service(
            repo=other.alerts,
            session=session,
            budgets=budgets,
            clock=clock,
            principals=[principal_with((TEAM, DAILY))],
            config=hook(receiver),
        )
        assert await late.check_budgets() == []
        assert len(await storage.alerts.list(AlertQuery())) == 3
    finally:
        await other.close()


async def test_a_breaker_incident_fires_once_and_resolves_once(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START)
    breakers = MemoryBreakers(clock, BreakerConfig(failures=2, cooldown_s=30))
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=MemoryBudgets(clock),
        clock=clock,
        breakers=breakers,
        deployments=[DEP, DEP],  # one deployment serving two models is watched once
        config=hook(receiver, events=["breaker"]),
    )
    assert await service.check_breakers() == []
    for _ in range(2):
        await breakers.record(DEP.key, ok=False)
    [opened] = await service.check_breakers()
    assert opened.kind == "breaker_open" and opened.deployment == DEP.key
    assert opened.details["consecutive_failures"] == 2
    assert await service.check_breakers() == []
    clock.advance(31)
    assert breakers.available(DEP.key)  # the probe ...
    await breakers.record(DEP.key, ok=False)  # ... fails: open again, the same incident
    assert breakers.state(DEP.key).state == "open"
    assert await service.check_breakers() == []
    clock.advance(31)
    assert breakers.available(DEP.key)
    await breakers.record(DEP.key, ok=True)
    [resolved] = await service.check_breakers()
    assert resolved.kind == "breaker_resolved"
    assert resolved.details["opened_alert_id"] == opened.id
    assert resolved.details["open_s"] == 62
    await service.drain()
    assert [b["sluice"]["kind"] for b in receiver.bodies] == ["breaker_open", "breaker_resolved"]
    # A second incident later is a new alert.
    for _ in range(2):
        await breakers.record(DEP.key, ok=False)
    assert [a.kind for a in await service.check_breakers()] == ["breaker_open"]


@pytest.mark.redis
async def test_replicas_sharing_redis_breakers_record_one_open_alert(
    database_url: str,
    storage: SqlStorage,
    redis_url: str,
    receiver: Receiver,
    session: aiohttp.ClientSession,
) -> None:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers

    clock = FakeClock(DAY_START)
    tag = uuid.uuid4().hex
    redis = Redis.from_url(redis_url)
    other = SqlStorage.from_url(database_url)
    try:
        config = BreakerConfig(failures=2, cooldown_s=30)
        replicas = [
            RedisBreakers(
                redis, clock, config, keys=[DEP.key], prefix=f"t:{tag}:cb:", channel=f"t:{tag}"
            )
            for _ in range(2)
        ]
        services = [
            make_service(
                repo=repo,
                session=session,
                budgets=MemoryBudgets(clock),
                clock=clock,
                breakers=breakers,
                deployments=[DEP],
                config=hook(receiver),
            )
            for repo, breakers in zip((storage.alerts, other.alerts), replicas, strict=True)
        ]
        for _ in range(2):
            await replicas[0].record(DEP.key, ok=False)
        await replicas[1].sync()
        assert [b.state(DEP.key).state for b in replicas] == ["open", "open"]
        batches = await asyncio.gather(*(s.check_breakers() for s in services))
        assert sorted(len(b) for b in batches) == [0, 1]
        await asyncio.gather(*(s.drain() for s in services))
        assert len(receiver.bodies) == 1
        assert len(await storage.alerts.list(AlertQuery(kinds=("breaker_open",)))) == 1
    finally:
        await other.close()
        await redis.delete(f"t:{tag}:cb:{DEP.key}")
        await redis.aclose()


async def test_a_failing_webhook_is_retried_then_recorded_failed(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 60)
    budgets = MemoryBudgets(clock)
    waits = FakeClock()
    receiver.statuses = [503, 503, 503]
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=budgets,
        clock=clock,
        principals=[principal_with((TEAM, DAILY))],
        config=hook(receiver, retries=2, backoff_s=1.5),
        waits=waits,
    )
    await spend(budgets, clock, 5.0)
    await service.check_budgets()
    await service.drain()
    [alert] = await storage.alerts.list(AlertQuery())
    assert (alert.delivery, alert.attempts, alert.last_error) == ("failed", 3, "ops: HTTP 503")
    assert alert.delivered_at is None
    assert receiver.hits == 3 and waits.sleeps == [1.5, 3.0]
    assert "s3cr3t" not in (alert.last_error or "")


async def test_a_webhook_that_recovers_is_recorded_sent(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 60)
    receiver.statuses = [500, 429]
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=MemoryBudgets(clock),
        clock=clock,
        config=hook(receiver),
    )
    sent = await service.send_test()
    assert (sent.delivery, sent.attempts, sent.last_error) == ("sent", 3, None)
    assert sent.delivered_at == clock.now()
    [stored] = await storage.alerts.list(AlertQuery(kinds=("test",)))
    assert (stored.delivery, stored.attempts) == ("sent", 3)
    assert receiver.bodies[0]["sluice"]["kind"] == "test"


async def test_without_webhooks_alerts_are_still_recorded(
    storage: SqlStorage, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 60)
    budgets = MemoryBudgets(clock)
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=budgets,
        clock=clock,
        principals=[principal_with((TEAM, DAILY))],
    )
    await spend(budgets, clock, 5.0)
    assert len(await service.check_budgets()) == 1
    await service.drain()
    [alert] = await storage.alerts.list(AlertQuery())
    assert (alert.delivery, alert.attempts) == ("no_webhook", 0)


async def test_list_filters_and_pages(storage: SqlStorage, session: aiohttp.ClientSession) -> None:
    clock = FakeClock(DAY_START)
    service = make_service(
        repo=storage.alerts, session=session, budgets=MemoryBudgets(clock), clock=clock
    )
    for _ in range(5):
        await service.send_test()
        clock.advance(10)
    page = await storage.alerts.list(AlertQuery(limit=2))
    assert len(page) == 2 and page[0].id is not None and page[1].id is not None
    older = await storage.alerts.list(AlertQuery(limit=10, before_id=page[1].id))
    assert len(older) == 3 and all(a.id is not None and a.id < page[1].id for a in older)
    recent = await storage.alerts.list(AlertQuery(since=DAY_START + 25))
    assert len(recent) == 2
    assert await storage.alerts.list(AlertQuery(kinds=("budget",))) == []
    assert await storage.alerts.list(AlertQuery(visible_orgs=frozenset())) == []


async def test_the_background_loops_check_deliver_and_stop_when_cancelled(
    storage: SqlStorage, receiver: Receiver, session: aiohttp.ClientSession
) -> None:
    clock = FakeClock(DAY_START + 60)
    budgets = MemoryBudgets(clock)
    await spend(budgets, clock, 8.0)
    service = make_service(
        repo=storage.alerts,
        session=session,
        budgets=budgets,
        clock=clock,
        principals=[principal_with((TEAM, DAILY))],
        config={**hook(receiver), "check_interval_s": 3600},
    )
    task = asyncio.ensure_future(service.run())
    try:
        async with asyncio.timeout(10):
            await receiver.arrived.wait()
    finally:
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert receiver.bodies[0]["sluice"]["threshold_pct"] == 80
