"""Prometheus series of MCP traffic, from the usage rows of ``endpoint`` ``mcp.tool`` (one per
``tools/call``) and ``mcp.session`` (one per session start).

Kept apart from the model series (``sluice.observability.metrics``): MCP rows have no model,
tokens or cost, and never show in ``sluice_requests_total``.

Labels are bounded: ``server`` is a configured server's name, ``tool`` a tool name seen on
it. A tool name comes from the caller's request, so each server keeps at most
:data:`TOOLS_PER_SERVER` tool labels (later ones are counted as ``other``), and at most
:data:`SERVERS` server labels are kept.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from sluice.usage.event import MCP_SESSION, MCP_TOOL, UsageEvent

TOOL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOOLS_PER_SERVER = 200
SERVERS = 200
OTHER = "other"


def failed(e: UsageEvent) -> bool:
    """A tool call that ended in an error: an HTTP error status or a JSON-RPC error."""
    return e.status >= 400 or e.rpc_error is not None


class McpMetrics:
    """Calls, errors, latency, bytes per server and tool; sessions per server."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        """``registry``: ``None`` in multiprocess mode (the default registry's files)."""
        self.calls = Counter(
            "sluice_mcp_tool_calls_total",
            "MCP tool calls (tools/call) per server and tool.",
            ("server", "tool"),
            registry=registry,
        )
        self.errors = Counter(
            "sluice_mcp_tool_errors_total",
            "MCP tool calls that ended in an HTTP or JSON-RPC error.",
            ("server", "tool"),
            registry=registry,
        )
        self.duration = Histogram(
            "sluice_mcp_tool_duration_seconds",
            "MCP tool call time as the client saw it.",
            ("server", "tool"),
            buckets=TOOL_BUCKETS,
            registry=registry,
        )
        self.bytes = Counter(
            "sluice_mcp_bytes_total",
            "Bytes of MCP tool calls: in (request from the client), out (answer to it).",
            ("server", "direction"),
            registry=registry,
        )
        self.sessions = Counter(
            "sluice_mcp_sessions_total",
            "MCP sessions started, per server.",
            ("server",),
            registry=registry,
        )
        self._tools: dict[str, set[str]] = {}

    def _labels(self, server: str | None, tool: str | None) -> tuple[str, str]:
        name = server or ""
        tools = self._tools.get(name)
        if tools is None:
            if len(self._tools) >= SERVERS:
                return OTHER, OTHER
            tools = self._tools[name] = set()
        t = tool or ""
        if t not in tools:
            if len(tools) >= TOOLS_PER_SERVER:
                return name, OTHER
            tools.add(t)
        return name, t

    def observe(self, events: Iterable[UsageEvent]) -> None:
        """Count a batch of MCP rows (others are ignored)."""
        calls: Tally[tuple[str, str]] = Tally()
        errors: Tally[tuple[str, str]] = Tally()
        sizes: Tally[tuple[str, str]] = Tally()
        sessions: Tally[str] = Tally()
        for e in events:
            if e.endpoint == MCP_SESSION:
                sessions[self._labels(e.mcp_server, None)[0]] += 1
                continue
            if e.endpoint != MCP_TOOL:
                continue
            labels = self._labels(e.mcp_server, e.mcp_tool)
            calls[labels] += 1
            if failed(e):
                errors[labels] += 1
            self.duration.labels(*labels).observe(e.latency_ms / 1000)
            sizes[(labels[0], "in")] += e.bytes_in
            sizes[(labels[0], "out")] += e.bytes_out
        for labels, n in calls.items():
            self.calls.labels(*labels).inc(n)
        for labels, n in errors.items():
            self.errors.labels(*labels).inc(n)
        for labels, n in sizes.items():
            if n:
                self.bytes.labels(*labels).inc(n)
        for server, n in sessions.items():
            self.sessions.labels(server).inc(n)
