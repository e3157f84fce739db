"""The router's back-off between retries, on the fake clock: nothing here waits."""

from __future__ import annotations

import asyncio
import random

from sluice.clock import FakeClock
from sluice.config.model import RoutingConfig
from sluice.routing.breaker import MemoryBreakers
from sluice.routing.health import DeploymentStats
from sluice.routing.router import Router
from sluice.routing.table import ModelTable


def _router(clock: FakeClock, **routing: float) -> Router:
    return Router(
        ModelTable([]),
        stats=DeploymentStats(clock),
        breakers=MemoryBreakers(clock),
        config=RoutingConfig(**routing),  # type: ignore[arg-type]
        clock=clock,
        rng=random.Random(7),
    )


def _far() -> float:
    return asyncio.get_running_loop().time() + 600


async def test_the_back_off_doubles_with_jitter_up_to_its_ceiling() -> None:
    clock = FakeClock()
    router = _router(clock, backoff_base_s=0.25, backoff_max_s=1.0)
    for attempt in range(5):
        assert await router.backoff(attempt, None, _far())
    ceilings = [0.25, 0.5, 1.0, 1.0, 1.0]
    assert len(clock.sleeps) == 5
    for waited, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= waited <= ceiling
    assert clock.monotonic() == sum(clock.sleeps)  # the wait moved the fake clock


async def test_a_retry_after_within_the_cap_is_waited_exactly() -> None:
    clock = FakeClock()
    assert await _router(clock, retry_after_cap_s=10).backoff(0, 7.5, _far())
    assert clock.sleeps == [7.5] and clock.now() == 1_700_000_007.5


async def test_a_retry_after_above_the_cap_is_not_waited_for() -> None:
    clock = FakeClock()
    assert not await _router(clock, retry_after_cap_s=10).backoff(0, 10.5, _far())
    assert clock.sleeps == []


async def test_no_wait_that_would_end_past_the_deadline() -> None:
    clock = FakeClock()
    soon = asyncio.get_running_loop().time() + 1.0
    assert not await _router(clock).backoff(0, 2.0, soon)
    assert not await _router(clock, backoff_base_s=4, backoff_max_s=4).backoff(0, None, soon)
    assert clock.sleeps == []


async def test_a_zero_back_off_does_not_sleep() -> None:
    clock = FakeClock()
    assert await _router(clock, backoff_base_s=0).backoff(3, None, _far())
    assert clock.sleeps == []
