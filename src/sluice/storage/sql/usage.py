"""Usage rows and their rollups, written together; spend sums for budgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluice.storage.sql import coarse_rollups, rollups
from sluice.storage.sql import tables as t
from sluice.storage.sql.bodies import purge
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S


async def _not_yet_stored(conn: AsyncConnection, events: Sequence[UsageEvent]) -> list[UsageEvent]:
    """The events whose request id is not stored yet (first of each id in the batch), so a
    batch retried after an unclear commit is never counted twice in the rollups."""
    ids = list({e.request_id for e in events})
    stored = set(
        (await conn.execute(select(t.usage.c.request_id).where(t.usage.c.request_id.in_(ids))))
        .scalars()
        .all()
    )
    fresh: list[UsageEvent] = []
    for e in events:
        if e.request_id not in stored:
            stored.add(e.request_id)
            fresh.append(e)
    return fresh


def _usage_row(e: UsageEvent) -> dict[str, Any]:
    return {
        "request_id": e.request_id,
        "created_at": _dt(e.created_at),
        "endpoint": e.endpoint,
        "key_id": e.key_id,
        "model": e.model,
        "provider": e.provider,
        "deployment": e.deployment,
        "upstream_model": e.upstream_model,
        "prompt_tokens": e.prompt_tokens,
        "completion_tokens": e.completion_tokens,
        "cached_tokens": e.cached_tokens,
        "cache_write_tokens": e.cache_write_tokens,
        "tokens_estimated": e.tokens_estimated,
        "latency_ms": e.latency_ms,
        "ttft_ms": e.ttft_ms,
        "status": e.status,
        "error_kind": e.error_kind,
        "error_message": e.error_message[:1000] if e.error_message else None,
        "streamed": e.streamed,
        "end_user": e.end_user[:200] if e.end_user else None,
        "attempts": e.attempts,
        "attempt_errors": e.attempt_errors,
        "partial": e.partial,
        "cost_micros": e.cost_micros,
        "user_id": e.user_id,
        "team_id": e.team_id,
        "org_id": e.org_id,
    }


_USAGE_COLUMNS = tuple(c.name for c in t.usage.columns)
_SQLITE_USAGE_INSERT = (
    f"INSERT OR IGNORE INTO {t.usage.name} ({', '.join(_USAGE_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _USAGE_COLUMNS)})"
)


def _sqlite_row(e: UsageEvent) -> tuple[Any, ...]:
    """A usage row as SQLAlchemy would store it in SQLite (so it reads back the same)."""
    row = _usage_row(e)
    row["created_at"] = datetime.fromtimestamp(e.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    row["tokens_estimated"] = int(e.tokens_estimated)
    row["streamed"] = int(e.streamed)
    row["partial"] = int(e.partial)
    if e.attempt_errors is not None:
        row["attempt_errors"] = orjson.dumps(e.attempt_errors).decode()
    return tuple(row[c] for c in _USAGE_COLUMNS)


class SqlUsage:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        dialect = engine.dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    async def insert_many(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        async with self._engine.begin() as conn:
            fresh = await _not_yet_stored(conn, events)
            if not fresh:
                return
            if self._sqlite:
                # The writer's hot loop: plain tuples straight to the driver. Preparing rows
                # through the statement compiler costs ~25 µs each on the event loop.
                await conn.exec_driver_sql(_SQLITE_USAGE_INSERT, [_sqlite_row(e) for e in fresh])
            else:
                stmt = self._insert(t.usage).on_conflict_do_nothing(index_elements=["request_id"])
                await conn.execute(stmt, [_usage_row(e) for e in fresh])
            await rollups.add(conn, fresh)
            await coarse_rollups.add(conn, fresh)

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
                out.append(UsageEvent(**data))
            return out


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
