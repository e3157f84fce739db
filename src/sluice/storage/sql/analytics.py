"""Analytics queries: rollup sums and the request log, the same SQL on both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Table,
    and_,
    cast,
    false,
    func,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.analytics.model import LogQuery, Narrow, RollupQuery, RollupRow, Visibility
from sluice.storage.sql import tables as t
from sluice.storage.sql.coarse_rollups import dimensions
from sluice.storage.sql.convert import dt as _dt
from sluice.storage.sql.convert import ts as _ts
from sluice.storage.sql.rollups import METRICS
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import Sums

_FULL = ((t.rollup_hourly, 3600), (t.rollup_daily, 86_400))
_SOURCES: dict[int, tuple[tuple[Table, frozenset[str]], ...]] = {
    width: tuple(
        (table, frozenset(dimensions(table)))
        for table, w in (*t.COARSE_ROLLUPS, *_FULL)  # coarse first: fewer rows
        if w == width
    )
    for width in (3600, 86_400)
}
_OWNERS = ("org_id", "team_id", "user_id", "key_id")
_SCALARS = METRICS[:10]
_FLOATS = frozenset({"latency_ms_sum", "ttft_ms_sum"})


def visible(table: Table, v: Visibility) -> ColumnElement[bool]:
    if v.everything:
        return true()
    terms = [
        table.c[column].in_(sorted(ids))
        for column, ids in (
            ("org_id", v.org_ids),
            ("team_id", v.team_ids),
            ("user_id", v.user_ids),
            ("key_id", v.key_ids),
        )
        if ids
    ]
    return or_(*terms) if terms else false()


_NARROWED = ("org_id", "team_id", "user_id", "key_id", "model", "provider")


def narrowed(table: Table, n: Narrow) -> list[ColumnElement[bool]]:
    return [table.c[name] == value for name in _NARROWED if (value := getattr(n, name)) is not None]


def _sums(values: Any) -> Sums:
    s = Sums()
    # PostgreSQL sums integers as NUMERIC (Decimal): back to int and float here.
    for name, value in zip(_SCALARS, values[:10], strict=True):
        setattr(s, name, float(value or 0) if name in _FLOATS else int(value or 0))
    s.latency = [int(x or 0) for x in values[10:]]
    return s


def implied(v: Visibility, n: Narrow) -> Visibility:
    """``v``, or everything when the filter alone keeps only visible rows (it pins an owner
    column to one the caller may see, e.g. a team admin's ``scope=team:ID``)."""
    if v.everything:
        return v
    for column, ids in zip(_OWNERS, (v.org_ids, v.team_ids, v.user_ids, v.key_ids), strict=True):
        if getattr(n, column) in ids:
            return Visibility(everything=True)
    return v


def source(query: RollupQuery) -> Table:
    """The smallest rollup table of the query's width that has every column it groups by,
    filters on or checks visibility with."""
    needed = {g for g in query.group_by if g != "bucket"}
    needed |= {name for name in _NARROWED if getattr(query.narrow, name) is not None}
    v = implied(query.visibility, query.narrow)
    if not v.everything:
        needed |= {
            column
            for column, ids in zip(
                _OWNERS, (v.org_ids, v.team_ids, v.user_ids, v.key_ids), strict=True
            )
            if ids
        }
    for table, dims in _SOURCES[query.width_s]:
        if needed <= dims:
            return table
    raise AssertionError(f"no rollup of width {query.width_s} has {sorted(needed)}")


def _summed(table: Table, metric: str) -> ColumnElement[Any]:
    # PostgreSQL sums BIGINT as NUMERIC (a Decimal per value); back to BIGINT in the query.
    kind = Float if metric in _FLOATS else BigInteger
    return cast(func.sum(table.c[metric]), kind)


def _where(table: Table, query: RollupQuery) -> list[ColumnElement[bool]]:
    where = [
        table.c.bucket >= query.start,
        table.c.bucket < query.end,
        visible(table, implied(query.visibility, query.narrow)),
        *narrowed(table, query.narrow),
    ]
    if query.among is not None:
        (column,) = (g for g in query.group_by if g != "bucket")
        where.append(table.c[column].in_(sorted(query.among)))
    return where


class SqlAnalytics:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def rollups(self, query: RollupQuery) -> list[RollupRow]:
        table = source(query)
        groups = [table.c[g] for g in query.group_by]
        stmt = (
            select(*groups, *(_summed(table, m) for m in METRICS))
            .where(*_where(table, query))
            .group_by(*groups)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        n = len(groups)
        return [
            RollupRow(tuple(r[:n]), _sums(r[n:])) for r in rows if r[n] is not None and r[n] > 0
        ]

    async def top(self, queries: Sequence[RollupQuery], limit: int) -> list[str]:
        # One statement over every segment: only the group column and the two ordering
        # sums are read, ordered and cut in the database.
        (column,) = queries[0].group_by
        parts = []
        for q in queries:
            table = source(q)
            parts.append(
                select(
                    table.c[column].label("g"),
                    table.c.cost_micros.label("c"),
                    table.c.requests.label("r"),
                ).where(*_where(table, q))
            )
        rows = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
        value: ColumnElement[Any] = rows.c.g
        if self._engine.dialect.name == "postgresql":
            value = value.collate("C")  # code-point order, as SQLite's and Python's
        requests = func.sum(rows.c.r)
        stmt = (
            select(rows.c.g)
            .group_by(rows.c.g)
            .having(requests > 0)
            .order_by(func.sum(rows.c.c).desc(), requests.desc(), value)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [str(g) for g in (await conn.scalars(stmt)).all()]

    async def log(self, query: LogQuery) -> list[UsageEvent]:
        u = t.usage
        where = [
            u.c.created_at >= _dt(query.start),
            u.c.created_at < _dt(query.end),
            visible(u, query.visibility),
            *narrowed(u, query.narrow),
        ]
        if query.status is not None:
            where.append(u.c.status == query.status)
        if query.errors_only is True:
            where.append(u.c.status >= 400)
        elif query.errors_only is False:
            where.append(u.c.status < 400)
        if query.after is not None:
            at = _dt(query.after.created_at)
            where.append(
                or_(
                    u.c.created_at < at,
                    and_(u.c.created_at == at, u.c.request_id < query.after.request_id),
                )
            )
        stmt = (
            select(u)
            .where(*where)
            .order_by(u.c.created_at.desc(), u.c.request_id.desc())
            .limit(query.limit)
        )
        async with self._engine.connect() as conn:
            return [_event(r) for r in await conn.execute(stmt)]

    async def event(self, request_id: str, visibility: Visibility) -> UsageEvent | None:
        u = t.usage
        stmt = select(u).where(u.c.request_id == request_id, visible(u, visibility))
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _event(row) if row is not None else None


def _event(row: Any) -> UsageEvent:
    data = dict(row._mapping)
    data["created_at"] = _ts(data["created_at"])
    data["upstream_ms"] = data.get("upstream_ms") or 0.0
    return UsageEvent(**data)
