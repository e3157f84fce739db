"""The private servers that outage tests stop and freeze really do stop and freeze."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.services import PrivatePostgres, PrivateRedis


async def test_private_redis_freezes_and_thaws(private_redis: PrivateRedis) -> None:
    client = aioredis.Redis.from_url(private_redis.url, socket_timeout=0.5)
    try:
        await client.set("k", "v")
        private_redis.freeze()
        with pytest.raises((TimeoutError, aioredis.TimeoutError)):
            await client.get("k")
        private_redis.thaw()
        fresh = aioredis.Redis.from_url(private_redis.url, socket_timeout=2)
        assert await fresh.get("k") == b"v"
        await fresh.aclose()
    finally:
        await client.aclose()


async def test_private_postgres_stops_and_restarts(private_postgres: PrivatePostgres) -> None:
    dsn = private_postgres.url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE t (x int)")
    await conn.close()
    private_postgres.stop()
    with pytest.raises(OSError, match=r"."):
        await asyncpg.connect(dsn, timeout=2)
    private_postgres.start()
    conn = await asyncpg.connect(dsn)
    assert await conn.fetchval("SELECT count(*) FROM t") == 0
    await conn.close()
    private_postgres.freeze()
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await asyncpg.connect(dsn, timeout=1)
    private_postgres.thaw()
