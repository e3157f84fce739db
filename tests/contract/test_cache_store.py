"""One contract suite for the response cache's exact store, over memory and Redis.

Time is a fake clock (entries carry their own expiry stamp, so Redis agrees with it);
nothing sleeps.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from sluice.cache.base import AnswerStore, Selector
from sluice.cache.keys import exact_key, normalised
from sluice.cache.memory import MemoryAnswers
from sluice.clock import FakeClock
from sluice.errors import ErrorKind, GatewayError
from tests.services import PrivateRedis

START = 1_700_000_000.0


@dataclass
class Harness:
    store: AnswerStore
    clock: FakeClock
    replica: Callable[[], Awaitable[AnswerStore]]
    """Another process's view of the same entries (the same object for memory)."""
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


async def _redis(url: str, clock: FakeClock) -> Harness:
    from redis.asyncio import Redis

    from sluice.cache.redis import RedisAnswers

    prefix = f"sluice:test:{uuid.uuid4().hex}:"
    clients: list[Redis] = []

    async def make() -> AnswerStore:
        client = Redis.from_url(url)
        clients.append(client)
        return RedisAnswers(client, clock, prefix=prefix, max_ttl_s=3600)

    async def cleanup() -> None:
        found = [k async for k in clients[0].scan_iter(match=f"{prefix}*")]
        if found:
            await clients[0].delete(*found)
        for client in clients:
            await client.aclose()

    harness = Harness(await make(), clock, make)
    harness.cleanups.append(cleanup)
    return harness


@pytest.fixture(params=["memory", "redis"])
async def answers(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FakeClock(START)
    if request.param == "memory":
        store = MemoryAnswers(clock, max_bytes=1 << 20)

        async def same() -> AnswerStore:
            return store

        harness = Harness(store, clock, same)
    else:
        harness = await _redis(request.getfixturevalue("redis_url"), clock)
    try:
        yield harness
    finally:
        for cleanup in harness.cleanups:
            await cleanup()


def key_for(scope: str, prompt: str = "hello", model: str = "m") -> str:
    body = normalised({"model": model, "messages": [{"role": "user", "content": prompt}]})
    return exact_key(scope=scope, model=model, generation="g", endpoint="chat", body=body)


async def test_a_stored_answer_is_found_by_its_key_only(answers: Harness) -> None:
    key = key_for("org:a")
    assert await answers.store.get(key) is None
    await answers.store.put(key, b"answer", ttl_s=60, scope="org:a", model="m")
    assert await answers.store.get(key) == b"answer"
    assert await answers.store.get(key_for("org:a", "other")) is None
    other = await answers.replica()
    assert await other.get(key) == b"answer"  # a replica shares Redis entries


async def test_two_orgs_never_share_an_entry_for_the_same_prompt(answers: Harness) -> None:
    a, b = key_for("org:a"), key_for("org:b")
    assert a != b
    await answers.store.put(a, b"for a", ttl_s=60, scope="org:a", model="m")
    assert await answers.store.get(b) is None
    await answers.store.put(b, b"for b", ttl_s=60, scope="org:b", model="m")
    assert await answers.store.get(a) == b"for a"
    assert await answers.store.get(b) == b"for b"


async def test_an_entry_expires_after_its_ttl(answers: Harness) -> None:
    key = key_for("org:a")
    await answers.store.put(key, b"x", ttl_s=30, scope="org:a", model="m")
    answers.clock.advance(29)
    assert await answers.store.get(key) == b"x"
    answers.clock.advance(2)
    assert await answers.store.get(key) is None


async def test_delete_removes_one_entry(answers: Harness) -> None:
    a, b = key_for("org:a"), key_for("org:a", "other")
    await answers.store.put(a, b"a", ttl_s=30, scope="org:a", model="m")
    await answers.store.put(b, b"b", ttl_s=30, scope="org:a", model="m")
    await answers.store.delete(a)
    await answers.store.delete(key_for("org:a", "never stored"))
    assert await answers.store.get(a) is None
    assert await answers.store.get(b) == b"b"


async def test_a_put_replaces_the_entry(answers: Harness) -> None:
    key = key_for("org:a")
    await answers.store.put(key, b"old", ttl_s=30, scope="org:a", model="m")
    await answers.store.put(key, b"new", ttl_s=30, scope="org:a", model="m")
    assert await answers.store.get(key) == b"new"


async def test_drop_selects_by_model_scope_and_age(answers: Harness) -> None:
    store = answers.store
    entries = {
        ("org:a", "m"): key_for("org:a", model="m"),
        ("org:a", "n"): key_for("org:a", model="n"),
        ("org:b", "m"): key_for("org:b", model="m"),
    }
    for (scope, model), key in entries.items():
        await store.put(key, scope.encode(), ttl_s=600, scope=scope, model=model)
        answers.clock.advance(10)
    assert await store.drop(Selector(model="n")) == 1
    assert await store.get(entries[("org:a", "n")]) is None
    assert await store.get(entries[("org:a", "m")]) == b"org:a"

    assert await store.drop(Selector(scope="org:b")) == 1
    assert await store.get(entries[("org:b", "m")]) is None

    late = key_for("org:a", "late")
    await store.put(late, b"late", ttl_s=600, scope="org:a", model="m")
    assert await store.drop(Selector(older_than=answers.clock.now())) == 1
    assert await store.get(entries[("org:a", "m")]) is None
    assert await store.get(late) == b"late"

    assert await store.drop(Selector()) == 1
    assert await store.get(late) is None
    assert await store.drop(Selector()) == 0


async def test_drop_by_scope_and_model_together(answers: Harness) -> None:
    store = answers.store
    await store.put(key_for("org:a"), b"1", ttl_s=60, scope="org:a", model="m")
    await store.put(key_for("org:a", model="n"), b"2", ttl_s=60, scope="org:a", model="n")
    await store.put(key_for("org:b"), b"3", ttl_s=60, scope="org:b", model="m")
    assert await store.drop(Selector(model="m", scope="org:a")) == 1
    assert await store.get(key_for("org:b")) == b"3"
    assert await store.get(key_for("org:a", model="n")) == b"2"


async def test_redis_down_is_a_dependency_error_never_a_hang(
    private_redis: PrivateRedis,
) -> None:
    from redis.asyncio import Redis

    from sluice.cache.redis import RedisAnswers

    client = Redis.from_url(private_redis.url, socket_connect_timeout=0.2)
    store = RedisAnswers(client, FakeClock(START), timeout_s=0.5)
    try:
        await store.put("k", b"v", ttl_s=60, scope="org:a", model="m")
        assert await store.get("k") == b"v"
        private_redis.stop()
        for call in (
            store.get("k"),
            store.put("k", b"v", ttl_s=60, scope="org:a", model="m"),
            store.drop(Selector()),
        ):
            with pytest.raises(GatewayError) as info:
                await call
            assert info.value.kind is ErrorKind.GATEWAY_DEPENDENCY_UNAVAILABLE
    finally:
        await client.aclose()
