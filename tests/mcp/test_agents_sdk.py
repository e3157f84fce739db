"""The OpenAI Agents SDK's MCP client (``MCPServerStreamableHttp``) against the gateway's
``/mcp`` and ``/mcp/{server}`` with a Sluice key in its headers, over real server-everything
upstreams: it lists and calls tools as an agent would (no model needed)."""

from __future__ import annotations

import anyio
import pytest

from tests.mcp.gateway_harness import DEADLINE_S, EVERYTHING, serve_gateway, stdio_server

agents_mcp = pytest.importorskip("agents.mcp")

pytestmark = [
    pytest.mark.skipif(
        not EVERYTHING.exists(), reason="server-everything is not installed (tests/clients: npm ci)"
    ),
    # The Agents SDK still calls the mcp SDK's older name for the Streamable HTTP client.
    pytest.mark.filterwarnings("ignore:Use `streamable_http_client` instead:DeprecationWarning"),
]


def _server(url: str, key: str) -> agents_mcp.MCPServerStreamableHttp:
    return agents_mcp.MCPServerStreamableHttp(
        params={"url": url, "headers": {"Authorization": f"Bearer {key}"}, "timeout": DEADLINE_S},
        client_session_timeout_seconds=DEADLINE_S,
        name="sluice",
    )


async def test_aggregated_endpoint_lists_and_calls() -> None:
    async with serve_gateway((stdio_server("local"),)) as gw:
        with anyio.fail_after(DEADLINE_S * 2):
            async with _server(f"{gw.base}/mcp", "sk-alice") as server:
                names = {tool.name for tool in await server.list_tools()}
                assert {"local__echo", "local__get-sum"} <= names
                result = await server.call_tool("local__echo", {"message": "agents"})
    assert not result.isError
    assert result.content[0].text == "Echo: agents"  # type: ignore[union-attr]
    [row] = gw.rows("mcp.tool")
    assert (row.key_id, row.mcp_server, row.mcp_tool, row.status) == (
        "k_alice",
        "local",
        "echo",
        200,
    )


async def test_per_server_endpoint_applies_access() -> None:
    async with serve_gateway((stdio_server("local"),)) as gw:
        with anyio.fail_after(DEADLINE_S * 2):
            async with _server(f"{gw.base}/mcp/local", "sk-narrow") as server:
                names = {tool.name for tool in await server.list_tools()}
                assert "echo" in names and "get-env" not in names
                result = await server.call_tool("get-sum", {"a": 2, "b": 3})
                assert "5" in result.content[0].text  # type: ignore[union-attr]
                with pytest.raises(Exception, match="unknown tool"):
                    await server.call_tool("get-env", {})
    assert [(r.mcp_tool, r.rpc_error) for r in gw.rows("mcp.tool")] == [
        ("get-sum", None),
        ("get-env", -32602),
    ]
