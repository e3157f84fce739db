"""Billed-unit sums from the raw usage rows, the same SQL on both dialects: one grouped
query over the rows of media requests."""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.analytics.units import UnitQuery, UnitSums
from sluice.storage.sql import tables as t
from sluice.storage.sql.analytics import narrowed, visible
from sluice.storage.sql.convert import dt as _dt


class SqlUnitAnalytics:
    """``sluice.analytics.units.UnitUsageStore`` over the usage table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def unit_sums(self, query: UnitQuery) -> list[UnitSums]:
        u = t.usage
        stmt = (
            select(
                u.c.endpoint,
                u.c.model,
                u.c.unit_kind,
                cast(func.count(), BigInteger),
                cast(func.coalesce(func.sum(u.c.units), 0), Float),
                cast(func.coalesce(func.sum(u.c.cost_micros), 0), BigInteger),
            )
            .where(
                u.c.unit_kind.is_not(None),
                u.c.created_at >= _dt(query.start),
                u.c.created_at < _dt(query.end),
                visible(u, query.visibility),
                *narrowed(u, query.narrow),
            )
            .group_by(u.c.endpoint, u.c.model, u.c.unit_kind)
        )
        async with self._engine.connect() as conn:
            out = [
                UnitSums(
                    endpoint, model or "", kind, int(n or 0), float(units or 0), int(cost or 0)
                )
                for endpoint, model, kind, n, units, cost in await conn.execute(stmt)
            ]
        return sorted(out, key=lambda s: (-s.cost_micros, -s.requests, s.endpoint, s.model))
