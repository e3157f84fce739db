"""The semantic cache's entries (``Storage.semantic``), over SQLite and PostgreSQL."""

from __future__ import annotations

from sluice.storage.base import SemanticEntry
from sluice.storage.sql.repository import SqlStorage


def _entry(
    n: int,
    *,
    partition: str = "p1",
    scope: str = "org:a",
    model: str = "m",
    created: float = 1000.0,
    ttl: float = 100.0,
) -> SemanticEntry:
    return SemanticEntry(
        f"e{n}", partition, scope, model, "chat", "d1", "embed", f"prompt {n}",
        bytes([n]) * 8, f"answer {n}".encode(), created, created + ttl,
    )  # fmt: skip


async def test_entries_are_read_by_partition_newest_first_and_live_only(
    storage: SqlStorage,
) -> None:
    repo = storage.semantic
    await repo.add(_entry(1, created=1000.0))
    await repo.add(_entry(2, created=1010.0))
    await repo.add(_entry(3, created=1020.0, ttl=5.0))  # expires at 1025
    await repo.add(_entry(4, partition="p2", created=1030.0))
    rows = await repo.vectors("p1", now=1024.0, limit=10)
    assert [r.id for r in rows] == ["e3", "e2", "e1"]
    assert rows[1].vector == bytes([2]) * 8
    assert (rows[1].created_at, rows[1].expires_at) == (1010.0, 1110.0)
    assert [r.id for r in await repo.vectors("p1", now=1025.0, limit=10)] == ["e2", "e1"]
    assert [r.id for r in await repo.vectors("p1", now=1024.0, limit=2)] == ["e3", "e2"]
    assert [r.id for r in await repo.vectors("p1", now=1000.0, since=1010.0, limit=9)] == [
        "e3",
        "e2",
    ]
    assert await repo.value("e2", now=1100.0) == b"answer 2"
    assert await repo.value("e2", now=1110.0) is None  # expired
    assert await repo.value("nope", now=0.0) is None
    assert await repo.count("p1") == 3


async def test_drop_selects_by_model_scope_and_age(storage: SqlStorage) -> None:
    repo = storage.semantic
    await repo.add(_entry(1, scope="org:a", model="m", created=1000.0))
    await repo.add(_entry(2, scope="org:b", model="m", created=1000.0))
    await repo.add(_entry(3, scope="org:a", model="n", created=2000.0))
    await repo.add(_entry(4, scope="org:a", model="m", created=3000.0))
    assert await repo.drop(model="m", scope="org:a", older_than=2500.0) == 1
    assert await repo.value("e1", now=0.0) is None
    assert await repo.drop(model=None, scope="org:b", older_than=None) == 1
    assert await repo.drop(model="n", scope=None, older_than=None) == 1
    assert await repo.value("e4", now=0.0) == b"answer 4"
    assert await repo.drop(model=None, scope=None, older_than=None) == 1
    assert await repo.count("p1") == 0


async def test_sweep_removes_expired_then_the_oldest_beyond_the_bound(storage: SqlStorage) -> None:
    repo = storage.semantic
    for n in range(1, 6):
        await repo.add(_entry(n, partition=f"p{n % 2}", created=1000.0 + n, ttl=10.0 * n))
    # at 1025: e1 (expires 1011) and e2 (1022) are expired; 3 remain, keep the 2 newest
    assert await repo.sweep(now=1025.0, keep=2) == 3
    assert await repo.value("e3", now=0.0) is None
    assert await repo.value("e4", now=0.0) == b"answer 4"
    assert await repo.value("e5", now=0.0) == b"answer 5"


async def test_oldest_and_delete_ids(storage: SqlStorage) -> None:
    repo = storage.semantic
    for n in range(1, 5):
        await repo.add(_entry(n, created=1000.0 + n))
    assert await repo.oldest("p1", keep=3) == ["e1"]
    assert await repo.oldest("p1", keep=1) == ["e3", "e2", "e1"]
    assert await repo.delete_ids(["e1", "e2", "nope"]) == 2
    assert await repo.count("p1") == 2
    assert await repo.delete_ids([]) == 0
