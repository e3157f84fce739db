"""The process's background work, started in the lifespan's task group: the usage writer,
the metrics sampler, Redis upkeep, breaker sync, and keeping keys and policies current."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sluice.clock import Clock
from sluice.control.catalog import CatalogService
from sluice.control.policies import PolicyService
from sluice.control.sync import KEYS_CHANNEL, KeySync
from sluice.outage import OutageLog
from sluice.routing.breaker import MemoryBreakers
from sluice.runtime import Runtime

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from sluice.routing.breaker_redis import RedisBreakers

log = logging.getLogger("sluice")


async def poll_keys(
    sync: KeySync,
    policies: PolicyService,
    catalog: CatalogService,
    *,
    interval_s: float,
    clock: Clock,
) -> None:
    """Reload keys, policies and the model catalogue every ``interval_s``, or at once when
    told of a change."""
    outage = OutageLog(log, "key refresh", meanwhile="serving the cached keys", clock=clock)
    while True:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_s):
                await sync.changed.wait()
        sync.changed.clear()
        try:
            await sync.refresh()
            await policies.follow()
            await catalog.follow()
        except Exception as exc:
            outage.failed(exc)
        else:
            outage.succeeded()


async def reload_on_hangup(catalog: CatalogService) -> None:
    """Re-read the config file's providers and models on SIGHUP (where the platform has
    the signal); the handler is removed when the task ends."""
    import signal

    loop = asyncio.get_running_loop()
    hangup = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGHUP, hangup.set)
    except (AttributeError, NotImplementedError, RuntimeError, ValueError):
        # No SIGHUP on this platform, or not the main thread (an embedded app): the file is
        # then re-read by ``sluice config reload`` only.
        log.debug("SIGHUP cannot be handled here; re-read the config with `sluice config reload`")
        return
    try:
        while True:
            await hangup.wait()
            hangup.clear()
            await catalog.reload_file()
    finally:
        loop.remove_signal_handler(signal.SIGHUP)


async def listen_keys(sync: KeySync, redis: Redis, *, clock: Clock) -> None:
    """Wake the poll loop when another process announces a change on Redis."""
    outage = OutageLog(
        log,
        "Redis key-change subscription",
        meanwhile="polling the database for key changes",
        dependency="Redis",
        is_outage=redis_down,
        clock=clock,
    )
    while True:
        try:
            pubsub = redis.pubsub()
            async with pubsub:
                await pubsub.subscribe(KEYS_CHANNEL)
                outage.succeeded()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        sync.changed.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            outage.failed(exc)
            await asyncio.sleep(1.0)


def redis_down(exc: BaseException) -> bool:
    """Redis cannot be reached or does not answer (by exception type)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout

    return isinstance(exc, RedisConnectionError | RedisTimeout | OSError)


async def start(rt: Runtime, sync: KeySync, breakers: MemoryBreakers | RedisBreakers) -> None:
    """Start the background work that needs no database (the usage writer only writes
    rows, and there are none before the database answered)."""
    spawn = rt.tasks.spawn
    spawn(rt.usage.run(), name="usage-writer")
    spawn(rt.observability.sample_forever(), name="metrics-sampler")
    if rt.redis is not None:
        spawn(listen_keys(sync, rt.redis, clock=rt.clock), name="key-listen")
        from sluice.budgets.redis import RedisBudgets
        from sluice.limits.redis import RedisLimiter

        if isinstance(rt.limiter, RedisLimiter):  # slot leases and owed releases
            spawn(rt.limiter.upkeep(), name="limits-upkeep")
        if isinstance(rt.budgets, RedisBudgets):  # owed settlements
            spawn(rt.budgets.upkeep(), name="budgets-upkeep")
    if not isinstance(breakers, MemoryBreakers):
        try:
            await breakers.sync()  # start from the breakers the other replicas see
        except Exception:
            log.warning("Redis unreachable at start; breakers start closed", exc_info=True)
        spawn(breakers.run(), name="breaker-sync")
