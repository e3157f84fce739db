"""One contract suite for the storage seam, run over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy import Connection

from sluice.auth import keys
from sluice.auth.service import bootstrap_master_key, create_key
from sluice.storage.sql.migrate import current_revision, script_head, upgrade_engine
from sluice.storage.sql.repository import SqlStorage
from sluice.storage.sql.tables import HEAD_REVISION, metadata
from sluice.usage.event import UsageEvent


def _event(rid: str, *, ts: float = 1_700_000_000.0, key_id: str | None = "key_a") -> UsageEvent:
    return UsageEvent(
        request_id=rid,
        created_at=ts,
        endpoint="chat",
        key_id=key_id,
        model="mock-gpt",
        provider="mock",
        deployment="mock/chat",
        upstream_model="chat",
        prompt_tokens=11,
        completion_tokens=7,
        cached_tokens=2,
        tokens_estimated=True,
        latency_ms=12.5,
        ttft_ms=3.25,
        status=499,
        error_kind="client_disconnected",
        error_message="gone",
        streamed=True,
        end_user="alice",
        attempts=1,
    )


async def test_migrations_reach_head_and_are_idempotent(storage: SqlStorage) -> None:
    async with storage.engine.connect() as conn:
        assert await conn.run_sync(script_head) == HEAD_REVISION
    assert await current_revision(storage.engine) == HEAD_REVISION
    await upgrade_engine(storage.engine)
    assert await current_revision(storage.engine) == HEAD_REVISION


async def test_migrations_create_exactly_the_declared_tables(storage: SqlStorage) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with storage.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_key_lifecycle(storage: SqlStorage) -> None:
    assert await storage.keys.version() == 0
    created = await create_key(
        storage.keys,
        name="ci",
        now=1000.0,
        expires_at=5000.0,
        models=("mock-gpt",),
        metadata={"team": "a"},
    )
    assert await storage.keys.version() == 1
    record = await storage.keys.get(created.record.id)
    assert record == created.record
    assert record is not None and keys.matches(created.secret, record.key_hash)
    assert created.secret not in repr(await storage.keys.list())

    revoked = await storage.keys.revoke(record.id, at=2000.0)
    assert revoked is not None and revoked.revoked_at == 2000.0
    again = await storage.keys.revoke(record.id, at=3000.0)
    assert again is not None and again.revoked_at == 2000.0  # the first revocation stands
    assert await storage.keys.version() == 3
    assert await storage.keys.revoke("key_nope", at=1.0) is None


async def test_touch_never_moves_last_use_backwards(storage: SqlStorage) -> None:
    a = (await create_key(storage.keys, name="a", now=1.0)).record
    b = (await create_key(storage.keys, name="b", now=2.0)).record
    await storage.keys.touch({a.id: 100.0})
    await storage.keys.touch({a.id: 50.0, b.id: 70.0})
    by_id = {r.id: r for r in await storage.keys.list()}
    assert by_id[a.id].last_used_at == 100.0
    assert by_id[b.id].last_used_at == 70.0
    assert [r.name for r in await storage.keys.list()] == ["a", "b"]


async def test_usage_rows_round_trip_and_duplicates_are_skipped(storage: SqlStorage) -> None:
    rows = [_event(f"req_{i}", ts=1_700_000_000.0 + i) for i in range(250)]
    await storage.usage.insert_many(rows)
    await storage.usage.insert_many(rows[:10])
    assert await storage.usage.count() == 250
    newest = (await storage.usage.recent(limit=1))[0]
    assert newest == rows[-1]


async def test_every_usage_field_round_trips_and_long_text_is_cut(storage: SqlStorage) -> None:
    full = replace(
        _event("req_full", ts=1_700_000_123.000_001),
        cache_write_tokens=5,
        partial=True,
        attempt_errors=["mock/a: provider_timeout", "mock/b: provider_5xx"],
        cost_micros=1_234_567_890_123,
        user_id="u1",
        team_id="t1",
        org_id="o1",
        error_message="x" * 1500,
        end_user="e" * 300,
        upstream_ms=812.25,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    )
    bare = UsageEvent("req_bare", 1_700_000_000.0, "embeddings", None, None)
    await storage.usage.insert_many([full, bare, full])
    by_id = {e.request_id: e for e in await storage.usage.recent(limit=10)}
    assert by_id["req_full"] == replace(full, error_message="x" * 1000, end_user="e" * 200)
    assert by_id["req_bare"] == bare
    assert await storage.spend.spent_since("user:u1", 1_700_000_123) == 1_234_567_890_123
    assert await storage.spend.spent_since("user:u1", 1_700_000_124) == 0


async def test_meta_set_if_absent_keeps_the_first_value(storage: SqlStorage) -> None:
    assert await storage.meta.get("x") is None
    assert await storage.meta.set_if_absent("x", "1") == "1"
    assert await storage.meta.set_if_absent("x", "2") == "1"


async def test_master_key_bootstrap_is_race_safe(database_url: str, storage: SqlStorage) -> None:
    others = [SqlStorage.from_url(database_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(bootstrap_master_key(s.meta, None) for s in others))
    finally:
        for other in others:
            await other.close()
    assert len({r.hash for r in results}) == 1
    generated = [r.generated for r in results if r.generated]
    assert len(generated) == 1
    assert keys.hash_key(generated[0]) == results[0].hash
    stored = await bootstrap_master_key(storage.meta, None)
    assert stored.generated is None and stored.hash == results[0].hash
    configured = await bootstrap_master_key(storage.meta, "from-env")
    assert configured.hash == keys.hash_key("from-env")


@pytest.mark.parametrize("n", [3])
async def test_concurrent_writers_lose_nothing(
    database_url: str, storage: SqlStorage, n: int
) -> None:
    """Several processes' writers (separate engines) insert at once."""
    writers = [SqlStorage.from_url(database_url) for _ in range(n)]
    try:
        await asyncio.gather(
            *(
                w.usage.insert_many([_event(f"w{i}_{j}") for j in range(100)])
                for i, w in enumerate(writers)
            )
        )
    finally:
        for w in writers:
            await w.close()
    assert await storage.usage.count() == n * 100


async def test_a_unit_of_work_commits_everything_or_nothing(storage: SqlStorage) -> None:
    from sluice.tenancy.model import AuditEntry, Org, Team

    def entry(action: str) -> AuditEntry:
        return AuditEntry(1.0, "admin", action, "org", "org_a", "org_a", None, None)

    version = await storage.keys.version()
    org = Org("org_a", "acme", 1.0, "team_a")
    record = keys.KeyRecord("key_u", "pub_u", "k", "h" * 64, "sk-...u", 1.0)
    with pytest.raises(RuntimeError):
        async with storage.unit() as unit:
            await unit.tenancy.audit(entry("org.create"))
            await unit.tenancy.create_org(org, Team("team_a", "org_a", "default", 1.0))
            await unit.keys.create(record)
            assert await unit.tenancy.get_org("org_a") == org  # the unit reads its own writes
            raise RuntimeError("a later step failed")
    assert await storage.tenancy.get_org("org_a") is None
    assert await storage.keys.get("key_u") is None
    assert await storage.tenancy.audit_entries() == []
    assert await storage.keys.version() == version

    async with storage.unit() as unit:
        await unit.tenancy.audit(entry("org.create"))
        await unit.tenancy.create_org(org, Team("team_a", "org_a", "default", 1.0))
        await unit.keys.create(record)
    assert await storage.tenancy.get_org("org_a") == org
    assert await storage.keys.get("key_u") == record
    [stored] = await storage.tenancy.audit_entries()
    assert stored.action == "org.create"
    assert await storage.keys.version() > version


async def test_units_of_work_run_concurrently_without_losing_one(storage: SqlStorage) -> None:
    """Units that read before they write, started together, all commit (SQLite: one at a
    time, each taking the write lock when it starts)."""
    from sluice.tenancy.model import AuditEntry

    async def one(i: int) -> None:
        async with storage.unit() as unit:
            await unit.meta.get("counter")
            await unit.tenancy.audit(AuditEntry(1.0, "a", f"x.{i}", "t", str(i), None, None, None))
            await unit.meta.put(f"n{i}", str(i))

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(8))), timeout=60)
    assert len(await storage.tenancy.audit_entries()) == 8
    assert [await storage.meta.get(f"n{i}") for i in range(8)] == [str(i) for i in range(8)]


async def test_counter_increments_are_atomic_across_processes(
    database_url: str, storage: SqlStorage
) -> None:
    """Several processes (separate engines) bump one counter at once, alone and inside units
    of work: each bump gets its own value, none is lost."""
    others = [SqlStorage.from_url(database_url) for _ in range(4)]

    async def in_unit(s: SqlStorage) -> int:
        async with s.unit() as unit:
            return await unit.meta.increment("counter")

    try:
        got = await asyncio.wait_for(
            asyncio.gather(
                *(s.meta.increment("counter") for s in others for _ in range(3)),
                *(in_unit(s) for s in others for _ in range(3)),
            ),
            timeout=60,
        )
    finally:
        for other in others:
            await other.close()
    assert sorted(got) == list(range(1, 25))
    assert await storage.meta.get("counter") == "24"
    assert await storage.meta.increment("counter") == 25
