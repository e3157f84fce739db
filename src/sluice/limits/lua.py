"""Running a Lua script on Redis by its SHA, loading it when the server does not know it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import NoScriptError, RedisError

if TYPE_CHECKING:
    from redis.asyncio import Redis

STORE_ERRORS: tuple[type[Exception], ...] = (RedisError, TimeoutError)
"""What a call to the store raises when Redis is down or too slow."""


class LuaScript:
    """One script bound to one client, with a deadline per call.

    ``EVALSHA``; on ``NOSCRIPT`` (first use, or after the server restarted or flushed its
    script cache) ``SCRIPT LOAD`` and retry once. A call that misses ``timeout_s`` raises
    ``TimeoutError``; the script may still have run on the server.
    """

    def __init__(self, redis: Redis, source: str, *, timeout_s: float) -> None:
        self._redis = redis
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest()
        self._timeout_s = timeout_s

    async def __call__(self, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run it; Redis errors propagate (see :data:`STORE_ERRORS`)."""
        async with asyncio.timeout(self._timeout_s):
            try:
                return await self._eval(keys, args)
            except NoScriptError:
                await cast(Awaitable[Any], self._redis.script_load(self._source))
                return await self._eval(keys, args)

    def _eval(self, keys: Sequence[str], args: Sequence[str | int]) -> Awaitable[Any]:
        return self._redis.evalsha(self._sha, len(keys), *keys, *args)
