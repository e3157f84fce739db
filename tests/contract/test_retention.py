"""Retention over SQLite and PostgreSQL: old raw rows and bodies go in chunks, rollups stay."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice.analytics.model import Narrow, Visibility
from sluice.analytics.service import Analytics
from sluice.clock import FakeClock
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.bodies import StoredBody
from sluice.usage.event import UsageEvent
from sluice.usage.retention import Retention, Target

DAY = 86_400.0
NOW = 1_800_000_000.0


def _ev(i: int, age_days: float) -> UsageEvent:
    return UsageEvent(
        f"r{i:03d}", NOW - age_days * DAY, "chat", "key_a", "m", cost_micros=10, prompt_tokens=5
    )


async def test_purge_deletes_expired_rows_in_chunks_and_keeps_rollups(storage: SqlStorage) -> None:
    clock = FakeClock(NOW)
    old = [_ev(i, 100 + i / 10) for i in range(23)]
    young = [_ev(100 + i, 10) for i in range(4)]
    await storage.usage.insert_many([*old, *young])
    await storage.bodies.insert_many(
        [
            StoredBody("r000", NOW - 9 * DAY, None, None, "q", "a", False),
            StoredBody("r100", NOW - 1 * DAY, None, None, "q", "a", False),
        ]
    )
    retention = Retention(
        [Target("usage_events", storage.usage, 90), Target("usage_bodies", storage.bodies, 7)],
        clock=clock,
        chunk=5,
    )
    assert await retention.purge() == {"usage_events": 23, "usage_bodies": 1}
    assert await storage.usage.count() == 4
    assert await storage.bodies.get("r000") is None
    assert await storage.bodies.get("r100") is not None
    analytics = Analytics(storage.analytics, clock, mcp=storage.mcp_analytics)
    window = analytics.window(None, None)
    everything = analytics.window(
        datetime.fromtimestamp(NOW - 200 * DAY, UTC),
        None,
    )
    assert (await analytics.summary(window, Visibility(everything=True), Narrow())).requests == 4
    kept = await analytics.summary(everything, Visibility(everything=True), Narrow())
    assert kept.requests == 27 and kept.cost_micros == 270  # rollups outlive the raw rows
    clock.advance(85 * DAY)
    assert await retention.purge() == {"usage_events": 4, "usage_bodies": 1}
    assert retention.purged == {"usage_events": 27, "usage_bodies": 2}


async def test_zero_days_keeps_everything(storage: SqlStorage) -> None:
    await storage.usage.insert_many([_ev(1, 1000)])
    retention = Retention([Target("usage_events", storage.usage, 0)], clock=FakeClock(NOW))
    assert await retention.purge() == {}
    assert await storage.usage.count() == 1
