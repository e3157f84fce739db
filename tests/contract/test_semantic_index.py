"""The semantic index over SQLite and PostgreSQL: hits by meaning within one partition only,
expiry, invalidation, bounds, and what a restart or a second replica sees.

Prompts are embedded by the mock provider's bag-of-words embeddings (real computation, no
network): texts sharing most words are near, unrelated ones far apart.
"""

from __future__ import annotations

import asyncio

import pytest

from sluice.cache.base import Probe, Selector
from sluice.cache.semantic import SemanticCache, SemanticLimits, run_sweeps
from sluice.cache.semantic.index import MAX_PARTITION_ENTRIES, OFF_LOOP_ROWS, partition_of
from sluice.cache.semantic.vectors import pack
from sluice.clock import FakeClock
from sluice.providers.mock.embed import embeddings
from sluice.providers.mock.script import MockScript
from sluice.storage.base import SemanticEntry
from sluice.storage.sql.repository import SqlStorage

SCRIPT = MockScript(dim=64, bow=True)
THRESHOLD = 0.8
ASK = "What is the capital city of France?"
NEAR = "what is the capital of France"
FAR = "How do I bake sourdough bread at home?"


async def embed(text: str) -> tuple[float, ...] | None:
    return tuple(embeddings(SCRIPT, {"input": text})["data"][0]["embedding"])


async def cannot_embed(text: str) -> tuple[float, ...] | None:
    return None


def semantic(
    storage: SqlStorage, clock: FakeClock, limits: SemanticLimits | None = None
) -> SemanticCache:
    return SemanticCache(storage.semantic, embedding_model="mock-embed", clock=clock, limits=limits)


def probe(text: str, **fields: str) -> Probe:
    values = {"scope": "org:a", "model": "gpt", "endpoint": "chat", "params": "d1", **fields}
    return Probe(values["scope"], values["model"], values["endpoint"], values["params"], text)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def index(storage: SqlStorage, clock: FakeClock) -> SemanticCache:
    return semantic(storage, clock)


def probe_partition_of(p: Probe) -> str:
    return partition_of(p, "mock-embed")


async def remember(index: SemanticCache, p: Probe, value: bytes, *, ttl_s: float = 60.0) -> None:
    hit, vector = await index.find(p, embed=embed, threshold=THRESHOLD)
    assert hit is None and vector is not None
    await index.add(p, vector, value, ttl_s=ttl_s)


async def test_a_paraphrase_hits_and_an_unrelated_prompt_misses(index: SemanticCache) -> None:
    await remember(index, probe(ASK), b"Paris")
    hit, vector = await index.find(probe(NEAR), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"Paris"
    assert THRESHOLD <= hit.similarity < 1.0
    assert vector is not None and abs(sum(v * v for v in vector) - 1.0) < 1e-6
    exact, _ = await index.find(probe(ASK), embed=embed, threshold=THRESHOLD)
    assert exact is not None and exact.similarity == pytest.approx(1.0, abs=1e-5)
    assert exact.entry_id == hit.entry_id
    miss, vector = await index.find(probe(FAR), embed=embed, threshold=THRESHOLD)
    assert miss is None and vector is not None
    strict, _ = await index.find(probe(NEAR), embed=embed, threshold=0.99)
    assert strict is None


@pytest.mark.parametrize(
    "other",
    [{"scope": "org:b"}, {"model": "other"}, {"endpoint": "messages"}, {"params": "d2"}],
)
async def test_an_entry_is_never_found_outside_its_partition(
    index: SemanticCache, other: dict[str, str]
) -> None:
    await remember(index, probe(ASK), b"org a's answer")
    # the same prompt, nearest possible, in another scope, model, endpoint or parameters
    hit, vector = await index.find(probe(ASK, **other), embed=embed, threshold=-1.0)
    assert hit is None and vector is not None
    await index.add(probe(ASK, **other), vector, b"its own answer", ttl_s=60)
    mine, _ = await index.find(probe(ASK), embed=embed, threshold=THRESHOLD)
    theirs, _ = await index.find(probe(ASK, **other), embed=embed, threshold=THRESHOLD)
    assert mine is not None and mine.value == b"org a's answer"
    assert theirs is not None and theirs.value == b"its own answer"


async def test_two_orgs_sending_the_same_prompt_never_see_each_others_answer(
    index: SemanticCache,
) -> None:
    await remember(index, probe(ASK, scope="org:a"), b"for a")
    await remember(index, probe(NEAR, scope="org:b"), b"for b")
    for scope, want in (("org:a", b"for a"), ("org:b", b"for b")):
        for text in (ASK, NEAR):
            hit, _ = await index.find(probe(text, scope=scope), embed=embed, threshold=THRESHOLD)
            assert hit is not None and hit.value == want


async def test_expired_entries_are_never_returned_and_are_swept(
    index: SemanticCache, storage: SqlStorage, clock: FakeClock
) -> None:
    await remember(index, probe(ASK), b"short", ttl_s=10)
    await remember(index, probe(FAR), b"long", ttl_s=1000)
    clock.advance(9)
    assert (await index.find(probe(NEAR), embed=embed, threshold=THRESHOLD))[0] is not None
    clock.advance(1)
    assert (await index.find(probe(NEAR), embed=embed, threshold=THRESHOLD))[0] is None
    assert await index.sweep() == 1
    assert await storage.semantic.count(probe_partition_of(probe(ASK))) == 1  # FAR's
    hit, _ = await index.find(probe(FAR), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"long"


async def test_drop_removes_from_the_database_and_memory(
    index: SemanticCache, storage: SqlStorage, clock: FakeClock
) -> None:
    await remember(index, probe(ASK, scope="org:a"), b"a")
    await remember(index, probe(ASK, scope="org:b"), b"b")
    clock.advance(100)
    await remember(index, probe(ASK, scope="org:c"), b"c")
    assert await index.drop(Selector(scope="org:a")) == 1
    assert (await index.find(probe(ASK, scope="org:a"), embed=embed, threshold=THRESHOLD))[
        0
    ] is None
    assert await index.drop(Selector(older_than=clock.now() - 50)) == 1  # org:b's
    assert (await index.find(probe(ASK, scope="org:b"), embed=embed, threshold=THRESHOLD))[
        0
    ] is None
    hit, _ = await index.find(probe(ASK, scope="org:c"), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"c"
    assert await index.drop(Selector(model="gpt")) == 1
    assert (await index.find(probe(ASK, scope="org:c"), embed=embed, threshold=THRESHOLD))[
        0
    ] is None
    assert index.stored_vectors == 0


async def test_a_restart_finds_the_entries(storage: SqlStorage, clock: FakeClock) -> None:
    first = semantic(storage, clock)
    await remember(first, probe(ASK), b"Paris")
    restarted = semantic(storage, clock)
    hit, _ = await restarted.find(probe(NEAR), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"Paris"


async def test_two_replicas_share_entries_through_the_database(
    storage: SqlStorage, clock: FakeClock
) -> None:
    limits = SemanticLimits(refresh_s=2.0)
    a = semantic(storage, clock, limits)
    b = semantic(storage, clock, limits)
    assert (await a.find(probe(NEAR), embed=embed, threshold=THRESHOLD))[0] is None  # a loads
    await remember(b, probe(ASK), b"from b")
    clock.advance(1)
    assert (await a.find(probe(NEAR), embed=embed, threshold=THRESHOLD))[0] is None  # not yet read
    clock.advance(1)
    hit, _ = await a.find(probe(NEAR), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"from b"
    # b drops it: a, which still holds the vector, never returns it
    assert await b.drop(Selector(scope="org:a")) == 1
    assert (await a.find(probe(NEAR), embed=embed, threshold=THRESHOLD))[0] is None
    assert a.stored_vectors == 0


async def test_a_failed_embedding_is_a_miss_without_a_vector(index: SemanticCache) -> None:
    await remember(index, probe(ASK), b"Paris")
    assert await index.find(probe(ASK), embed=cannot_embed, threshold=THRESHOLD) == (None, None)


async def test_oversized_answers_and_prompts_are_not_stored(
    storage: SqlStorage, clock: FakeClock
) -> None:
    limits = SemanticLimits(max_value_bytes=10, max_prompt_chars=100)
    index = semantic(storage, clock, limits)
    await remember(index, probe(ASK), b"x" * 11)
    await remember(index, probe(ASK + " " + "word " * 30), b"small")
    await remember(index, probe(FAR), b"y" * 10)
    assert (await index.find(probe(ASK), embed=embed, threshold=0.5))[0] is None
    hit, _ = await index.find(probe(FAR), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"y" * 10


async def test_a_partition_keeps_its_newest_entries(storage: SqlStorage, clock: FakeClock) -> None:
    limits = SemanticLimits(max_entries=2, max_vectors=10)
    index = semantic(storage, clock, limits)
    texts = ["alpha beta gamma", "delta epsilon zeta", "eta theta iota"]
    for n, text in enumerate(texts):
        clock.advance(1)
        await remember(index, probe(text), str(n).encode())
    assert index.stored_vectors == 2
    assert await storage.semantic.count(probe_partition_of(probe(ASK))) == 2
    assert (await index.find(probe(texts[0]), embed=embed, threshold=THRESHOLD))[0] is None
    for n in (1, 2):
        hit, _ = await index.find(probe(texts[n]), embed=embed, threshold=THRESHOLD)
        assert hit is not None and hit.value == str(n).encode()


async def test_memory_unloads_the_least_recently_used_partitions(
    storage: SqlStorage, clock: FakeClock
) -> None:
    limits = SemanticLimits(max_entries=2, max_vectors=2)
    index = semantic(storage, clock, limits)
    for scope in ("org:a", "org:b", "org:c"):
        await remember(index, probe(ASK, scope=scope), scope.encode())
        await remember(index, probe(FAR, scope=scope), scope.encode())
    assert index.stored_vectors <= 2
    # an unloaded partition loads again from the database on its next lookup
    hit, _ = await index.find(probe(NEAR, scope="org:a"), embed=embed, threshold=THRESHOLD)
    assert hit is not None and hit.value == b"org:a"
    assert index.stored_vectors <= 2


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        SemanticLimits(max_entries=0)
    with pytest.raises(ValueError, match="exceed"):
        SemanticLimits(max_entries=10, max_vectors=5)


async def test_a_large_partition_loads_and_answers(storage: SqlStorage, clock: FakeClock) -> None:
    partition = probe_partition_of(probe(ASK))
    count = OFF_LOOP_ROWS + 100
    for n in range(count):
        text = f"question number {n} about topic{n} and subject{n * 7}"
        vector = await embed(text)
        assert vector is not None
        await storage.semantic.add(
            SemanticEntry(
                f"e{n}",
                partition,
                "org:a",
                "gpt",
                "chat",
                "d1",
                "mock-embed",
                text,
                pack(vector),
                str(n).encode(),
                clock.now(),
                clock.now() + 60,
            )
        )
    index = semantic(storage, clock)
    hit, _ = await index.find(
        probe("question number 321 about topic321 and subject2247"), embed=embed, threshold=0.95
    )
    assert hit is not None and hit.value == b"321"
    assert index.stored_vectors == count


class StoppingClock(FakeClock):
    """A fake clock whose third sleep cancels the sleeper (the lifespan stopping it)."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.sleeps) == 3:
            raise asyncio.CancelledError


async def test_the_sweep_task_removes_expired_entries_each_interval(storage: SqlStorage) -> None:
    clock = StoppingClock()
    index = semantic(storage, clock)
    await remember(index, probe(ASK), b"short", ttl_s=90)
    await remember(index, probe(FAR), b"long", ttl_s=1000)
    with pytest.raises(asyncio.CancelledError):
        await run_sweeps(index, clock=clock, interval_s=60)
    assert clock.sleeps == [60, 60, 60]
    assert await storage.semantic.count(probe_partition_of(probe(ASK))) == 1
    assert index.stored_vectors == 1


def test_a_partition_is_bounded_for_its_scan() -> None:
    with pytest.raises(ValueError, match="at most"):
        SemanticLimits(max_entries=MAX_PARTITION_ENTRIES + 1, max_vectors=10**6)
