"""What crosses the gateway and what does not: the caller's key never reaches the upstream,
the upstream's session id never reaches the client, and the upstream gets the headers its
config gives it (a FastMCP server over Streamable HTTP that reports what it received)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import TextContent

from sluice.config.mcp import McpServerConfig
from tests.mcp.gateway_harness import DEADLINE_S, free_port, serve_gateway
from tests.services import _wait_port

HEADER_SERVER = Path(__file__).with_name("header_server.py")
KEY = "sk-alice"


@pytest.fixture
def header_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(HEADER_SERVER), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, timeout_s=30, proc=proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_the_key_stays_here_and_the_upstream_session_stays_there(
    header_server: str,
) -> None:
    upstream = McpServerConfig(
        name="headers",
        transport="streamable_http",
        url=header_server,
        headers={"X-Upstream-Token": "upstream-secret"},  # type: ignore[dict-item]
    )
    async with serve_gateway((upstream,)) as gw:
        client = create_mcp_http_client(
            headers={"Authorization": f"Bearer {KEY}", "X-Api-Key": KEY},
            timeout=httpx.Timeout(DEADLINE_S),
        )
        async with (
            client,
            streamable_http_client(gw.base + "/mcp/headers", http_client=client) as (r, w, sid),
            ClientSession(r, w) as session,
        ):
            with anyio.fail_after(DEADLINE_S):
                await session.initialize()
                result = await session.call_tool("seen_headers", {})
            ours = sid()
    [content] = result.content
    assert isinstance(content, TextContent)
    seen = json.loads(content.text)
    assert KEY not in json.dumps(seen)
    assert "x-api-key" not in seen
    assert seen.get("authorization") is None
    assert seen["x-upstream-token"] == "upstream-secret"
    upstream_session = seen["mcp-session-id"]
    assert ours is not None and upstream_session
    assert ours != upstream_session
    assert len(ours) >= 32  # token_urlsafe(24): 192 random bits
