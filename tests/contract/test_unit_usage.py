"""Billed units of media requests through the real batched writer, over SQLite and
PostgreSQL: the units columns are stored (and kept by dead letters), and the unit analytics
sum them per endpoint, model and unit, scoped like every analytics query."""

from __future__ import annotations

from collections.abc import Mapping

from sluice.analytics.model import Narrow, Visibility
from sluice.analytics.units import UnitQuery, UnitSums
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.dead_letters import event_from_json, event_json
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

T0 = 1_700_000_000.0


class Keys:
    async def touch(self, last_used: Mapping[str, float]) -> None:
        return None


def row(rid: str, endpoint: str, units: float | None, kind: str | None, cost: int) -> UsageEvent:
    e = UsageEvent(rid, T0, endpoint, "key_a", "m", team_id="t1", org_id="o1", cost_micros=cost)
    e.units, e.unit_kind = units, kind
    return e


async def test_units_are_stored_and_summed(storage: SqlStorage) -> None:
    events = [
        row("r1", "audio.transcriptions", 12.5, "audio_seconds", 1250),
        row("r2", "audio.transcriptions", 2.25, "audio_seconds", 225),
        row("r3", "images.generations", 3, "images", 120_000),
        row("r4", "chat", None, None, 40),  # billed by tokens: not a unit row
    ]
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for e in events:
        writer.record(e)
    assert await writer.flush() == len(events)
    stored = {r.request_id: r for r in await storage.usage.recent()}
    assert (stored["r1"].units, stored["r1"].unit_kind) == (12.5, "audio_seconds")
    assert (stored["r4"].units, stored["r4"].unit_kind) == (None, None)
    assert event_from_json(event_json(events[0])) == events[0]

    everything = UnitQuery(T0 - 1, T0 + 1, Visibility(everything=True), Narrow())
    assert await storage.unit_analytics.unit_sums(everything) == [
        UnitSums("images.generations", "m", "images", 1, 3.0, 120_000),
        UnitSums("audio.transcriptions", "m", "audio_seconds", 2, 14.75, 1475),
    ]
    other_org = UnitQuery(T0 - 1, T0 + 1, Visibility(org_ids=frozenset({"o2"})), Narrow())
    assert await storage.unit_analytics.unit_sums(other_org) == []
