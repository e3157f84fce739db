"""SQL repository of the MCP servers managed through the admin API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sluice.storage.mcp_servers import StoredMcpServer
from sluice.storage.sql import tables as t
from sluice.storage.sql.convert import bump, dt, ts
from sluice.storage.sql.unit import Database


def _record(row: Any) -> StoredMcpServer:
    created, updated = ts(row.created_at), ts(row.updated_at)
    assert created is not None
    assert updated is not None
    return StoredMcpServer(row.name, dict(row.spec), created, updated)


class SqlMcpServers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def all(self) -> list[StoredMcpServer]:
        s = t.mcp_servers
        async with self._db.connect() as conn:
            rows = await conn.execute(select(s).order_by(s.c.name))
            return [_record(r) for r in rows]

    async def get(self, name: str) -> StoredMcpServer | None:
        s = t.mcp_servers
        async with self._db.connect() as conn:
            row = (await conn.execute(select(s).where(s.c.name == name))).first()
        return _record(row) if row is not None else None

    async def add(self, record: StoredMcpServer) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                t.mcp_servers.insert().values(
                    name=record.name,
                    spec=record.spec,
                    created_at=dt(record.created_at),
                    updated_at=dt(record.updated_at),
                )
            )
            await bump(conn, t.KEYS_VERSION)

    async def update(self, record: StoredMcpServer) -> bool:
        s = t.mcp_servers
        async with self._db.begin() as conn:
            result = await conn.execute(
                s.update()
                .where(s.c.name == record.name)
                .values(spec=record.spec, updated_at=dt(record.updated_at))
            )
            if result.rowcount:
                await bump(conn, t.KEYS_VERSION)
        return bool(result.rowcount)

    async def delete(self, name: str) -> bool:
        s = t.mcp_servers
        async with self._db.begin() as conn:
            result = await conn.execute(s.delete().where(s.c.name == name))
            if result.rowcount:
                await bump(conn, t.KEYS_VERSION)
        return bool(result.rowcount)
