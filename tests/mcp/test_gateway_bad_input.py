"""Bad input on /mcp: each a JSON-RPC error or a clear 4xx, never a 500 or a hang."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import pytest
from mcp.shared.exceptions import McpError
from mcp.types import INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR

from sluice.config.mcp import McpServerConfig
from sluice.mcp.errors import (
    FORBIDDEN,
    MISDIRECTED,
    NOT_FOUND,
    RESULT_TOO_LARGE,
    UNAUTHORIZED,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
)
from tests.mcp.gateway_harness import (
    DEADLINE_S,
    INIT,
    JSON_HEADERS,
    connect,
    serve_gateway,
    stdio_server,
)

MISBEHAVING = McpServerConfig(
    name="bad",
    transport="stdio",
    command=sys.executable,
    args=(str(Path(__file__).with_name("gateway_misbehaving.py")),),
    timeout_s=5.0,  # python start-up on a busy machine stays well within it
)
ALICE = {"Authorization": "Bearer sk-alice", **JSON_HEADERS}


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    with anyio.fail_after(DEADLINE_S):
        return await client.post(url, content=body, headers=headers)


async def initialize(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> str:
    answer = await post(http, url, INIT, headers)
    assert answer.status_code == 200
    return answer.headers["mcp-session-id"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", ALICE, 400, PARSE_ERROR),
        (b"[" + INIT + b"]", ALICE, 400, INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', ALICE, 400, INVALID_REQUEST),
        (b'"hello"', ALICE, 400, INVALID_REQUEST),
        (INIT, {**ALICE, "Content-Type": "text/plain"}, 415, INVALID_REQUEST),
        (INIT, JSON_HEADERS, 401, UNAUTHORIZED),
        (INIT, {**ALICE, "Host": "evil.example:80"}, 421, MISDIRECTED),
        (INIT, {**ALICE, "Origin": "http://evil.example"}, 403, FORBIDDEN),
    ],
    ids=[
        "malformed",
        "batch",
        "no-session",
        "not-object",
        "content-type",
        "no-key",
        "host",
        "origin",
    ],
)
async def test_refused_before_a_session(
    body: bytes, headers: dict[str, str], status: int, code: int
) -> None:
    async with serve_gateway((stdio_server(),)) as gw, httpx.AsyncClient() as http:
        answer = await post(http, gw.base + "/mcp/local", body, headers)
        assert answer.status_code == status
        assert answer.json()["error"]["code"] == code


async def test_session_ids_bound_and_expiring() -> None:
    async with (
        serve_gateway((stdio_server(),), session_idle_s=60) as gw,
        httpx.AsyncClient() as http,
    ):
        url = gw.base + "/mcp/local"
        sid = await initialize(http, url, ALICE)
        assert len(sid) >= 32
        ping = b'{"jsonrpc":"2.0","id":2,"method":"ping"}'
        ok = await post(http, url, ping, {**ALICE, "mcp-session-id": sid})
        assert ok.status_code == 200
        bob = {**ALICE, "Authorization": "Bearer sk-bob", "mcp-session-id": sid}
        stolen = await post(http, url, ping, bob)
        assert (stolen.status_code, stolen.json()["error"]["code"]) == (404, NOT_FOUND)
        unknown = await post(http, url, ping, {**ALICE, "mcp-session-id": "nope"})
        assert unknown.status_code == 404
        gw.clock.advance(61)
        expired = await post(http, url, ping, {**ALICE, "mcp-session-id": sid})
        assert expired.status_code == 404
        assert len(gw.sessions) == 0
        no_origin_ok = await initialize(http, gw.base + "/mcp", {**ALICE})
        assert no_origin_ok != sid


async def test_origin_and_wildcard_hosts_when_configured() -> None:
    servers = (stdio_server(),)
    config = {"allowed_hosts": ("gw.example:*",), "allowed_origins": ("https://app.example",)}
    async with serve_gateway(servers, **config) as gw, httpx.AsyncClient() as http:
        url = gw.base + "/mcp/local"
        good = {**ALICE, "Host": "gw.example:8443", "Origin": "https://app.example"}
        await initialize(http, url, good)
        local = await post(http, url, INIT, ALICE)  # 127.0.0.1 is not configured
        assert local.status_code == 421


async def test_unknown_tool_bad_arguments_deadline_giant_and_dying_upstream() -> None:
    async with serve_gateway((stdio_server(), MISBEHAVING), max_result_bytes=65536) as gw:
        async with connect(gw.base + "/mcp/local") as client:
            with anyio.fail_after(DEADLINE_S):
                with pytest.raises(McpError) as unknown:
                    await client.call_tool("no-such-tool", {})
                assert unknown.value.error.code == INVALID_PARAMS
                with pytest.raises(McpError) as bad_args:
                    await client.call_tool("get-sum", {"a": "one"})
                assert bad_args.value.error.code == INVALID_PARAMS
                assert "arguments" in bad_args.value.error.message
        async with connect(gw.base + "/mcp/bad") as client:
            with anyio.fail_after(DEADLINE_S):
                with pytest.raises(McpError) as slow:
                    await client.call_tool("hang", {})
                assert slow.value.error.code == UPSTREAM_TIMEOUT
                with pytest.raises(McpError) as big:
                    await client.call_tool("giant", {"size": 100_000})
                assert big.value.error.code == RESULT_TOO_LARGE
                small = await client.call_tool("giant", {"size": 10})
                assert not small.isError
                with pytest.raises(McpError) as died:
                    await client.call_tool("die", {})
                assert died.value.error.code == UPSTREAM_UNAVAILABLE
                again = await client.call_tool("giant", {"size": 5})  # a new upstream session
                assert not again.isError
        codes = [r.rpc_error for r in gw.rows("mcp.tool")]
        assert codes == [
            INVALID_PARAMS,
            INVALID_PARAMS,
            UPSTREAM_TIMEOUT,
            RESULT_TOO_LARGE,
            None,
            UPSTREAM_UNAVAILABLE,
            None,
        ]
        assert gw.rows("mcp.tool")[2].status == 504
