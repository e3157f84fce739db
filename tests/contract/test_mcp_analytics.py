"""MCP tool-call analytics from the raw usage rows, over SQLite and PostgreSQL: calls,
errors, latency (mean, p50, p95) and bytes per server and tool, within a range and what the
caller may see; model rows never count."""

from __future__ import annotations

import pytest

from sluice.analytics.mcp import McpQuery, tool_calls
from sluice.analytics.model import Narrow, Visibility
from sluice.storage.sql.repository import SqlStorage
from sluice.usage import histogram
from sluice.usage.event import MCP_SESSION, MCP_TOOL, UsageEvent

T0 = 1_700_000_000.0
ALL = Visibility(everything=True)


def _call(
    rid: str, server: str, tool: str, latency_ms: float, *, at: float = T0, **fields: object
) -> UsageEvent:
    e = UsageEvent(
        rid,
        at,
        MCP_TOOL,
        "key_a",
        None,
        latency_ms=latency_ms,
        org_id="o1",
        team_id="t1",
        user_id="u1",
        mcp_server=server,
        mcp_tool=tool,
        bytes_in=100,
        bytes_out=1000,
    )
    for name, value in fields.items():
        setattr(e, name, value)
    return e


async def test_calls_errors_latency_and_bytes_per_server_and_tool(storage: SqlStorage) -> None:
    rows = [_call(f"e{i}", "everything", "echo", 10.0 * (i + 1)) for i in range(20)]
    rows += [
        _call("x1", "everything", "add", 5000.0, rpc_error=-32602),
        _call("x2", "everything", "add", 30.0, status=504, error_kind="provider_timeout"),
        _call("g1", "github", "list_issues", 200.0, key_id="key_b", user_id="u2", team_id="t2"),
        _call("old", "everything", "echo", 1.0, at=T0 - 7200),  # outside the range
        UsageEvent("s1", T0, MCP_SESSION, "key_a", None, org_id="o1", mcp_server="everything"),
        UsageEvent("c1", T0, "chat", "key_a", "mock-gpt", org_id="o1", latency_ms=9.0),
    ]
    await storage.usage.insert_many(rows)
    query = McpQuery(T0 - 60, T0 + 60, ALL, Narrow())
    result = {(m.server, m.tool): m for m in await tool_calls(storage.mcp_analytics, query)}
    assert list(result) == [
        ("everything", "echo"),
        ("everything", "add"),
        ("github", "list_issues"),
    ]
    echo = result[("everything", "echo")]
    assert (echo.calls, echo.errors, echo.error_rate) == (20, 0, 0.0)
    assert echo.latency_ms_mean == pytest.approx(105.0)
    expected = [0] * histogram.BUCKETS
    for i in range(20):
        expected[histogram.bucket(10.0 * (i + 1))] += 1
    assert echo.latency_ms_p95 == pytest.approx(histogram.percentile(expected, 0.95))
    assert echo.latency_ms_p50 == pytest.approx(histogram.percentile(expected, 0.5))
    assert (echo.bytes_in, echo.bytes_out) == (2000, 20000)
    add = result[("everything", "add")]
    assert (add.calls, add.errors, add.error_rate) == (2, 2, 1.0)
    assert add.latency_ms_p95 is not None and add.latency_ms_p95 > 2000

    # Scoped: what the caller may see, then what it narrowed to.
    mine = Visibility(user_ids=frozenset({"u2"}))
    seen = await tool_calls(storage.mcp_analytics, McpQuery(T0 - 60, T0 + 60, mine, Narrow()))
    assert [(m.server, m.tool, m.calls) for m in seen] == [("github", "list_issues", 1)]
    narrowed = McpQuery(T0 - 60, T0 + 60, ALL, Narrow(team_id="t1"), server="everything")
    assert {m.tool for m in await tool_calls(storage.mcp_analytics, narrowed)} == {"echo", "add"}
    nothing = McpQuery(T0 - 60, T0 + 60, Visibility(), Narrow())
    assert await tool_calls(storage.mcp_analytics, nothing) == []
