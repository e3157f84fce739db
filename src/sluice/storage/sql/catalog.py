"""SQL repository of the providers, models and price overrides managed through the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sluice.storage.catalog import CatalogEntry, Kind
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import bump, dt, ts
from sluice.storage.sql.unit import Database


def _entry(row: Any) -> CatalogEntry:
    created, updated = ts(row.created_at), ts(row.updated_at)
    assert created is not None
    assert updated is not None
    return CatalogEntry(row.kind, row.name, dict(row.spec), created, updated)


class SqlCatalog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[CatalogEntry]:
        c = t.catalog_entries
        async with self._db.connect() as conn:
            rows = await conn.execute(select(c).order_by(c.c.kind, c.c.name))
            return [_entry(r) for r in rows]

    async def get(self, kind: Kind, name: str) -> CatalogEntry | None:
        c = t.catalog_entries
        async with self._db.connect() as conn:
            row = (await conn.execute(select(c).where(c.c.kind == kind, c.c.name == name))).first()
        return _entry(row) if row is not None else None

    async def put(self, entry: CatalogEntry) -> bool:
        c = t.catalog_entries
        async with self._db.begin() as conn:
            result = await conn.execute(
                c.update()
                .where(c.c.kind == entry.kind, c.c.name == entry.name)
                .values(spec=entry.spec, updated_at=dt(entry.updated_at))
            )
            new = not result.rowcount
            if new:
                await conn.execute(
                    c.insert().values(
                        kind=entry.kind,
                        name=entry.name,
                        spec=entry.spec,
                        created_at=dt(entry.created_at),
                        updated_at=dt(entry.updated_at),
                    )
                )
            await bump(conn, t.CATALOG_VERSION)
        return new

    async def delete(self, kind: Kind, name: str) -> bool:
        c = t.catalog_entries
        async with self._db.begin() as conn:
            result = await conn.execute(c.delete().where(c.c.kind == kind, c.c.name == name))
            if result.rowcount:
                await bump(conn, t.CATALOG_VERSION)
        return bool(result.rowcount)

    async def version(self) -> int:
        async with self._db.connect() as conn:
            value = await conn.scalar(
                select(t.meta.c.value).where(t.meta.c.name == t.CATALOG_VERSION)
            )
        return int(value) if value is not None else 0
