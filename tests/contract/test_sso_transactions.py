"""The sign-in transaction store over memory and Redis: single use, expiring."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from sluice.auth.oidc.transactions import (
    TTL_S,
    MemoryTransactions,
    RedisTransactions,
    Transaction,
    TransactionStore,
)
from sluice.clock import FakeClock


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[TransactionStore, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield MemoryTransactions(clock), clock
        return
    from redis.asyncio import Redis

    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisTransactions(client), clock
    finally:
        await client.aclose()


def tx(clock: FakeClock) -> Transaction:
    return Transaction("main", "n", "v", "/ui/keys", "b", "http://gw/cb", clock.now())


async def test_a_transaction_is_taken_once(store: tuple[TransactionStore, FakeClock]) -> None:
    transactions, clock = store
    state = secrets.token_urlsafe(16)
    await transactions.put(state, tx(clock))
    assert await transactions.take(state) == tx(clock)
    assert await transactions.take(state) is None
    assert await transactions.take("never-" + state) is None


async def test_an_old_transaction_is_gone() -> None:
    clock = FakeClock()
    transactions = MemoryTransactions(clock)
    await transactions.put("s", tx(clock))
    clock.advance(TTL_S)
    assert await transactions.take("s") is None
