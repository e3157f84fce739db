"""The unit of work's connection: repositories built on it join one open transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class Database(Protocol):
    """What a repository needs from its database: an engine (every call its own transaction)
    or a :class:`Bound` connection (every call part of the unit's transaction)."""

    @property
    def dialect(self) -> Dialect: ...

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


class Bound:
    """A connection inside an open transaction, standing in for the engine: ``begin`` and
    ``connect`` hand out that connection, so nothing commits before the unit ends."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> Dialect:
        return self._conn.dialect

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        yield self._conn

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.begin()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Bound]:
    """One transaction, committed when the block ends and rolled back when it raises. On
    SQLite it takes the write lock at once (``BEGIN IMMEDIATE``): the driver would begin only
    at the first write, leaving the unit's earlier reads outside it (and a reader that later
    writes can be refused when another connection wrote meanwhile). Admin units are short,
    so other writers wait a moment (``busy_timeout``)."""
    async with engine.connect() as conn, conn.begin():
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield Bound(conn)
