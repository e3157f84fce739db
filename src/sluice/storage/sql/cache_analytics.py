"""Response-cache sums from the raw usage rows, the same SQL on both dialects: one grouped
query (model, team, what the cache did), merged into one row per model and team."""

from __future__ import annotations

from sqlalchemy import BigInteger, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.analytics.cache import CacheQuery, CacheSums
from sluice.storage.sql import tables as t
from sluice.storage.sql.analytics import narrowed, visible
from sluice.storage.sql.convert import dt as _dt


class SqlCacheAnalytics:
    """``sluice.analytics.cache.CacheUsageStore`` over the usage table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def cache_sums(self, query: CacheQuery) -> list[CacheSums]:
        u = t.usage
        stmt = (
            select(
                u.c.model,
                u.c.team_id,
                u.c.cache,
                cast(func.count(), BigInteger),
                cast(func.coalesce(func.sum(u.c.cost_saved_micros), 0), BigInteger),
                cast(func.coalesce(func.sum(u.c.cost_micros), 0), BigInteger),
            )
            .where(
                u.c.cache.is_not(None),
                u.c.created_at >= _dt(query.start),
                u.c.created_at < _dt(query.end),
                visible(u, query.visibility),
                *narrowed(u, query.narrow),
            )
            .group_by(u.c.model, u.c.team_id, u.c.cache)
        )
        sums: dict[tuple[str, str | None], CacheSums] = {}
        async with self._engine.connect() as conn:
            for model, team_id, status, count, saved, cost in await conn.execute(stmt):
                row = sums.setdefault((model or "", team_id), CacheSums(model or "", team_id))
                n = int(count or 0)
                row.requests += n
                row.saved_micros += int(saved or 0)
                row.cost_micros += int(cost or 0)
                if status == "hit":
                    row.hits += n
                elif status == "bypass":
                    row.bypasses += n
                else:
                    row.misses += n
        return sorted(sums.values(), key=lambda s: (-s.requests, s.model, s.team_id or ""))
