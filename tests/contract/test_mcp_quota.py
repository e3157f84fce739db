"""``mcp_rpm``: MCP tool calls counted per minute in their own buckets, over the memory and
the Redis limiter (a real Redis), never touching the model request buckets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from sluice.auth.principal import Principal
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, retry_after_value
from sluice.limits.base import Limiter
from sluice.limits.errors import LimitExceeded
from sluice.limits.memory import MemoryLimiter
from sluice.limits.spec import LimitSpec
from sluice.mcp.quota import admit_call

START = 1_700_000_040.0  # the start of a minute


@pytest.fixture(params=["memory", "redis"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Limiter, FakeClock]]:
    clock = FakeClock(START)
    if request.param == "memory":
        yield MemoryLimiter(clock), clock
        return
    from redis.asyncio import Redis

    from sluice.limits.redis import RedisLimiter

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisLimiter(client, prefix=prefix, clock=clock, lease_s=60), clock
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def principal(*, key_mcp: int | None = None, team_mcp: int | None = None) -> Principal:
    checks = []
    if key_mcp is not None:
        checks.append(("key:k1:mcp", LimitSpec(rpm=key_mcp)))
    if team_mcp is not None:
        checks.append(("team:t1:mcp", LimitSpec(rpm=team_mcp)))
    return Principal(
        key_id="k1",
        name="k",
        team_id="t1",
        limit_checks=(("key:k1", LimitSpec(rpm=1)),),
        mcp_limit_checks=tuple(checks),
    )


async def test_calls_beyond_mcp_rpm_get_a_429_with_retry_after(
    world: tuple[Limiter, FakeClock],
) -> None:
    limiter, clock = world
    p = principal(key_mcp=3)
    for _ in range(3):
        await admit_call(limiter, p)
    clock.advance(20)
    with pytest.raises(LimitExceeded) as caught:
        await admit_call(limiter, p)
    err = caught.value
    assert err.kind is ErrorKind.POLICY_RATE_LIMITED and err.status == 429
    assert err.code == "rate_limit_exceeded"
    assert [(x.scope, x.limit, x.value) for x in err.exceeded] == [("key:k1:mcp", "mcp_rpm", 3)]
    assert "mcp_rpm 3" in str(err)
    assert err.retry_after_s is not None and 1 <= err.retry_after_s <= 61
    assert retry_after_value(err) == str(int(err.retry_after_s))
    assert "retry-after-ms" in err.headers
    clock.advance(err.retry_after_s)
    await admit_call(limiter, p)  # admitted once the announced wait is over


async def test_tool_calls_never_use_the_model_request_buckets(
    world: tuple[Limiter, FakeClock],
) -> None:
    limiter, _ = world
    p = principal(key_mcp=5)
    for _ in range(5):
        await admit_call(limiter, p)
    # The model rpm of 1 is still whole: tool calls are counted apart.
    reservation = await limiter.reserve(p.limit_checks, input_estimate=0, output_estimate=0)
    await limiter.release(reservation)
    status = await limiter.remaining(p.mcp_limit_checks)
    assert status.requests is not None and status.requests.remaining == 0


async def test_the_tightest_level_refuses_and_a_refused_call_counts_nowhere(
    world: tuple[Limiter, FakeClock],
) -> None:
    limiter, _ = world
    p = principal(key_mcp=10, team_mcp=2)
    await admit_call(limiter, p)
    await admit_call(limiter, p)
    with pytest.raises(LimitExceeded) as caught:
        await admit_call(limiter, p)
    assert [x.scope for x in caught.value.exceeded] == ["team:t1:mcp"]
    key_status = await limiter.remaining([("key:k1:mcp", LimitSpec(rpm=10))])
    assert key_status.requests is not None and key_status.requests.remaining == 8


async def test_no_mcp_limit_admits_everything(world: tuple[Limiter, FakeClock]) -> None:
    limiter, _ = world
    p = principal()
    for _ in range(50):
        await admit_call(limiter, p)
