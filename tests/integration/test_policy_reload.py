"""Routing-policy reloads from several processes at once: every reload is audited and bumps
the shared counter by exactly one (over SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluice.auth.principal import MASTER
from sluice.clock import SystemClock
from sluice.control.policies import POLICIES_VERSION, PolicyService, request_reload
from sluice.routing.policy import PolicyEngine
from sluice.storage.sql.repository import SqlStorage
from sluice.tenancy.service import Tenancy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def _tenancy(storage: SqlStorage) -> Tenancy:
    async def changed() -> None:
        return None

    return Tenancy(
        storage.tenancy,
        storage.keys,
        storage.meta,
        unit=storage.unit,
        clock=SystemClock(),
        changed=changed,
    )


async def test_concurrent_reloads_each_bump_the_version_once(
    database_url: str, storage: SqlStorage
) -> None:
    replicas = [SqlStorage.from_url(database_url) for _ in range(4)]
    services = [PolicyService(PolicyEngine(), s.meta, _tenancy(s)) for s in replicas]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(service.reload(MASTER) for service in services for _ in range(3)),
                *(request_reload(_tenancy(s), MASTER) for s in replicas),
            ),
            timeout=60,
        )
    finally:
        for replica in replicas:
            await replica.close()
    assert all(r.ok for r in results[:12])
    requested = results[12:]
    assert await storage.meta.get(POLICIES_VERSION) == "16"
    # Each reload took its own version: every replica reflects the last one it wrote.
    assert len(set(requested)) == len(requested)
    assert all(1 <= s.version <= 16 for s in services)
    assert len({s.version for s in services}) == len(services)
    actions = [e.action for e in await storage.tenancy.audit_entries(limit=100)]
    assert sorted(actions) == ["routing.reload"] * 12 + ["routing.reload_request"] * 4


async def test_a_process_follows_each_reload_requested_elsewhere_once(
    storage: SqlStorage,
) -> None:
    engine = PolicyEngine([EXAMPLES])
    engine.load()
    follower = PolicyService(engine, storage.meta, _tenancy(storage))
    loaded = engine.generation
    await follower.follow()
    assert (follower.version, engine.generation) == (0, loaded)  # nothing requested yet
    assert await request_reload(_tenancy(storage), MASTER) == 1
    await follower.follow()
    assert (follower.version, engine.generation) == (1, loaded + 1)
    await follower.follow()
    assert engine.generation == loaded + 1
