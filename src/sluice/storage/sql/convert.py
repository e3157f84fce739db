"""Conversions at the storage boundary and the change counter."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Integer, Text, cast
from sqlalchemy.ext.asyncio import AsyncConnection

from sluice.storage.sql import tables as t
from sluice.storage.sql.engine import dialect_insert


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


async def bump(conn: AsyncConnection, name: str) -> int:
    """Add one to the counter ``name`` (1 when it does not exist) and return the new value.

    One statement, so two transactions bumping at once never both write the same value: on
    PostgreSQL the second waits for the first's row lock and adds to the committed value.
    """
    insert = dialect_insert(conn.dialect.name)
    statement = insert(t.meta).values(name=name, value="1")
    statement = statement.on_conflict_do_update(
        index_elements=["name"], set_={"value": cast(cast(t.meta.c.value, Integer) + 1, Text)}
    ).returning(t.meta.c.value)
    return int(str(await conn.scalar(statement)))
