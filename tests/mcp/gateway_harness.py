"""The MCP gateway's endpoints served by uvicorn in-process over loopback, in front of real
``server-everything`` upstreams, for the SDK's client to talk to."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from sluice.api.mcp import McpRoutes
from sluice.api.render import Scope
from sluice.auth.cache import token_from_headers
from sluice.auth.principal import McpAccess, Principal
from sluice.clock import FakeClock
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.mcp.records import SessionStore
from sluice.mcp.registry import Registry
from sluice.mcp.sessions import Sessions
from sluice.mcp.tools import ToolRunner
from sluice.usage.event import UsageEvent

EVERYTHING = (
    Path(__file__).parents[1]
    / "clients/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)
DEADLINE_S = 30.0
"""Upper bound of any wait in these tests (a hang fails instead of blocking CI)."""

ALICE = Principal(key_id="k_alice", name="alice", user_id="u1", team_id="t1", org_id="o1")
BOB = Principal(key_id="k_bob", name="bob", user_id="u2", team_id="t2", org_id="o1")
NARROW = Principal(
    key_id="k_narrow",
    name="narrow",
    mcp=McpAccess(servers=frozenset({"local"}), tools_deny=("local/get-env",)),
)
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
INIT = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
)
KEYS = {"sk-alice": ALICE, "sk-bob": BOB, "sk-narrow": NARROW}


def stdio_server(name: str = "local", **extra: Any) -> McpServerConfig:
    return McpServerConfig(
        name=name, transport="stdio", command="node", args=(str(EVERYTHING), "stdio"), **extra
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def everything_http() -> Any:
    """server-everything over Streamable HTTP as a process; yields its ``/mcp`` URL."""
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    proc = subprocess.Popen(
        ["node", str(EVERYTHING), "streamableHttp"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        for raw in proc.stderr:  # wait for its "listening" line (bounded by the process)
            if b"listening" in raw.lower():
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def authenticate(scope: Scope) -> Principal:
    headers = dict(scope["headers"])
    token = token_from_headers(headers.get(b"authorization"), headers.get(b"x-api-key"))
    if token is None:
        raise GatewayError(ErrorKind.CALLER_UNAUTHENTICATED, "missing API key")
    principal = KEYS.get(token)
    if principal is None:
        raise GatewayError(ErrorKind.CALLER_UNAUTHENTICATED, "invalid API key")
    return principal


@dataclass
class Gateway:
    base: str
    clock: FakeClock
    sessions: Sessions
    records: list[UsageEvent] = field(default_factory=list)

    def rows(self, endpoint: str) -> list[UsageEvent]:
        return [r for r in self.records if r.endpoint == endpoint]


@contextlib.asynccontextmanager
async def serve_gateway(
    servers: tuple[McpServerConfig, ...],
    *,
    store: SessionStore | None = None,
    clock: FakeClock | None = None,
    **config: Any,
) -> AsyncIterator[Gateway]:
    """``store``/``clock``: shared by several gateways standing for replicas."""
    cfg = McpConfig(servers=servers, **config)
    clock = clock or FakeClock()
    records: list[UsageEvent] = []
    async with Registry(cfg, clock=clock) as upstreams:
        runner = ToolRunner(
            upstreams, records.append, clock=clock, max_result_bytes=cfg.max_result_bytes
        )
        sessions = Sessions(runner, upstreams, clock=clock, idle_s=cfg.session_idle_s, store=store)
        routes = McpRoutes(
            authenticate,
            sessions,
            runner,
            records.append,
            config=cfg,
            clock=clock,
            max_body_bytes=1 << 20,
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # connections queue until uvicorn accepts: no wait for its start
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(routes, lifespan="off", log_level="warning"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(sessions.run)
            tg.start_soon(server.serve, [sock])
            gateway = Gateway(f"http://127.0.0.1:{port}", clock, sessions, records)
            try:
                yield gateway
            finally:
                await sessions.close_all()
                server.should_exit = True
                server.force_exit = True
                tg.cancel_scope.cancel()
        sock.close()  # uvicorn closes it too; closing twice is harmless


@contextlib.asynccontextmanager
async def connect(
    url: str, key: str = "sk-alice", headers: Mapping[str, str] | None = None, **callbacks: Any
) -> AsyncIterator[ClientSession]:
    """An initialised SDK client session to ``url`` with ``key``."""
    client = create_mcp_http_client(
        headers={"Authorization": f"Bearer {key}", **(headers or {})},
        timeout=httpx.Timeout(DEADLINE_S),
    )
    async with (
        client,
        streamable_http_client(url, http_client=client) as (read, write, _),
        ClientSession(read, write, **callbacks) as session,
    ):
        with anyio.fail_after(DEADLINE_S):
            await session.initialize()
        yield session
