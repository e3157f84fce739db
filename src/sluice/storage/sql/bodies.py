"""Logged request/response bodies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.engine import dialect_insert
from sluice.usage.bodies import StoredBody


class SqlBodies:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = dialect_insert(engine.dialect.name)

    async def insert_many(self, bodies: Sequence[StoredBody]) -> None:
        if not bodies:
            return
        stmt = self._insert(t.bodies).on_conflict_do_nothing(index_elements=["request_id"])
        rows = [
            {
                "request_id": b.request_id,
                "created_at": _dt(b.created_at),
                "org_id": b.org_id,
                "team_id": b.team_id,
                "request": b.request,
                "response": b.response,
                "truncated": b.truncated,
            }
            for b in bodies
        ]
        async with self._engine.begin() as conn:
            await conn.execute(stmt, rows)

    async def get(self, request_id: str) -> StoredBody | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(t.bodies).where(t.bodies.c.request_id == request_id))
            ).first()
        if row is None:
            return None
        return StoredBody(
            row.request_id,
            _ts(row.created_at) or 0.0,
            row.org_id,
            row.team_id,
            row.request,
            row.response,
            bool(row.truncated),
        )

    async def purge_before(self, cutoff: float, *, limit: int) -> int:
        return await purge(self._engine, t.bodies, cutoff, limit=limit)


async def purge(engine: AsyncEngine, table: Table, cutoff: float, *, limit: int) -> int:
    """Delete at most ``limit`` rows of ``table`` created before ``cutoff``, oldest first,
    in one transaction (a chunk: a big backlog never holds a long lock)."""
    key = table.c.request_id
    oldest = (
        select(key)
        .where(table.c.created_at < _dt(cutoff))
        .order_by(table.c.created_at)
        .limit(limit)
    )
    async with engine.begin() as conn:
        result = await conn.execute(table.delete().where(key.in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)
