"""Usage rows of cached requests through the real batched writer, over SQLite and
PostgreSQL: the cache columns are stored (and kept by dead letters), and the cache analytics
sum them per model and team, scoped like every analytics query."""

from __future__ import annotations

from collections.abc import Mapping

from sluice.analytics.cache import CacheQuery
from sluice.analytics.model import Narrow, Visibility
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.dead_letters import event_from_json, event_json
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

T0 = 1_700_000_000.0
ALL = Visibility(everything=True)


class Keys:
    async def touch(self, last_used: Mapping[str, float]) -> None:
        return None


def row(
    rid: str, cache: str | None, *, team: str = "t1", model: str = "m", **fields: object
) -> UsageEvent:
    e = UsageEvent(rid, T0, "chat", "key_a", model, team_id=team, org_id="o1", cost_micros=0)
    e.cache = cache
    for name, value in fields.items():
        setattr(e, name, value)
    return e


async def test_cache_columns_are_stored_and_summed(storage: SqlStorage) -> None:
    events = [
        row("r1", "miss", cost_micros=500),
        row("r2", "hit", cost_saved_micros=500, prompt_tokens=10, completion_tokens=20),
        row("r3", "hit", cost_saved_micros=500),
        row("r4", "bypass", cost_micros=700),
        row("r5", "store", cost_micros=400),
        row("r6", "hit", team="t2", cost_saved_micros=9),
        row("r7", "hit", model="n", cost_saved_micros=1),
        row("r8", None, cost_micros=3),  # served without a cache
    ]
    writer = UsageWriter(storage.usage, Keys(), dead_letters=storage.dead_letters)  # type: ignore[arg-type]
    for e in events:
        writer.record(e)
    assert await writer.flush() == len(events)
    stored = {r.request_id: r for r in await storage.usage.recent()}
    assert stored["r2"].cache == "hit" and stored["r2"].cost_saved_micros == 500
    assert stored["r8"].cache is None and stored["r8"].cost_saved_micros is None
    assert event_from_json(event_json(events[1])) == events[1]

    query = CacheQuery(T0 - 1, T0 + 1, ALL, Narrow())
    sums = {(s.model, s.team_id): s for s in await storage.cache_analytics.cache_sums(query)}
    assert set(sums) == {("m", "t1"), ("m", "t2"), ("n", "t1")}
    main = sums[("m", "t1")]
    assert (main.requests, main.hits, main.misses, main.bypasses) == (5, 2, 2, 1)
    assert (main.saved_micros, main.cost_micros) == (1000, 1600)
    assert main.hit_rate == 0.5
    first = await storage.cache_analytics.cache_sums(query)
    assert first[0].model == "m" and first[0].team_id == "t1"  # the most requested first

    team_only = CacheQuery(T0 - 1, T0 + 1, Visibility(team_ids=frozenset({"t2"})), Narrow())
    assert [(s.model, s.team_id) for s in await storage.cache_analytics.cache_sums(team_only)] == [
        ("m", "t2")
    ]
    narrowed = CacheQuery(T0 - 1, T0 + 1, ALL, Narrow(model="n"))
    assert [s.hits for s in await storage.cache_analytics.cache_sums(narrowed)] == [1]
    later = CacheQuery(T0 + 10, T0 + 20, ALL, Narrow())
    assert await storage.cache_analytics.cache_sums(later) == []
