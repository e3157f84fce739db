"""The MCP gateway end to end: two ``sluice serve`` processes sharing PostgreSQL and Redis,
``mcp:`` servers in the config file (server-everything over stdio and over Streamable
HTTP), keys made with the CLI, the SDK's client sending its requests to either process.
Sessions move between the processes; every session start and tool call leaves its row."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from tests.e2e.support import base_env, create_key_cli, free_port, serve_until_ready
from tests.services import _wait_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EVERYTHING = (
    Path(__file__).parents[1]
    / "clients/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)
DEADLINE_S = 30.0
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture
def everything_url() -> Iterator[str]:
    """server-everything in Streamable HTTP mode, its port from ``PORT``."""
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(EVERYTHING), "streamableHttp"],
        env={"PATH": os.environ["PATH"], "PORT": str(port), "HOME": os.environ.get("HOME", "/")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_port(port, timeout_s=30, proc=proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Switch(httpx.AsyncBaseTransport):
    """Sends each request to the process chosen last (``to``), as a load balancer might."""

    def __init__(self, *ports: int) -> None:
        self._ports = ports
        self._target = 0
        self._inner = httpx.AsyncHTTPTransport()

    def to(self, index: int) -> None:
        self._target = index

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(port=self._ports[self._target])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextlib.asynccontextmanager
async def client_via(
    switch: Switch, path: str, key: str
) -> AsyncIterator[tuple[ClientSession, Any]]:
    http = httpx.AsyncClient(
        transport=switch, headers={"x-api-key": key}, timeout=httpx.Timeout(DEADLINE_S)
    )
    async with (
        http,
        streamable_http_client(f"http://127.0.0.1:1{path}", http_client=http) as (r, w, sid),
        ClientSession(r, w) as session,
    ):
        with anyio.fail_after(DEADLINE_S):
            await session.initialize()
        yield session, sid


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def config(remote_url: str) -> str:
    return f"""
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
mcp:
  servers:
    - name: local
      transport: stdio
      command: node
      args: ["{EVERYTHING}", "stdio"]
    - name: remote
      transport: streamable_http
      url: "{remote_url}"
"""


async def wait_known(ports: tuple[int, ...], key: str) -> None:
    """Both processes have loaded the key (they poll the database)."""
    async with httpx.AsyncClient(timeout=DEADLINE_S) as http:
        for port in ports:
            for _ in range(600):  # 30 s
                seen = await http.get(
                    f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {key}"}
                )
                if seen.status_code == 200:
                    break
                await anyio.sleep(0.05)
            assert seen.status_code == 200


async def usage_rows(url: str, key_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT * FROM usage_events WHERE key_id = $1 ORDER BY created_at", key_id
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def test_sessions_move_between_two_serve_processes(
    tmp_path: Path, postgres_url: str, redis_url: str, everything_url: str
) -> None:
    env = base_env(
        tmp_path / "data",
        "sk-master-mcp-0123456789abcdef",
        SLUICE_DATABASE_URL=postgres_url,
        SLUICE_REDIS_URL=redis_url,
    )
    path = tmp_path / "sluice.yaml"
    path.write_text(config(everything_url))
    a, port_a = serve_until_ready(tmp_path, path, env, name="gateway-a")
    try:
        b, port_b = serve_until_ready(tmp_path, path, env, name="gateway-b")
    except BaseException:
        a.kill()
        raise
    try:
        alice = create_key_cli(env, "alice")
        mallory = create_key_cli(env, "mallory")
        await wait_known((port_a, port_b), alice["key"])
        await wait_known((port_a, port_b), mallory["key"])
        switch = Switch(port_a, port_b)
        async with client_via(switch, "/mcp/local", alice["key"]) as (client, get_id):
            session_id = get_id()
            with anyio.fail_after(DEADLINE_S):
                switch.to(1)
                assert "hi" in text(await client.call_tool("echo", {"message": "hi"}))
                switch.to(0)
                assert "7" in text(await client.call_tool("get-sum", {"a": 3, "b": 4}))
                switch.to(1)
                assert {t.name for t in (await client.list_tools()).tools} >= {"echo"}
            async with httpx.AsyncClient(timeout=DEADLINE_S) as http:
                stolen = await http.post(
                    f"http://127.0.0.1:{port_b}/mcp/local",
                    content=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
                    headers={
                        **JSON_HEADERS,
                        "x-api-key": mallory["key"],
                        "Mcp-Session-Id": session_id,
                    },
                )
            assert stolen.status_code == 404
        # Deleted (the client's DELETE went to B): A refuses the id too.
        async with httpx.AsyncClient(timeout=DEADLINE_S) as http:
            gone = await http.post(
                f"http://127.0.0.1:{port_a}/mcp/local",
                content=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
                headers={**JSON_HEADERS, "x-api-key": alice["key"], "Mcp-Session-Id": session_id},
            )
        assert gone.status_code == 404
        switch.to(1)
        async with client_via(switch, "/mcp", alice["key"]) as (client, _):
            with anyio.fail_after(DEADLINE_S):
                switch.to(0)
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"local__echo", "remote__echo", "remote__get-sum"} <= names
                summed = await client.call_tool("remote__get-sum", {"a": 2, "b": 5})
                assert "7" in text(summed)
                switch.to(1)
                echoed = await client.call_tool("local__echo", {"message": "there"})
                assert "there" in text(echoed)
    finally:
        for proc in (a, b):
            proc.terminate()  # flushes the usage buffer
    rows = await usage_rows(postgres_url, alice["id"])
    sessions = [r for r in rows if r["endpoint"] == "mcp.session"]
    tools = [r for r in rows if r["endpoint"] == "mcp.tool"]
    assert len(sessions) == 2 and len(tools) == 4, rows
    assert all(r["status"] == 200 and r["model"] is None for r in sessions + tools)
    assert [r["mcp_server"] for r in sessions] == ["local", None]
    called = [(r["mcp_server"], r["mcp_tool"]) for r in tools]
    assert sorted(called) == sorted(
        [("local", "echo"), ("local", "get-sum"), ("remote", "get-sum"), ("local", "echo")]
    )
    assert all(r["bytes_in"] > 0 and r["bytes_out"] > 0 for r in tools)
    assert all(r["rpc_error"] is None for r in tools)
    assert not await usage_rows(postgres_url, mallory["id"])
