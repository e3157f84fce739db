"""One contract suite for the circuit-breaker seam, run over the memory and Redis backends.

Time is a fake clock (the Redis scripts are handed its "now"); nothing sleeps. A Redis
replica learns other replicas' transitions and claims probes in ``sync()`` (what its
``run()`` loop calls); the harness calls it where a replica would have run it, and is a
no-op for memory, whose "replicas" are one object.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest

from sluice.clock import FakeClock
from sluice.routing.breaker import (
    PROBE_RETRY_S,
    BreakerConfig,
    Breakers,
    BreakerState,
    MemoryBreakers,
    OnTransition,
)

K = "prov/model-a"
K2 = "prov/model-b"
CONFIG = BreakerConfig(
    failures=3, error_rate=0.5, window_s=60, min_requests=4, cooldown_s=30, probe_lease_s=10
)
RATE_ONLY = BreakerConfig(failures=100, error_rate=0.5, window_s=60, min_requests=4)


def aligned_clock() -> FakeClock:
    """At the start of a minute, so the window's 6 s buckets start where the test does."""
    start = 1_700_000_000.0
    return FakeClock(start - start % 60 + 60)


Make = Callable[..., Awaitable[Breakers]]


@dataclass
class Harness:
    clock: FakeClock
    make: Make
    """``await make(config, overrides=..., on_transition=...)``: a replica's breakers over the
    shared state (memory: the first call builds the one object, later calls return it)."""
    sync: Callable[[Breakers], Awaitable[None]]
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def admit(self, breakers: Breakers, key: str = K) -> bool:
        """Whether a request is admitted, letting the replica sync once if first refused."""
        if breakers.available(key):
            return True
        await self.sync(breakers)
        return breakers.available(key)

    async def fail(self, breakers: Breakers, times: int, key: str = K) -> None:
        for _ in range(times):
            await breakers.record(key, ok=False)


def _memory_harness(clock: FakeClock) -> Harness:
    made: list[MemoryBreakers] = []

    async def make(
        config: BreakerConfig = CONFIG,
        *,
        overrides: Mapping[str, BreakerConfig] | None = None,
        on_transition: OnTransition | None = None,
    ) -> Breakers:
        if not made:
            made.append(
                MemoryBreakers(clock, config, overrides=overrides, on_transition=on_transition)
            )
        return made[0]

    async def sync(breakers: Breakers) -> None:
        return None

    return Harness(clock, make, sync)


def _redis_harness(url: str, clock: FakeClock) -> Harness:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    clients: list[Redis] = []

    async def make(
        config: BreakerConfig = CONFIG,
        *,
        overrides: Mapping[str, BreakerConfig] | None = None,
        on_transition: OnTransition | None = None,
    ) -> Breakers:
        client = Redis.from_url(url)
        clients.append(client)
        return RedisBreakers(
            client,
            clock,
            config,
            keys=(K, K2),
            overrides=overrides,
            prefix=prefix,
            channel=prefix + "events",
            on_transition=on_transition,
        )

    async def sync(breakers: Breakers) -> None:
        assert isinstance(breakers, RedisBreakers)
        await breakers.sync()

    async def cleanup() -> None:
        if clients:
            keys = [k async for k in clients[0].scan_iter(match=f"{prefix}*")]
            if keys:
                await clients[0].delete(*keys)
        for client in clients:
            await client.aclose()

    harness = Harness(clock, make, sync)
    harness.cleanups.append(cleanup)
    return harness


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = aligned_clock()
    if request.param == "memory":
        harness = _memory_harness(clock)
    else:
        harness = _redis_harness(request.getfixturevalue("redis_url"), clock)
    try:
        yield harness
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


async def test_an_unknown_deployment_is_closed(backend: Harness) -> None:
    breakers = await backend.make()
    assert breakers.state(K) == BreakerState("closed")
    assert breakers.available(K)
    assert breakers.retry_at([]) is None
    assert breakers.retry_at([K]) == backend.clock.now()


async def test_opens_after_n_consecutive_failures(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 2)
    assert breakers.available(K)
    assert breakers.state(K).consecutive_failures == 2

    await backend.fail(breakers, 1)

    state = breakers.state(K)
    assert state.state == "open"
    assert state.retry_at == pytest.approx(backend.clock.now() + 30)
    assert state.consecutive_failures == 3
    assert not breakers.available(K)
    assert not await backend.admit(breakers)
    assert breakers.available(K2), "other deployments are not affected"


async def test_a_success_resets_the_consecutive_count(backend: Harness) -> None:
    breakers = await backend.make(BreakerConfig(failures=3, min_requests=100))
    await backend.fail(breakers, 2)
    await breakers.record(K, ok=True)
    await backend.fail(breakers, 2)
    assert breakers.state(K).state == "closed"
    assert breakers.state(K).consecutive_failures == 2
    await backend.fail(breakers, 1)
    assert breakers.state(K).state == "open"


async def test_opens_on_the_error_rate_once_the_window_holds_min_requests(
    backend: Harness,
) -> None:
    breakers = await backend.make(RATE_ONLY)
    await backend.fail(breakers, 2)
    await breakers.record(K, ok=True)
    state = breakers.state(K)
    assert state.state == "closed", "2 of 3 failed, but 3 < min_requests"
    assert (state.requests_in_window, state.failures_in_window) == (3, 2)

    await breakers.record(K, ok=True)
    assert breakers.state(K).state == "closed", "a success never opens a breaker"
    await backend.fail(breakers, 1)
    assert breakers.state(K).state == "open", "3 of 5 failed: 60% >= 50%"


async def test_below_the_error_rate_stays_closed(backend: Harness) -> None:
    breakers = await backend.make(RATE_ONLY)
    for _ in range(10):
        await breakers.record(K, ok=True)
        await breakers.record(K, ok=True)
        await backend.fail(breakers, 1)
    state = breakers.state(K)
    assert state.state == "closed"
    assert (state.requests_in_window, state.failures_in_window) == (30, 10)


async def test_failures_slide_out_of_the_window(backend: Harness) -> None:
    breakers = await backend.make(RATE_ONLY)
    await backend.fail(breakers, 3)
    backend.clock.advance(61)
    await backend.fail(breakers, 1)
    state = breakers.state(K)
    assert state.state == "closed", "the first three failures left the window"
    assert state.requests_in_window == 1

    backend.clock.advance(30)
    await backend.fail(breakers, 3)
    assert breakers.state(K).state == "open", "four failures within 60 s"


async def test_half_open_admits_one_probe_at_a_time(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    backend.clock.advance(29.9)
    assert not await backend.admit(breakers)

    backend.clock.advance(0.1)
    assert await backend.admit(breakers)
    state = breakers.state(K)
    assert state.state == "half_open"
    assert state.probe_in_flight
    assert not await backend.admit(breakers), "the probe is out"
    replica = await backend.make()
    await backend.sync(replica)  # a started replica has loaded the states
    assert not await backend.admit(replica), "another replica waits for the probe too"


async def test_one_probe_across_replicas(backend: Harness) -> None:
    a, b = await backend.make(), await backend.make()
    await backend.fail(a, 3)
    await asyncio.gather(backend.sync(a), backend.sync(b))
    backend.clock.advance(30)

    admitted = [a.available(K), b.available(K)]
    await asyncio.gather(backend.sync(a), backend.sync(b))
    admitted += [a.available(K), b.available(K), a.available(K), b.available(K)]

    assert admitted.count(True) == 1


async def test_a_successful_probe_closes_the_breaker(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    backend.clock.advance(30)
    assert await backend.admit(breakers)

    await breakers.record(K, ok=True)

    assert breakers.state(K) == BreakerState("closed")
    assert breakers.available(K)
    await backend.fail(breakers, 2)
    assert breakers.available(K), "the count started again from zero"


async def test_a_failed_probe_reopens_with_a_fresh_cooldown(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    backend.clock.advance(30)
    assert await backend.admit(breakers)

    await breakers.record(K, ok=False)

    state = breakers.state(K)
    assert state.state == "open"
    assert state.retry_at == pytest.approx(backend.clock.now() + 30)
    backend.clock.advance(29)
    assert not await backend.admit(breakers)
    backend.clock.advance(1)
    assert await backend.admit(breakers)


async def test_an_open_breaker_ignores_late_verdicts(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    await breakers.record(K, ok=True)  # a request sent before it opened
    assert breakers.state(K).state == "open"
    assert not breakers.available(K)


async def test_a_probe_without_a_verdict_frees_the_breaker_when_its_lease_ends(
    backend: Harness,
) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    backend.clock.advance(30)
    assert await backend.admit(breakers)
    backend.clock.advance(9)
    assert not await backend.admit(breakers)
    backend.clock.advance(1)
    assert await backend.admit(breakers), "the lease (10 s) ended: a new probe may go"


async def test_releasing_the_probe_lets_the_next_request_probe(backend: Harness) -> None:
    breakers = await backend.make()
    await backend.fail(breakers, 3)
    backend.clock.advance(30)
    assert await backend.admit(breakers)

    await breakers.release(K)

    assert await backend.admit(breakers)
    assert not await backend.admit(breakers)


async def test_retry_at_is_the_soonest_deployment(backend: Harness) -> None:
    breakers = await backend.make()
    opened = backend.clock.now()
    await backend.fail(breakers, 3, K)
    backend.clock.advance(10)
    await backend.fail(breakers, 3, K2)

    assert breakers.retry_at([K2]) == pytest.approx(opened + 40)
    assert breakers.retry_at([K, K2]) == pytest.approx(opened + 30)
    assert breakers.retry_at([K, "closed/one"]) == backend.clock.now()

    backend.clock.advance(20)
    assert breakers.retry_at([K, K2]) == backend.clock.now(), "K may probe now"
    assert await backend.admit(breakers)
    assert breakers.retry_at([K]) == pytest.approx(backend.clock.now() + PROBE_RETRY_S)
    assert breakers.retry_at([K, K2]) == pytest.approx(backend.clock.now() + PROBE_RETRY_S)


async def test_a_transition_is_visible_to_another_replica(backend: Harness) -> None:
    a, b = await backend.make(), await backend.make()
    assert b.available(K)

    await backend.fail(a, 3)
    await backend.sync(b)
    assert not b.available(K)
    assert b.state(K).state == "open"
    assert b.state(K).retry_at == pytest.approx(backend.clock.now() + 30)

    backend.clock.advance(30)
    assert await backend.admit(a)
    await a.record(K, ok=True)
    await backend.sync(b)
    assert b.state(K).state == "closed"
    assert b.available(K)


async def test_overrides_apply_per_deployment(backend: Harness) -> None:
    breakers = await backend.make(CONFIG, overrides={K2: BreakerConfig(failures=1)})
    await backend.fail(breakers, 1, K)
    await backend.fail(breakers, 1, K2)
    assert breakers.state(K).state == "closed"
    assert breakers.state(K2).state == "open"


async def test_transitions_are_reported(backend: Harness) -> None:
    seen: list[tuple[str, str]] = []
    breakers = await backend.make(on_transition=lambda key, s: seen.append((key, s.state)))
    await backend.fail(breakers, 3)
    backend.clock.advance(30)
    assert await backend.admit(breakers)
    await breakers.record(K, ok=True)
    assert seen == [(K, "open"), (K, "half_open"), (K, "closed")]


# -- Redis only: the background loop and a store that is down ----------------------------


async def test_a_replica_hears_transitions_without_polling(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers
    from sluice.tasks import spawn_in

    clock = aligned_clock()
    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    client_a, client_b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    heard: dict[str, asyncio.Event] = {"open": asyncio.Event(), "closed": asyncio.Event()}

    def on_transition(key: str, state: BreakerState) -> None:
        if state.state in heard:
            heard[state.state].set()

    channel = prefix + "events"
    a = RedisBreakers(client_a, clock, CONFIG, prefix=prefix, channel=channel)
    b = RedisBreakers(
        client_b,
        clock,
        CONFIG,
        prefix=prefix,
        channel=channel,
        refresh_s=3600,  # only the channel (or the resync after subscribing) can tell it
        on_transition=on_transition,
    )
    assert b.available(K)
    try:
        async with asyncio.timeout(10), asyncio.TaskGroup() as group:
            task = spawn_in(group, b.run(), name="breakers")
            for _ in range(3):
                await a.record(K, ok=False)
            await heard["open"].wait()
            assert b.state(K).state == "open"  # not available(): b would want the probe

            clock.advance(30)
            assert not a.available(K), "a wants the probe; its loop would claim it now"
            await a.sync()
            assert a.available(K)
            await a.record(K, ok=True)
            await heard["closed"].wait()
            assert b.available(K)
            task.cancel()
    finally:
        keys = [k async for k in client_a.scan_iter(match=f"{prefix}*")]
        if keys:
            await client_a.delete(*keys)
        await client_a.aclose()
        await client_b.aclose()


async def test_redis_down_fails_open_without_raising() -> None:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers

    client = Redis.from_url("redis://127.0.0.1:1/0")
    breakers = RedisBreakers(client, aligned_clock(), CONFIG, timeout_s=0.5)
    try:
        for _ in range(5):
            await breakers.record(K, ok=False)
        await breakers.release(K)
        assert breakers.available(K)
        assert breakers.state(K).state == "closed"
    finally:
        await client.aclose()


async def test_demand_during_the_cooldown_makes_a_replica_probe_as_it_ends(
    redis_url: str,
) -> None:
    harness = _redis_harness(redis_url, aligned_clock())
    try:
        a, idle, busy = await harness.make(), await harness.make(), await harness.make()
        await harness.fail(a, 3)
        await asyncio.gather(harness.sync(idle), harness.sync(busy))
        assert not busy.available(K)  # a request came during the cool-down

        harness.clock.advance(30)
        await harness.sync(busy)  # what its loop does when the cool-down ends
        await harness.sync(idle)
        assert busy.available(K), "the first request after the cool-down is the probe"
        assert not idle.available(K)
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


async def test_breaker_keys_expire_when_idle(redis_url: str) -> None:
    from redis.asyncio import Redis

    harness = _redis_harness(redis_url, aligned_clock())
    client = Redis.from_url(redis_url)
    try:
        breakers = await harness.make()
        await harness.fail(breakers, 1)
        keys = [k async for k in client.scan_iter(match="sluice:test:*")]
        ttls = [await client.pttl(k) for k in keys if k.decode().endswith(K)]
        ttl_ms = 2000 * (CONFIG.window_s + CONFIG.cooldown_s + CONFIG.probe_lease_s)
        assert ttls and all(0 < t <= ttl_ms for t in ttls)
    finally:
        await client.aclose()
        for cleanup in harness.cleanups:
            await cleanup()
