"""MCP tool-call analytics: calls, errors, latency (mean, p50, p95) and bytes per server and
tool over a time range, from the raw usage rows of ``endpoint`` ``mcp.tool``.

MCP rows are not in the model rollups (they have no model, tokens or cost), so these figures
cover the raw rows' retention (``usage.retention``); scoping is the analytics' own
(``sluice.analytics.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sluice.analytics.model import Narrow, Visibility
from sluice.usage import histogram


@dataclass(frozen=True, slots=True)
class McpQuery:
    """Tool-call rows with ``start <= created_at < end`` that the caller may see."""

    start: float
    end: float
    visibility: Visibility
    narrow: Narrow
    server: str | None = None
    """Only this server (``None``: every one)."""


@dataclass(slots=True)
class McpToolSums:
    """The sums of one server's tool."""

    server: str
    tool: str
    calls: int = 0
    errors: int = 0
    """Calls answered with an HTTP error status or a JSON-RPC error."""
    latency_ms_sum: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * histogram.BUCKETS)
    """Calls per latency bucket (``sluice.usage.histogram``)."""


@dataclass(frozen=True, slots=True)
class McpToolMetrics:
    server: str
    tool: str
    calls: int
    errors: int
    error_rate: float
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    bytes_in: int
    bytes_out: int

    @classmethod
    def of(cls, s: McpToolSums) -> McpToolMetrics:
        return cls(
            server=s.server,
            tool=s.tool,
            calls=s.calls,
            errors=s.errors,
            error_rate=s.errors / s.calls if s.calls else 0.0,
            latency_ms_mean=s.latency_ms_sum / s.calls if s.calls else None,
            latency_ms_p50=histogram.percentile(s.latency, 0.5),
            latency_ms_p95=histogram.percentile(s.latency, 0.95),
            bytes_in=s.bytes_in,
            bytes_out=s.bytes_out,
        )


class McpUsageStore(Protocol):
    async def mcp_calls(self, query: McpQuery) -> list[McpToolSums]:
        """The sums of every (server, tool) with at least one call in the query; in no
        particular order."""
        ...


async def tool_calls(store: McpUsageStore, query: McpQuery) -> list[McpToolMetrics]:
    """Per server and tool, the most called first (then server and tool names)."""
    sums = await store.mcp_calls(query)
    sums.sort(key=lambda s: (-s.calls, s.server, s.tool))
    return [McpToolMetrics.of(s) for s in sums]
