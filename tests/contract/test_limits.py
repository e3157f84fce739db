"""One contract suite for the limiter seam, run over the memory and Redis backends.

Time is a fake clock (the Redis script is handed its "now"); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError
from sluice.limits import (
    Limiter,
    LimitExceeded,
    LimitSpec,
    RateLimitStatus,
    Reservation,
    scope_id,
)
from sluice.limits.memory import MemoryLimiter
from tests.services import PrivateRedis

MINUTE = 60.0
DAY = 86_400.0
LEASE_S = 30.0
"""The Redis harness's slot lease (the default)."""
KEY = scope_id("key", "key_x")
TEAM = scope_id("team", "t1")
TEAM_MODEL = scope_id("team", "t1", model="m")


def aligned_clock(period_s: float = MINUTE) -> FakeClock:
    """A fake clock at the start of a window, so tests know where in it they are."""
    start = 1_700_000_000.0
    return FakeClock(start - start % period_s + period_s)


@dataclass
class Harness:
    limiter: Limiter
    clock: FakeClock
    make_replica: Callable[[], Awaitable[Limiter]]
    """Another process's view of the same limits (the same object for memory)."""
    keepalive: Callable[[], Awaitable[None]]
    """What the process does periodically for its requests in flight (Redis: renew their
    slot leases; memory: nothing, slots live as long as the process)."""
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _redis_harness(url: str, clock: FakeClock) -> Harness:
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    clients: list[Redis] = []

    async def make() -> Limiter:
        client = Redis.from_url(url)
        clients.append(client)
        return RedisLimiter(client, prefix=prefix, clock=clock, lease_s=LEASE_S)

    async def cleanup() -> None:
        keys = [k async for k in clients[0].scan_iter(match=f"{prefix}*")]
        if keys:
            await clients[0].delete(*keys)
        for client in clients:
            await client.aclose()

    limiter = await make()
    assert isinstance(limiter, RedisLimiter)
    harness = Harness(limiter, clock, make, limiter.leases.renew)
    harness.cleanups.append(cleanup)
    return harness


@pytest.fixture(params=["memory", "redis"])
async def limits(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = aligned_clock()
    if request.param == "memory":
        limiter = MemoryLimiter(clock)

        async def same() -> Limiter:
            return limiter

        async def nothing() -> None:
            return None

        harness = Harness(limiter, clock, same, nothing)
    else:
        harness = await _redis_harness(request.getfixturevalue("redis_url"), clock)
    try:
        yield harness
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


Checks = Sequence[tuple[str, LimitSpec]]


async def reserve(limiter: Limiter, checks: Checks, inp: int = 0, out: int = 0) -> Reservation:
    return await limiter.reserve(checks, input_estimate=inp, output_estimate=out)


async def refused(limiter: Limiter, checks: Checks, inp: int = 0, out: int = 0) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as info:
        await reserve(limiter, checks, inp, out)
    return info.value


def named(exc: LimitExceeded) -> set[tuple[str, str, int]]:
    return {(e.scope, e.limit, e.value) for e in exc.exceeded}


async def test_admits_up_to_the_limit_then_refuses_consuming_nothing(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(rpm=3)), (TEAM, LimitSpec(rpm=10))]
    for _ in range(3):
        await reserve(limits.limiter, checks)
    exc = await refused(limits.limiter, checks)
    assert named(exc) == {(KEY, "rpm", 3)}

    team = await limits.limiter.remaining([(TEAM, LimitSpec(rpm=10))])
    assert team.requests is not None
    assert (team.requests.limit, team.requests.remaining) == (10, 7)
    again = await refused(limits.limiter, checks)
    assert again.retry_after_ms == exc.retry_after_ms


async def test_every_exceeded_limit_is_named(limits: Harness) -> None:
    checks = [
        (KEY, LimitSpec(rpm=1)),
        (TEAM, LimitSpec(tpm_input=100)),
        (TEAM_MODEL, LimitSpec(tpm_output=50, rpm=10)),
    ]
    await reserve(limits.limiter, checks, 60, 15)
    limits.clock.advance(12)
    exc = await refused(limits.limiter, checks, 60, 45)

    assert named(exc) == {(KEY, "rpm", 1), (TEAM, "tpm_input", 100), (TEAM_MODEL, "tpm_output", 50)}
    assert exc.message.startswith("rate limit exceeded: ")
    for part in (
        "key key_x rpm 1 (retry in",
        "team t1 tpm_input 100",
        "team t1 model m tpm_output 50",
    ):
        assert part in exc.message
    assert isinstance(exc, GatewayError)
    assert exc.kind is ErrorKind.POLICY_RATE_LIMITED and exc.status == 429
    assert exc.to_openai()["error"] == {
        "message": exc.message,
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    # All three must clear: the answer waits for the slowest, here the next window.
    assert exc.retry_after_ms == max(e.retry_after_ms or 0 for e in exc.exceeded)
    assert exc.retry_after_ms is not None and exc.retry_after_ms > 48_000
    assert exc.retry_after_s == float(-(-exc.retry_after_ms // 1000))
    assert exc.headers["retry-after-ms"] == str(exc.retry_after_ms)
    assert exc.headers["x-ratelimit-limit-requests"] == "1"
    assert exc.headers["x-ratelimit-remaining-requests"] == "0"
    assert exc.headers["x-ratelimit-limit-tokens"] == "50"
    assert exc.headers["x-ratelimit-remaining-tokens"] == "35"


async def test_retry_after_is_when_the_request_fits(limits: Harness) -> None:
    """Refused at ``retry_after - 2 ms``, admitted at ``retry_after``, in every situation a
    random walk over two window lengths reaches."""
    checks = [(KEY, LimitSpec(rpm=6, tpm_input=1000))]
    rng = random.Random(4)
    refusals = 0
    for _ in range(60):
        need = rng.randint(1, 450)
        try:
            await reserve(limits.limiter, checks, need)
        except LimitExceeded as exc:
            refusals += 1
            wait = exc.retry_after_ms
            assert wait is not None and wait > 0
            if wait > 2:
                limits.clock.advance((wait - 2) / 1000)
                await refused(limits.limiter, checks, need)
                limits.clock.advance(2 / 1000)
            else:
                limits.clock.advance(wait / 1000)
            await reserve(limits.limiter, checks, need)
        limits.clock.advance(rng.choice([0.0, 0.5, 3.0, 17.0, 41.0]))
    assert refusals > 10


async def test_the_window_slides(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(rpm=2))]
    await reserve(limits.limiter, checks)
    await reserve(limits.limiter, checks)
    await refused(limits.limiter, checks)

    limits.clock.advance(MINUTE)  # next window; the previous one still weighs fully
    exc = await refused(limits.limiter, checks)
    assert exc.retry_after_ms == 30_001  # 2 * (60 - t) / 60 + 1 <= 2  from t = 30 s

    limits.clock.advance(30)
    await reserve(limits.limiter, checks)
    await refused(limits.limiter, checks)

    limits.clock.advance(2 * MINUTE)
    await reserve(limits.limiter, checks)
    await reserve(limits.limiter, checks)
    await refused(limits.limiter, checks)


async def test_settle_replaces_estimates_with_actual_usage(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(tpm_input=100, tpm_output=100))]
    first = await reserve(limits.limiter, checks, 80, 50)
    assert first.status.tokens is not None and first.status.tokens.remaining == 20
    assert named(await refused(limits.limiter, checks, 30, 10)) == {(KEY, "tpm_input", 100)}

    await limits.limiter.settle(first, input_tokens=20, output_tokens=5)
    second = await reserve(limits.limiter, checks, 70, 90)
    assert second.status.tokens is not None and second.status.tokens.remaining == 5
    assert named(await refused(limits.limiter, checks, 11, 0)) == {(KEY, "tpm_input", 100)}
    await limits.limiter.settle(first, input_tokens=0, output_tokens=0)  # already settled
    assert named(await refused(limits.limiter, checks, 0, 6)) == {(KEY, "tpm_output", 100)}
    await reserve(limits.limiter, checks, 10, 5)


async def test_settle_after_the_window_moved_fixes_the_window_it_was_counted_in(
    limits: Harness,
) -> None:
    checks = [(KEY, LimitSpec(tpm_input=100))]
    held = await reserve(limits.limiter, checks, 90)
    limits.clock.advance(MINUTE)
    await refused(limits.limiter, checks, 85)  # 90 still weighs fully at the window start
    await limits.limiter.settle(held, input_tokens=10, output_tokens=0)
    await reserve(limits.limiter, checks, 85)
    await refused(limits.limiter, checks, 10)


async def test_release_takes_back_estimates_and_optionally_the_request(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(rpm=2, tpm_input=100))]
    first = await reserve(limits.limiter, checks, 60)
    await limits.limiter.release(first)
    second = await reserve(limits.limiter, checks, 100)  # the 60 tokens came back
    both = {(KEY, "rpm", 2), (KEY, "tpm_input", 100)}
    assert named(await refused(limits.limiter, checks, 1)) == both

    await limits.limiter.release(second, refund_request=True)
    await limits.limiter.release(second, refund_request=True)  # idempotent
    await reserve(limits.limiter, checks, 100)
    assert named(await refused(limits.limiter, checks, 1)) == both


async def test_parallel_slots_are_freed_by_settle_and_release_once(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(max_parallel=2)), (TEAM, LimitSpec(max_parallel=5))]
    a = await reserve(limits.limiter, checks)
    b = await reserve(limits.limiter, checks)
    exc = await refused(limits.limiter, checks)
    assert named(exc) == {(KEY, "max_parallel", 2)}
    assert exc.retry_after_ms == 1000
    assert "key key_x max_parallel 2 (retry when a request finishes)" in exc.message

    await limits.limiter.settle(a, input_tokens=1, output_tokens=1)
    await limits.limiter.settle(a, input_tokens=1, output_tokens=1)
    await limits.limiter.release(a)
    c = await reserve(limits.limiter, checks)
    await refused(limits.limiter, checks)

    await limits.limiter.release(b)
    await limits.limiter.release(b)
    await limits.limiter.settle(b, input_tokens=0, output_tokens=0)
    await reserve(limits.limiter, checks)  # c and this one are in flight
    await refused(limits.limiter, checks)
    assert a.closed and b.closed and not c.closed


async def _race(limiters: Sequence[Limiter], checks: Checks, n: int) -> list[Any]:
    return await asyncio.gather(
        *(reserve(limiters[i % len(limiters)], checks, 5, 5) for i in range(n)),
        return_exceptions=True,
    )


@pytest.mark.parametrize(
    "spec", [LimitSpec(rpm=10), LimitSpec(tpm_input=50), LimitSpec(max_parallel=10)]
)
async def test_fifty_racing_requests_get_exactly_ten_places(
    limits: Harness, spec: LimitSpec
) -> None:
    replicas = [limits.limiter, await limits.make_replica()]
    results = await _race(replicas, [(KEY, LimitSpec(rpm=1000)), (TEAM, spec)], 50)
    admitted = [r for r in results if isinstance(r, Reservation)]
    refusals = [r for r in results if isinstance(r, LimitExceeded)]
    assert (len(admitted), len(refusals)) == (10, 40)
    key = await limits.limiter.remaining([(KEY, LimitSpec(rpm=1000))])
    assert key.requests is not None and key.requests.remaining == 990  # refusals left no trace


async def test_a_request_larger_than_a_limit_is_refused_for_good(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(tpm_output=100, rpm=1))]
    exc = await refused(limits.limiter, checks, 10, 150)
    assert named(exc) == {(KEY, "tpm_output", 100)}
    assert "key key_x tpm_output 100 (this request alone needs 150)" in exc.message
    assert exc.retry_after_s is None and exc.retry_after_ms is None
    assert "retry-after-ms" not in exc.headers
    await reserve(limits.limiter, checks, 10, 100)


async def test_zero_refuses_everything(limits: Harness) -> None:
    exc = await refused(limits.limiter, [(KEY, LimitSpec(rpm=0))])
    assert exc.retry_after_s is None


async def test_day_limits(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(rpd=3, tpd_output=1000, rpm=100))]
    limits.clock.advance(DAY - limits.clock.now() % DAY)  # midnight UTC
    for _ in range(3):
        await reserve(limits.limiter, checks, 0, 100)
        limits.clock.advance(7 * MINUTE)
    exc = await refused(limits.limiter, checks, 0, 100)
    assert named(exc) == {(KEY, "rpd", 3)}
    assert "key key_x rpd 3" in exc.message
    limits.clock.advance(2 * DAY)
    await reserve(limits.limiter, checks, 0, 700)
    assert named(await refused(limits.limiter, checks, 0, 301)) == {(KEY, "tpd_output", 1000)}


async def test_no_limits_holds_nothing(limits: Harness) -> None:
    held = await reserve(limits.limiter, [(KEY, LimitSpec())], 10, 10)
    assert held.holds == () and held.slots == ()
    assert held.status.headers() == {}
    await limits.limiter.settle(held, input_tokens=1, output_tokens=1)
    assert (await limits.limiter.remaining([])).headers() == {}


async def test_status_shows_the_most_constrained_buckets(limits: Harness) -> None:
    other_key = scope_id("key", "key_y")
    await reserve(limits.limiter, [(other_key, LimitSpec()), (TEAM, LimitSpec(rpm=5))])
    await reserve(limits.limiter, [(other_key, LimitSpec()), (TEAM, LimitSpec(rpm=5))])
    limits.clock.advance(15)
    checks = [
        (KEY, LimitSpec(rpm=10, tpm_input=1000, tpm_output=200)),
        (TEAM, LimitSpec(rpm=5)),
    ]
    held = await reserve(limits.limiter, checks, 300, 150)
    assert held.status.headers() == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "1m45s",
        "x-ratelimit-limit-tokens": "200",
        "x-ratelimit-remaining-tokens": "50",
        "x-ratelimit-reset-tokens": "1m45s",
    }
    now = await limits.limiter.remaining(checks)
    assert now == held.status
    limits.clock.advance(MINUTE + 15)  # 30 s into the next window: half the counts remain
    later = await limits.limiter.remaining(checks)
    assert later.requests is not None and later.requests.remaining == 3
    assert later.requests.reset_ms == 30_000
    assert later.tokens is not None and later.tokens.remaining == 125


def test_limit_spec_validation() -> None:
    assert LimitSpec(rpm=0).rpm == 0
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="rpm must be a non-negative integer"):
            LimitSpec(rpm=bad)  # type: ignore[arg-type]


# -- Redis only: leases, server time, failures -------------------------------------------


async def test_redis_slot_of_a_dead_replica_comes_back_after_its_lease(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    clock = aligned_clock()
    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    dead, alive = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        checks = [(KEY, LimitSpec(max_parallel=1))]
        await RedisLimiter(dead, prefix=prefix, clock=clock, lease_s=600).reserve(
            checks, input_estimate=0, output_estimate=0
        )
        await dead.aclose()  # the replica dies without settling
        limiter = RedisLimiter(alive, prefix=prefix, clock=clock, lease_s=600)
        await refused(limiter, checks)
        assert 600_000 < await alive.pttl(f"{prefix}p:{KEY}") <= 660_000
        clock.advance(600.001)
        held = await reserve(limiter, checks)
        await limiter.settle(held, input_tokens=0, output_tokens=0)
        await reserve(limiter, checks)
        ttl = await alive.pttl(f"{prefix}w:{KEY}:60")
        assert ttl == -2  # no window limit, no window key
    finally:
        keys = [k async for k in alive.scan_iter(match=f"{prefix}*")]
        if keys:
            await alive.delete(*keys)
        await alive.aclose()


async def test_redis_uses_the_server_clock_by_default(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    client = Redis.from_url(redis_url)
    try:
        limiter = RedisLimiter(client, prefix=prefix)
        checks = [(KEY, LimitSpec(rpm=2, tpd_input=10))]
        held = await reserve(limiter, checks, 4)
        seconds, micros = await client.time()
        server_ms = seconds * 1000 + micros // 1000
        for hold in held.holds:
            assert hold.start_ms % hold.window_ms == 0
            assert 0 <= server_ms - hold.start_ms < hold.window_ms + 1000
        assert abs(server_ms - time.time() * 1000) < 60_000
        await limiter.settle(held, input_tokens=2, output_tokens=0)
        await reserve(limiter, checks, 8)
        assert named(await refused(limiter, checks, 1)) == {(KEY, "rpm", 2), (KEY, "tpd_input", 10)}
        ttl = await client.pttl(f"{prefix}w:{KEY}:86400")
        assert 2 * DAY * 1000 < ttl <= 2 * DAY * 1000 + 60_000
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.parametrize("where", ["down", "too slow"])
async def test_redis_unreachable_refuses_with_503_and_settle_does_not_raise(
    where: str, request: pytest.FixtureRequest
) -> None:
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    if where == "down":
        client, limiter_timeout = Redis.from_url("redis://127.0.0.1:1/0"), 5.0
    else:  # a deadline of zero expires at the first wait for the server
        client, limiter_timeout = Redis.from_url(request.getfixturevalue("redis_url")), 0.0
    try:
        limiter = RedisLimiter(client, timeout_s=limiter_timeout)
        with pytest.raises(GatewayError) as info:
            await reserve(limiter, [(KEY, LimitSpec(rpm=1))])
        assert info.value.kind is ErrorKind.GATEWAY_UNAVAILABLE and info.value.status == 503
        orphan = Reservation(
            id="r1",
            input_estimate=1,
            output_estimate=1,
            holds=(),
            slots=(KEY,),
            status=RateLimitStatus(),
        )
        await limiter.release(orphan)
        assert orphan.closed
    finally:
        await client.aclose()


async def test_remaining_reports_free_in_flight_slots(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(max_parallel=3)), (TEAM, LimitSpec(max_parallel=5, rpm=100))]
    idle = await limits.limiter.remaining(checks)
    assert idle.slots is not None
    assert (idle.slots.limit, idle.slots.remaining, idle.slots.reset_ms) == (3, 3, 0)
    held = [await reserve(limits.limiter, checks) for _ in range(2)]
    replica = await limits.make_replica()
    status = await replica.remaining(checks)
    assert status.slots is not None and (status.slots.limit, status.slots.remaining) == (3, 1)
    team = await replica.remaining([(TEAM, LimitSpec(max_parallel=5))])
    assert team.slots is not None and team.slots.remaining == 3
    await limits.limiter.settle(held[0], input_tokens=0, output_tokens=0)
    await limits.limiter.release(held[1])
    after = await limits.limiter.remaining(checks)
    assert after.slots is not None and after.slots.remaining == 3
    # A window-only check reports no slot set; reserve's status (headers) never carries one.
    assert (await limits.limiter.remaining([(TEAM, LimitSpec(rpm=100))])).slots is None
    r = await reserve(limits.limiter, checks)
    assert r.status.slots is None
    await limits.limiter.release(r)


# -- Slot leases: renewed while a request runs, pruned one by one when they end -----------


async def test_a_running_request_keeps_its_slot_however_long_it_runs(limits: Harness) -> None:
    checks = [(KEY, LimitSpec(max_parallel=1))]
    running = await reserve(limits.limiter, checks)
    replica = await limits.make_replica()
    for _ in range(10):  # ten leases long, renewed every two thirds of one
        limits.clock.advance(LEASE_S * 2 / 3)
        await limits.keepalive()
        assert named(await refused(replica, checks)) == {(KEY, "max_parallel", 1)}
    await limits.limiter.settle(running, input_tokens=0, output_tokens=0)
    after = await reserve(replica, checks)
    await replica.release(after)


async def test_redis_expired_slots_are_pruned_one_by_one(redis_url: str) -> None:
    """A dead replica's slot frees at the end of its own lease, while a live request's
    renewed slot in the same set stays taken."""
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    harness = await _redis_harness(redis_url, aligned_clock())
    try:
        live = harness.limiter
        assert isinstance(live, RedisLimiter)
        checks = [(KEY, LimitSpec(max_parallel=2)), (TEAM, LimitSpec(max_parallel=5))]
        dead = await harness.make_replica()
        await reserve(dead, checks)  # its replica dies: nothing renews it
        harness.clock.advance(LEASE_S / 2)
        mine = await reserve(live, checks)
        assert named(await refused(live, checks)) == {(KEY, "max_parallel", 2)}
        harness.clock.advance(LEASE_S / 2 + 0.001)  # the dead slot's lease is over
        await live.leases.renew()  # renews the live slot and prunes the dead one
        client = Redis.from_url(redis_url)
        try:
            members = await client.zrange(f"{_prefix_of(live)}p:{KEY}", 0, -1)
        finally:
            await client.aclose()
        assert members == [mine.id.encode()]
        third = await reserve(live, checks)
        assert named(await refused(live, checks)) == {(KEY, "max_parallel", 2)}
        harness.clock.advance(LEASE_S * 2 / 3)
        await live.leases.renew()
        assert named(await refused(live, checks)) == {(KEY, "max_parallel", 2)}
        await live.release(third)
        await live.release(mine)
        status = await live.remaining(checks)
        assert status.slots is not None and status.slots.remaining == 2
        assert live.leases.held == 0
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


def _prefix_of(limiter: object) -> str:
    prefix = getattr(limiter, "_prefix")  # noqa: B009 - the harness picks a random one
    assert isinstance(prefix, str)
    return prefix


async def test_redis_a_release_during_a_stall_is_retried_and_counted_once(
    private_redis: PrivateRedis,
) -> None:
    """Redis freezes while a request settles: the settle times out (its command may still
    run when Redis wakes), is retried once Redis answers, frees the slot and applies the
    settled tokens exactly once."""
    from redis.asyncio import Redis

    from sluice.limits import scripts
    from sluice.limits.lua import LuaScript
    from sluice.limits.redis import RedisLimiter

    clock = aligned_clock()
    client = Redis.from_url(private_redis.url)
    try:
        checks = [(KEY, LimitSpec(max_parallel=1, tpm_input=100))]
        limiter = RedisLimiter(client, clock=clock, lease_s=LEASE_S, timeout_s=0.5)
        held = await reserve(limiter, checks, 40)
        assert limiter.leases.held == 1
        private_redis.freeze()
        try:
            await limiter.settle(held, input_tokens=10, output_tokens=0)
            assert (limiter.leases.owed.pending, limiter.leases.held) == (1, 0)
            assert not await limiter.leases.owed.retry()  # still frozen: kept for later
            assert limiter.leases.owed.pending == 1
        finally:
            private_redis.thaw()
        for _ in range(20):  # bounded: Redis answers again within a few tries
            if await limiter.leases.owed.retry():
                break
        assert limiter.leases.owed.pending == 0
        status = await limiter.remaining(checks)
        assert status.slots is not None and status.slots.remaining == 1
        assert status.tokens is not None and status.tokens.remaining == 90  # 40 → 10, once
        # The same release sent yet again changes nothing: the slot is gone.
        keys = [f"sluice:rl:w:{KEY}:60", f"sluice:rl:p:{KEY}"]
        args = [1, held.id, held.holds[0].start_ms, 60_000, 0, -30, 0]
        assert await LuaScript(client, scripts.ADJUST, timeout_s=5)(keys, args) == 0
        after = await limiter.remaining(checks)
        assert after.tokens is not None and after.tokens.remaining == 90
        await reserve(limiter, checks)
    finally:
        await client.aclose()


async def test_redis_upkeep_renews_running_requests_and_stops_with_its_task(
    redis_url: str,
) -> None:
    """The background task renews the leases of the requests in flight (server time) and
    only theirs: a released slot is not renewed, nor taken back."""
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    client = Redis.from_url(redis_url)
    try:
        limiter = RedisLimiter(client, prefix=prefix, lease_s=1.5)
        checks = [(KEY, LimitSpec(max_parallel=3))]
        running, done = await reserve(limiter, checks), await reserve(limiter, checks)
        await limiter.release(done)
        key = f"{prefix}p:{KEY}"
        first = await client.zscore(key, running.id)
        assert first is not None
        upkeep = asyncio.ensure_future(limiter.upkeep())
        try:
            for _ in range(500):  # bounded: a renewal is due every half second
                score = await client.zscore(key, running.id)
                if score is not None and score > first:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the lease was not renewed")
            assert await client.zscore(key, done.id) is None
        finally:
            upkeep.cancel()
            await asyncio.gather(upkeep, return_exceptions=True)
        await limiter.release(running)
        assert await client.zcard(key) == 0
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
