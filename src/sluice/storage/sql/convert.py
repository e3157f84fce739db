"""Conversions at the storage boundary and the change counter."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.storage.sql import tables as t


def dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def sqlite_time(ts: float) -> str:
    """A timestamp as SQLAlchemy's ``DateTime`` stores it in SQLite (so it reads back and
    compares the same): ``YYYY-MM-DD HH:MM:SS.ffffff``, UTC. For statements that bypass
    the compiler (the usage writer's)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(" ", "microseconds")[:26]


def ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


async def bump(conn: AsyncConnection, name: str) -> None:
    current = await conn.scalar(select(t.meta.c.value).where(t.meta.c.name == name))
    if current is None:
        await conn.execute(t.meta.insert().values(name=name, value="1"))
    else:
        await conn.execute(
            update(t.meta).where(t.meta.c.name == name).values(value=str(int(current) + 1))
        )
