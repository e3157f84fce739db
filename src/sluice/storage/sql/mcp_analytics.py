"""MCP tool-call sums from the raw usage rows, the same SQL on both dialects: one grouped
query per range (server, tool, latency bucket), merged into one row per server and tool."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Integer, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluice.analytics.mcp import McpQuery, McpToolSums
from sluice.storage.sql import tables as t
from sluice.storage.sql.analytics import narrowed, visible
from sluice.storage.sql.convert import dt as _dt
from sluice.usage import histogram
from sluice.usage.event import MCP_TOOL


def _bucket() -> Any:
    """The latency bucket of a row, as ``sluice.usage.histogram.bucket`` computes it."""
    u = t.usage
    return case(
        *((u.c.latency_ms <= upper, i) for i, upper in enumerate(histogram.UPPER_MS)),
        else_=histogram.BUCKETS - 1,
    )


class SqlMcpAnalytics:
    """``sluice.analytics.mcp.McpUsageStore`` over the usage table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def mcp_calls(self, query: McpQuery) -> list[McpToolSums]:
        return await _mcp_calls(self._engine, query)


async def _mcp_calls(engine: AsyncEngine, query: McpQuery) -> list[McpToolSums]:
    u = t.usage
    bucket = _bucket().label("bucket")
    failed = case((or_(u.c.status >= 400, u.c.rpc_error.is_not(None)), 1), else_=0)
    where = [
        u.c.endpoint == MCP_TOOL,
        u.c.mcp_server.is_not(None),  # what lets the partial index serve the query
        u.c.created_at >= _dt(query.start),
        u.c.created_at < _dt(query.end),
        visible(u, query.visibility),
        *narrowed(u, query.narrow),
    ]
    if query.server is not None:
        where.append(u.c.mcp_server == query.server)
    stmt = (
        select(
            u.c.mcp_server,
            u.c.mcp_tool,
            bucket,
            cast(func.count(), BigInteger),
            cast(func.sum(cast(failed, Integer)), BigInteger),
            cast(func.sum(u.c.latency_ms), Float),
            cast(func.sum(u.c.bytes_in), BigInteger),
            cast(func.sum(u.c.bytes_out), BigInteger),
        )
        .where(*where)
        .group_by(u.c.mcp_server, u.c.mcp_tool, bucket)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    out: dict[tuple[str, str], McpToolSums] = {}
    for server, tool, index, calls, errors, latency, sent, received in rows:
        key = (server or "", tool or "")
        sums = out.get(key)
        if sums is None:
            sums = out[key] = McpToolSums(*key)
        sums.calls += int(calls)
        sums.errors += int(errors or 0)
        sums.latency_ms_sum += float(latency or 0.0)
        sums.bytes_in += int(sent or 0)
        sums.bytes_out += int(received or 0)
        sums.latency[int(index)] += int(calls)
    return list(out.values())
