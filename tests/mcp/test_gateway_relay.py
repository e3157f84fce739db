"""The gateway relays server-everything to the SDK's client: tools on both endpoints."""

from __future__ import annotations

import anyio
import pytest
from mcp.types import TextContent

from tests.mcp.gateway_harness import DEADLINE_S, connect, serve_gateway, stdio_server


def text(result: object) -> str:
    content = result.content[0]  # type: ignore[attr-defined]
    assert isinstance(content, TextContent)
    return content.text


async def test_per_server_lists_and_calls_tools() -> None:
    async with serve_gateway((stdio_server(),)) as gw, connect(gw.base + "/mcp/local") as client:
        with anyio.fail_after(DEADLINE_S):
            tools = await client.list_tools()
            names = {t.name for t in tools.tools}
            assert {"echo", "get-sum", "trigger-long-running-operation"} <= names
            result = await client.call_tool("echo", {"message": "hi"})
        assert not result.isError
        assert "hi" in text(result)
        [row] = gw.rows("mcp.tool")
        assert (row.key_id, row.user_id, row.team_id, row.org_id) == ("k_alice", "u1", "t1", "o1")
        assert (row.mcp_server, row.mcp_tool, row.status, row.rpc_error) == (
            "local",
            "echo",
            200,
            None,
        )
        assert row.bytes_in > 0 and row.bytes_out > 0 and row.latency_ms > 0
        [session_row] = gw.rows("mcp.session")
        assert session_row.mcp_server == "local" and session_row.key_id == "k_alice"
