"""Usage rows and their rollups, written together; spend sums for budgets."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.storage.sql import tables as t
from sluice.storage.sql.bodies import purge
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.usage_batch import first_of_each, write_postgresql, write_sqlite
from sluice.usage.dead_letters import RowRejected
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S


class SqlUsage:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._write = write_sqlite if engine.dialect.name == "sqlite" else write_postgresql

    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        """Store the rows and add them to the rollups in one transaction; a row whose
        request id is stored already (a retried batch) is skipped and not counted again."""
        if not events:
            return
        try:
            await self._write(self._engine, first_of_each(events))
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            raise RowRejected(reason) from exc

    async def purge_before(self, cutoff: float, *, limit: int) -> int:
        """Delete at most ``limit`` raw rows created before ``cutoff`` (rollups stay)."""
        return await purge(self._engine, t.usage, cutoff, limit=limit)

    async def count(self) -> int:
        async with self._engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(t.usage)) or 0)

    async def recent(self, *, limit: int = 100) -> list[UsageEvent]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(t.usage).order_by(t.usage.c.created_at.desc()).limit(limit)
            )
            out = []
            for r in rows:
                data = dict(r._mapping)
                data["created_at"] = _ts(data["created_at"])
                data["upstream_ms"] = data.get("upstream_ms") or 0.0
                out.append(UsageEvent(**data))
            return out


ROW_SQLSTATE_CLASSES = frozenset({"22", "23"})
"""SQLSTATE classes that blame the data (data exception, integrity constraint violation);
every other class (connection, resources, operator intervention, ...) is an outage."""

_SQLITE_ROW_CODES = frozenset({18, 19, 20, 25})
"""SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE (primary codes)."""


def refusal(exc: BaseException) -> str | None:
    """The database's message when ``exc`` refuses the rows for what they hold, ``None``
    when it is an outage (or unknown: the rows then wait and are retried). Decided by the
    error's class and code, never by its text."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return None
        orig: BaseException = exc.orig or exc
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if isinstance(code, str):
            return _first_line(orig) if code[:2] in ROW_SQLSTATE_CLASSES else None
        lite = getattr(orig, "sqlite_errorcode", None)
        if isinstance(lite, int):
            return _first_line(orig) if lite & 0xFF in _SQLITE_ROW_CODES else None
        row_error = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError)
        return _first_line(orig) if isinstance(orig, row_error) else None
    if isinstance(exc, StatementError) and exc.orig is not None:  # a parameter could not be bound
        exc = exc.orig
    if isinstance(exc, _DATA_SHAPED):
        return _first_line(exc)
    return None


_DATA_SHAPED = (TypeError, ValueError, ArithmeticError, LookupError, AttributeError)
"""Python errors that making a row out of a value raises (a value of the wrong type or out of
range): the row is refused, like the database would. Connection errors are ``OSError``."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n", 1)[0]
    return f"{type(exc).__name__}: {text}"[:1000]


class SqlSpend:
    """Spend sums from the usage rows, for seeding budgets."""

    _COLUMNS = {
        "key": t.usage.c.key_id,
        "user": t.usage.c.user_id,
        "team": t.usage.c.team_id,
        "org": t.usage.c.org_id,
    }

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def spent_since(self, scope: str, start: int) -> int:
        """Micro-dollars billed to ``scope`` (``key:ID``, ``user:ID``, ``team:ID``,
        ``org:ID``) since ``start`` (epoch seconds). Read from the daily rollups when
        ``start`` is a UTC midnight (every budget period starts at one), so it stays exact
        after raw rows are purged; from the raw rows otherwise."""
        kind, _, ident = scope.partition(":")
        if kind not in self._COLUMNS or not ident or ":" in ident:
            return 0
        if start % DAY_S == 0:
            daily = t.rollup_daily
            query = select(func.coalesce(func.sum(daily.c.cost_micros), 0)).where(
                daily.c[f"{kind}_id"] == ident, daily.c.bucket >= start
            )
        else:
            query = select(func.coalesce(func.sum(t.usage.c.cost_micros), 0)).where(
                self._COLUMNS[kind] == ident, t.usage.c.created_at >= _dt(float(start))
            )
        async with self._engine.connect() as conn:
            return int(await conn.scalar(query) or 0)
