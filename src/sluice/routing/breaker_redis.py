"""Circuit breakers shared by replicas: transitions in Redis (Lua), decisions from a local cache.

Each deployment's breaker is a hash ``{prefix}{key}``: ``s`` state (0 closed, 1 open,
2 half-open), ``r`` ms (open: end of the cool-down; half-open: end of the probe lease),
``c`` consecutive failures, ``e`` epoch (bumped on every transition), ``h`` the replica
holding the probe, and the error-rate window as 10 buckets ``i{n}`` (bucket index),
``o{n}`` successes, ``f{n}`` failures — the same buckets as
:class:`~sluice.routing.health.WindowCounter`. Every transition publishes the deployment key
on ``channel``. Time is the injected clock's wall time (replicas should run NTP: a skew of
``d`` seconds moves their cool-downs by ``d``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sluice.clock import Clock
from sluice.limits.lua import STORE_ERRORS, LuaScript
from sluice.routing.breaker import (
    CLOSED_STATE,
    PROBE_RETRY_S,
    BreakerConfig,
    BreakerState,
    OnTransition,
)
from sluice.routing.breaker_scripts import CLAIM as _CLAIM
from sluice.routing.breaker_scripts import READ as _READ
from sluice.routing.breaker_scripts import RECORD as _RECORD
from sluice.routing.breaker_scripts import RELEASE as _RELEASE
from sluice.routing.health import WINDOW_BUCKETS
from sluice.tasks import spawn_in

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("sluice.routing")

_CLOSED, _OPEN, _HALF = 0, 1, 2
_WARN_EVERY_S = 10.0


def _raise_if_cancelled() -> None:
    """Honour a cancellation that redis-py lost.

    redis-py reads replies under ``asyncio.wait_for``, which on Python 3.11 returns the reply
    and drops a cancel that lands as the reply arrives (CPython gh-86296, fixed in 3.12): a
    background loop would then never end.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(slots=True)
class _Cached:
    """This replica's copy of one breaker, plus what only this replica knows."""

    state: int = _CLOSED
    until: float = 0.0
    """Wall seconds: ``r`` of the hash."""
    consecutive: int = 0
    epoch: int = 0
    requests: int = 0
    failures: int = 0
    permit: int = -1
    """The epoch in which this replica holds an unused probe claim."""
    probing: int = -1
    """The epoch in which this replica sent its probe (awaiting a verdict)."""
    wanted: bool = False
    """A request was refused here since the last claim attempt."""


class RedisBreakers:
    """:class:`~sluice.routing.breaker.Breakers` shared by every replica through Redis.

    :meth:`available` reads only this process's cache. :meth:`record` runs one Lua script
    (count, and open or close atomically) and refreshes the cache from its reply. The cache
    is also refreshed by :meth:`run` (start it in the lifespan's task group): on every
    transition published by any replica, and every ``refresh_s`` seconds.

    Probes: a replica refused by an open breaker whose cool-down is over (or that sees
    demand for one during its cool-down) claims the probe in Redis from :meth:`run` — one
    script, so exactly one replica wins — and its next :meth:`available` for that key
    admits the probe. So the very first request after a cool-down may be refused (with
    ``retry_at`` now) when no request came during the cool-down; with traffic, the claim
    is made as the cool-down ends.

    Consistency: a breaker that opens on one replica is closed to the others once they
    hear the transition (a pub/sub round trip, about a millisecond on a LAN; at most
    ``refresh_s`` if the message was lost): each may send a few more requests in that
    instant, and its verdicts on them are ignored by the open breaker. Probes stay one
    at a time across replicas.

    Start-up: pass every deployment key as ``keys`` and ``await sync()`` once before serving
    (then start :meth:`run`); until its first sync a replica treats every breaker as
    closed. A key first seen by :meth:`available` is closed until the refresh that call
    triggers.

    Failures of Redis: records are dropped (logged at most every 10 s) and each replica
    keeps deciding from its last known states; breakers never refuse traffic because Redis
    is down. Each call has a ``timeout_s`` deadline.
    """

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        config: BreakerConfig | None = None,
        *,
        keys: Iterable[str] = (),
        overrides: Mapping[str, BreakerConfig] | None = None,
        prefix: str = "sluice:cb:",
        channel: str = "sluice:cb",
        timeout_s: float = 0.5,
        refresh_s: float = 1.0,
        on_transition: OnTransition | None = None,
    ) -> None:
        if refresh_s <= 0:
            raise ValueError("refresh_s must be positive")
        self._redis = redis
        self._clock = clock
        self._config = config or BreakerConfig()
        self._overrides = dict(overrides or {})
        self._prefix = prefix
        self._channel = channel
        self._refresh_s = refresh_s
        self._on_transition = on_transition
        self._replica = uuid.uuid4().hex
        self._cache: dict[str, _Cached] = {key: _Cached() for key in keys}
        self._wake = asyncio.Event()
        self._warned_at: float | None = None
        self._record = LuaScript(redis, _RECORD, timeout_s=timeout_s)
        self._claim = LuaScript(redis, _CLAIM, timeout_s=timeout_s)
        self._release = LuaScript(redis, _RELEASE, timeout_s=timeout_s)
        self._read = LuaScript(redis, _READ, timeout_s=timeout_s)

    def config(self, key: str) -> BreakerConfig:
        return self._overrides.get(key, self._config)

    def _hash(self, key: str) -> str:
        return self._prefix + key

    def _now_ms(self) -> int:
        return round(self._clock.now() * 1000)

    def _width_ms(self, config: BreakerConfig) -> int:
        return max(1, round(config.window_s * 1000 / WINDOW_BUCKETS))

    def _ttl_ms(self, config: BreakerConfig) -> int:
        return round(2000 * (config.window_s + config.cooldown_s + config.probe_lease_s))

    # -- the hot path: no network ------------------------------------------------------

    def available(self, key: str) -> bool:
        cached = self._cache.get(key)
        if cached is None:
            self._cache[key] = _Cached()
            self._wake.set()  # learn its state from Redis soon
            return True
        if cached.state == _CLOSED:
            return True
        if cached.permit == cached.epoch and self._clock.now() < cached.until:
            cached.permit = -1
            cached.probing = cached.epoch
            return True
        if not cached.wanted:
            cached.wanted = True
            self._wake.set()
        return False

    def state(self, key: str) -> BreakerState:
        cached = self._cache.get(key)
        if cached is None:
            return CLOSED_STATE
        counts = (cached.consecutive, cached.requests, cached.failures)
        if cached.state == _CLOSED:
            return BreakerState("closed", None, *counts)
        now = self._clock.now()
        if cached.state == _OPEN and now < cached.until:
            return BreakerState("open", cached.until, *counts)
        probing = cached.state == _HALF and now < cached.until
        return BreakerState("half_open", None, *counts, probe_in_flight=probing)

    def retry_at(self, keys: Iterable[str]) -> float | None:
        now = self._clock.now()
        soonest: float | None = None
        for key in keys:
            cached = self._cache.get(key)
            if cached is None or cached.state == _CLOSED or now >= cached.until:
                return now
            at = min(cached.until, now + PROBE_RETRY_S) if cached.state == _HALF else cached.until
            soonest = at if soonest is None else min(soonest, at)
        return soonest

    # -- verdicts: one script each ------------------------------------------------------

    async def record(self, key: str, *, ok: bool) -> None:
        config = self.config(key)
        cached = self._cache.setdefault(key, _Cached())
        cached.probing = -1
        args: list[str | int] = [
            self._now_ms(),
            1 if ok else 0,
            config.failures,
            repr(config.error_rate),
            config.min_requests,
            self._width_ms(config),
            round(config.cooldown_s * 1000),
            self._ttl_ms(config),
            self._channel,
            key,
        ]
        try:
            reply = await self._record([self._hash(key)], args)
        except STORE_ERRORS:
            self._warn("could not record a breaker verdict")
            return
        self._apply(key, cached, reply)

    async def release(self, key: str) -> None:
        cached = self._cache.get(key)
        if cached is None or cached.probing != cached.epoch:
            return  # not this replica's probe: nothing to give back
        cached.probing = -1
        args: list[str | int] = [
            self._now_ms(),
            self._width_ms(self.config(key)),
            self._replica,
            self._channel,
            key,
        ]
        try:
            reply = await self._release([self._hash(key)], args)
        except STORE_ERRORS:
            self._warn("could not release a breaker probe; it frees when its lease ends")
            return
        self._apply(key, cached, reply)

    def _apply(self, key: str, cached: _Cached, reply: Sequence[Any]) -> None:
        state, until_ms, consecutive, epoch, requests, failures = (int(v) for v in reply)
        before = cached.state
        cached.state = state
        cached.until = until_ms / 1000
        cached.consecutive = consecutive
        cached.epoch = epoch
        cached.requests = requests
        cached.failures = failures
        if state == _CLOSED:
            cached.wanted = False
        if state != before and self._on_transition is not None:
            self._on_transition(key, self.state(key))

    def _warn(self, message: str) -> None:
        now = self._clock.monotonic()
        if self._warned_at is None or now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("%s: Redis is unavailable; breakers decide from cached states", message)

    # -- keeping the cache fresh ----------------------------------------------------------

    async def sync(self) -> None:
        """Refresh every known breaker from Redis, then claim the probes this replica
        wants. :meth:`run` calls it; tests call it instead of running the loop.

        Raises what Redis raises (:data:`~sluice.limits.lua.STORE_ERRORS`)."""
        keys = list(self._cache)
        if keys:
            args: list[str | int] = [self._now_ms()]
            args += [self._width_ms(self.config(k)) for k in keys]
            flat = await self._read([self._hash(k) for k in keys], args)
            for i, key in enumerate(keys):
                self._apply(key, self._cache[key], flat[6 * i : 6 * i + 6])
        for key, cached in list(self._cache.items()):
            if cached.wanted and cached.state != _CLOSED and self._clock.now() >= cached.until:
                cached.wanted = False
                await self._claim_probe(key, cached)

    async def _claim_probe(self, key: str, cached: _Cached) -> None:
        config = self.config(key)
        args: list[str | int] = [
            self._now_ms(),
            self._width_ms(config),
            round(config.probe_lease_s * 1000),
            self._replica,
            self._ttl_ms(config),
            self._channel,
            key,
        ]
        reply = await self._claim([self._hash(key)], args)
        self._apply(key, cached, reply[1:])
        if int(reply[0]) == 1:
            cached.permit = cached.epoch

    def _next_wait(self) -> float:
        """Until the next periodic refresh, or sooner when a wanted probe comes due."""
        wait = self._refresh_s
        now = self._clock.now()
        for cached in self._cache.values():
            if cached.wanted and cached.state != _CLOSED:
                wait = min(wait, max(0.0, cached.until - now))
        return wait

    async def run(self) -> None:
        """Keep the cache fresh until cancelled: listen for transitions on ``channel`` and
        refresh on each, every ``refresh_s``, and when a wanted probe comes due."""
        async with asyncio.TaskGroup() as group:
            spawn_in(group, self._listen(), name="breaker-listen")
            await self._refresh_loop()

    async def _refresh_loop(self) -> None:
        wait = 0.0
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # that arrives as the event is set, and the loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except STORE_ERRORS:
                self._warn("could not refresh breaker states")
                wait = self._refresh_s
            else:
                wait = self._next_wait()
            _raise_if_cancelled()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self._redis.pubsub()
                async with pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        # "subscribe": the server confirmed; anything published before
                        # was missed, so refresh. "message": a transition.
                        if message.get("type") in ("subscribe", "message"):
                            self._wake.set()
                        _raise_if_cancelled()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._warn("lost the breaker transition channel")
                await asyncio.sleep(1.0)
