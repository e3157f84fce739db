"""The exact store shared by replicas: entries in Redis, with a TTL, indexed by scope and
model for invalidation."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.cache.base import Selector
from sluice.clock import Clock
from sluice.errors import ErrorKind, GatewayError

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
_STAMP = struct.Struct(">dd")  # stored at, expires at (epoch seconds)


class RedisAnswers:
    """:class:`~sluice.cache.base.AnswerStore` over Redis.

    An entry is one string key (``<prefix>e:<key>``): its stamps (stored at, expires at, by
    ``clock``) then the value, with a Redis expiry a little after its own so memory is
    reclaimed. An entry read after its stamp expired is absent, whatever Redis still holds
    (so replicas and tests agree with the injected clock). Every entry is also a member of
    its (scope, model) index, a sorted set scored by the time it was stored; the index names
    are a set, so :meth:`drop` walks only the indexes it selects. Index members of expired
    entries are trimmed on every store (older than ``max_ttl_s``). Each call has a
    ``timeout_s`` deadline; a failure or timeout raises ``gateway_dependency_unavailable``.
    """

    def __init__(
        self,
        redis: Redis,
        clock: Clock,
        *,
        prefix: str = "sluice:cache:",
        max_ttl_s: float = 86_400.0,
        timeout_s: float = 0.5,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._prefix = prefix
        self._max_ttl_s = max_ttl_s
        self._timeout_s = timeout_s
        self._indexes = prefix + "indexes"

    def _entry(self, key: str) -> str:
        return self._prefix + "e:" + key

    def _index(self, scope: str, model: str) -> str:
        return f"{self._prefix}i:{len(scope)}:{scope}:{model}"

    def _parse_index(self, name: str) -> tuple[str, str]:
        rest = name[len(self._prefix) + 2 :]
        size, _, tail = rest.partition(":")
        n = int(size)
        return tail[:n], tail[n + 1 :]

    async def _call(self, op: Awaitable[T]) -> T:
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self._timeout_s):
                return await op
        except (RedisError, TimeoutError, OSError) as exc:
            raise GatewayError(
                ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE,
                f"the cache store did not answer ({type(exc).__name__})",
            ) from exc

    async def get(self, key: str) -> bytes | None:
        raw: Any = await self._call(self._redis.get(self._entry(key)))
        if raw is None or len(raw) < _STAMP.size:
            return None
        _, expires_at = _STAMP.unpack_from(raw)
        if expires_at <= self._clock.now():
            return None
        return bytes(raw[_STAMP.size :])

    async def put(self, key: str, value: bytes, *, ttl_s: float, scope: str, model: str) -> None:
        now = self._clock.now()
        index = self._index(scope, model)
        entry = self._entry(key)

        async def run() -> None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(entry, _STAMP.pack(now, now + ttl_s) + value, px=int(ttl_s * 1000) + 1000)
            pipe.zadd(index, {key: now})
            pipe.zremrangebyscore(index, "-inf", now - self._max_ttl_s)
            pipe.expire(index, int(self._max_ttl_s) + 60)
            pipe.sadd(self._indexes, index)
            await pipe.execute()

        await self._call(run())

    async def delete(self, key: str) -> None:
        # Its index member stays until trimmed or dropped; a drop counts only entries deleted.
        await self._call(self._redis.delete(self._entry(key)))

    async def drop(self, selector: Selector) -> int:
        names: Any = await self._call(self._redis.smembers(self._indexes))
        removed = 0
        for raw in names:
            name = _text(raw)
            scope, model = self._parse_index(name)
            if selector.scope is not None and scope != selector.scope:
                continue
            if selector.model is not None and model != selector.model:
                continue
            removed += await self._drop_index(name, selector.older_than)
        return removed

    async def _drop_index(self, index: str, older_than: float | None) -> int:
        high: float | str = "+inf" if older_than is None else f"({older_than}"
        members: Any = await self._call(self._redis.zrangebyscore(index, "-inf", high))
        removed = 0
        for start in range(0, len(members), 500):
            batch = [_text(m) for m in members[start : start + 500]]
            removed += int(await self._call(self._redis.delete(*map(self._entry, batch))))
            await self._call(self._redis.zrem(index, *batch))
        if older_than is None or not await self._call(self._redis.zcard(index)):
            await self._call(self._redis.srem(self._indexes, index))
        return removed


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
