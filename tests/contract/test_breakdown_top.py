"""Breakdowns ranked in the store (top N in SQL, then the full sums of those groups) agree
with the raw rows, over SQLite and PostgreSQL: the order (cost, requests, then the value in
code-point order, whatever the database's collation), the cut and its flag, the edges of a
range that does not start or end on a day."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from sluice.analytics.model import Narrow, RollupQuery, Visibility
from sluice.analytics.service import Analytics
from sluice.clock import FakeClock
from sluice.storage.sql.repository import SqlStorage
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

DAY = 86_400
T0 = 1_700_006_400.0  # a day boundary
NOW = T0 + 3 * DAY + 5 * 3600 + 60  # mid-day: the default window has part-day edges
# Values whose order differs between code points and a linguistic collation.
KEYS = ("Key_B", "key_a", "key_b", "KEY_C", "_key", "key-d", "Zeta", "alpha")
USERS = ("u_B", "u_a", "U_c", "u_d")


def _events(seed: int) -> list[UsageEvent]:
    rnd = random.Random(seed)
    out = []
    for i in range(160):
        key = rnd.choice(KEYS)
        out.append(
            UsageEvent(
                f"req_{i}",
                rnd.uniform(NOW - 4 * DAY, NOW),
                "chat",
                key,
                rnd.choice(("m1", "m2")),
                provider="p1",
                status=rnd.choice((200, 200, 500)),
                # Few distinct costs, so groups tie on cost (and some on requests too).
                cost_micros=rnd.choice((0, 1000, 2000)),
                latency_ms=rnd.uniform(10, 5000),
                user_id=rnd.choice(USERS),
                team_id="t1",
                org_id="o1",
            )
        )
    return out


def _expected(
    events: list[UsageEvent], start: float, end: float, attr: str
) -> list[tuple[str, int, int]]:
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for e in events:
        if start <= e.created_at < end:
            acc = sums[getattr(e, attr)]
            acc[0] += e.cost_micros or 0
            acc[1] += 1
    return sorted(((g, c, r) for g, (c, r) in sums.items()), key=lambda x: (-x[1], -x[2], x[0]))


@pytest.mark.parametrize("seed", [1, 2])
async def test_top_groups_from_the_store_match_the_raw_rows(storage: SqlStorage, seed: int) -> None:
    events = _events(seed)
    writer = UsageWriter(storage.usage, storage.keys, batch_size=50)
    for e in events:
        writer.record(e)
    await writer.close()
    a = Analytics(storage.analytics, FakeClock(NOW), mcp=storage.mcp_analytics)
    w = a.window(None, datetime.fromtimestamp(NOW, UTC))  # 30 days to now: part-day edges
    assert w.start % DAY != 0 and w.end % DAY != 0
    everything = Visibility(everything=True)
    for by, attr, n in (("key", "key_id", len(KEYS)), ("user", "user_id", len(USERS))):
        expected = _expected(events, w.start, w.end, attr)
        assert len(expected) == n
        for limit in (1, 2, 3, n - 1, n, n + 5):
            rows, cut = await a.breakdown(w, everything, Narrow(), by=by, limit=limit)
            got = [(g, m.cost_micros, m.requests) for g, m in rows]
            assert got == expected[:limit], (by, limit)
            assert cut == (limit < n)
    # A narrowed, visibility-limited ranking: one user's keys only.
    user = Visibility(user_ids=frozenset({"u_a"}))
    mine = [e for e in events if e.user_id == "u_a"]
    expected = _expected(mine, w.start, w.end, "key_id")
    rows, cut = await a.breakdown(w, user, Narrow(), by="key", limit=2)
    assert [(g, m.cost_micros, m.requests) for g, m in rows] == expected[:2]
    assert cut == (len(expected) > 2)
    # The full metrics of a top group are the one-pass answer's.
    top, _ = await a.breakdown(w, everything, Narrow(), by="key", limit=1)
    model_rows, _ = await a.breakdown(w, everything, Narrow(key_id=top[0][0]), by="model", limit=9)
    assert top[0][1].requests == sum(m.requests for _, m in model_rows)
    assert top[0][1].errors == sum(m.errors for _, m in model_rows)


async def test_the_store_ranks_over_every_segment_together(storage: SqlStorage) -> None:
    # key_a leads on the whole days, key_b only thanks to the edge hours: the sum decides.
    at = datetime.fromtimestamp(T0, UTC).timestamp()
    events = [
        UsageEvent("r1", at + DAY + 10, "chat", "key_a", "m", cost_micros=500),
        UsageEvent("r2", at + 3600 * 23 + 10, "chat", "key_b", "m", cost_micros=300),
        UsageEvent("r3", at + 2 * DAY + 10, "chat", "key_b", "m", cost_micros=300),
    ]
    await storage.usage.insert_many(events)
    everything = Visibility(everything=True)
    segments = [
        RollupQuery(3600, int(at) + 23 * 3600, int(at) + DAY, everything, Narrow(), ("key_id",)),
        RollupQuery(86_400, int(at) + DAY, int(at) + 2 * DAY, everything, Narrow(), ("key_id",)),
        RollupQuery(
            3600, int(at) + 2 * DAY, int(at) + 2 * DAY + 3600, everything, Narrow(), ("key_id",)
        ),
    ]
    assert await storage.analytics.top(segments, 5) == ["key_b", "key_a"]
    assert await storage.analytics.top(segments[1:2], 5) == ["key_a"]
    assert await storage.analytics.top(segments, 1) == ["key_b"]
