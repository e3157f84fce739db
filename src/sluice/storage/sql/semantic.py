"""SQL repository of the semantic cache's entries (``sluice.storage.semantic``)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, func, select, true

from sluice.storage.base import EntryVector, SemanticEntry
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import dt, ts
from sluice.storage.sql.unit import Database

_BATCH = 500
"""Ids per ``DELETE ... WHERE id IN``: well under every driver's parameter limit."""


class SqlSemanticEntries:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, entry: SemanticEntry) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                t.semantic_cache.insert().values(
                    id=entry.id,
                    partition=entry.partition,
                    scope=entry.scope,
                    model=entry.model,
                    endpoint=entry.endpoint,
                    params=entry.params,
                    embedder=entry.embedder,
                    prompt=entry.prompt,
                    vector=entry.vector,
                    value=entry.value,
                    created_at=dt(entry.created_at),
                    expires_at=dt(entry.expires_at),
                )
            )

    async def vectors(
        self, partition: str, *, now: float, since: float | None = None, limit: int
    ) -> list[EntryVector]:
        c = t.semantic_cache.c
        where = and_(c.partition == partition, c.expires_at > dt(now))
        if since is not None:
            where = and_(where, c.created_at >= dt(since))
        query = (
            select(c.id, c.vector, c.created_at, c.expires_at)
            .where(where)
            .order_by(c.created_at.desc(), c.id)
            .limit(limit)
        )
        async with self._db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            EntryVector(r.id, bytes(r.vector), ts(r.created_at) or 0.0, ts(r.expires_at) or 0.0)
            for r in rows
        ]

    async def value(self, entry_id: str, *, now: float) -> bytes | None:
        c = t.semantic_cache.c
        query = select(c.value).where(c.id == entry_id, c.expires_at > dt(now))
        async with self._db.connect() as conn:
            found = await conn.scalar(query)
        return None if found is None else bytes(found)

    async def count(self, partition: str) -> int:
        c = t.semantic_cache.c
        async with self._db.connect() as conn:
            found = await conn.scalar(select(func.count()).where(c.partition == partition))
        return int(found or 0)

    async def delete_ids(self, ids: list[str]) -> int:
        removed = 0
        async with self._db.begin() as conn:
            for at in range(0, len(ids), _BATCH):
                chunk = ids[at : at + _BATCH]
                result = await conn.execute(
                    delete(t.semantic_cache).where(t.semantic_cache.c.id.in_(chunk))
                )
                removed += result.rowcount
        return removed

    async def oldest(self, partition: str, *, keep: int) -> list[str]:
        c = t.semantic_cache.c
        query = (
            select(c.id)
            .where(c.partition == partition)
            .order_by(c.created_at.desc(), c.id)
            .offset(keep)
        )
        async with self._db.connect() as conn:
            return [str(r) for r in (await conn.scalars(query)).all()]

    async def drop(self, *, model: str | None, scope: str | None, older_than: float | None) -> int:
        c = t.semantic_cache.c
        where: ColumnElement[bool] = true()
        if model is not None:
            where = and_(where, c.model == model)
        if scope is not None:
            where = and_(where, c.scope == scope)
        if older_than is not None:
            where = and_(where, c.created_at < dt(older_than))
        async with self._db.begin() as conn:
            result = await conn.execute(delete(t.semantic_cache).where(where))
        return int(result.rowcount)

    async def sweep(self, *, now: float, keep: int) -> int:
        table = t.semantic_cache
        c = table.c
        surplus = select(c.id).order_by(c.created_at.desc(), c.id).offset(keep).scalar_subquery()
        async with self._db.begin() as conn:
            expired = await conn.execute(delete(table).where(c.expires_at <= dt(now)))
            beyond = await conn.execute(delete(table).where(c.id.in_(surplus)))
        return int(expired.rowcount) + int(beyond.rowcount)
