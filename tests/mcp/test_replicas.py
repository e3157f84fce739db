"""Two gateways sharing one session store stand for two replicas: a session started on one
keeps working on the other, for its key and endpoint only, until it is deleted. The same
tests run over the in-process store and over Redis."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CreateMessageRequestParams, CreateMessageResult, TextContent

from sluice.clock import FakeClock
from sluice.mcp.errors import NOT_FOUND
from sluice.mcp.records import MemorySessionStore, RedisSessionStore, SessionStore
from tests.mcp.gateway_harness import DEADLINE_S, JSON_HEADERS, serve_gateway, stdio_server

IDLE_S = 600.0


class Switch(httpx.AsyncBaseTransport):
    """Sends each request to the gateway chosen last (``to``), as a load balancer might."""

    def __init__(self, *bases: str) -> None:
        self._ports = [httpx.URL(b).port for b in bases]
        self._target = 0
        self._inner = httpx.AsyncHTTPTransport()

    def to(self, index: int) -> None:
        self._target = index

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(port=self._ports[self._target])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SessionStore, FakeClock]]:
    clock = FakeClock()
    if request.param == "memory":
        yield MemorySessionStore(ttl_s=IDLE_S, clock=clock), clock
        return
    from redis.asyncio import Redis

    redis = Redis.from_url(request.getfixturevalue("redis_url"))
    prefix = f"sluice:test:mcp:{uuid.uuid4().hex}:"
    try:
        yield RedisSessionStore(redis, ttl_s=IDLE_S, prefix=prefix), clock
    finally:
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@contextlib.asynccontextmanager
async def client_via(
    switch: Switch, key: str = "sk-alice", **callbacks: Any
) -> AsyncIterator[tuple[ClientSession, Any]]:
    http = httpx.AsyncClient(
        transport=switch,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(DEADLINE_S),
    )
    async with (
        http,
        streamable_http_client("http://127.0.0.1:1/mcp/local", http_client=http) as (r, w, sid),
        ClientSession(r, w, **callbacks) as session,
    ):
        with anyio.fail_after(DEADLINE_S):
            await session.initialize()
        yield session, sid


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def post(base: str, path: str, key: str, session_id: str) -> httpx.Response:
    body = b'{"jsonrpc":"2.0","id":9,"method":"tools/list"}'
    headers = {**JSON_HEADERS, "Authorization": f"Bearer {key}", "Mcp-Session-Id": session_id}
    async with httpx.AsyncClient(timeout=DEADLINE_S) as http:
        return await http.post(base + path, content=body, headers=headers)


async def sampling(_ctx: Any, _params: CreateMessageRequestParams) -> CreateMessageResult:
    return CreateMessageResult(
        role="assistant", content=TextContent(type="text", text="sampled!"), model="m"
    )


async def test_session_moves_between_replicas(store: tuple[SessionStore, FakeClock]) -> None:
    shared, clock = store
    servers = (stdio_server(),)
    async with (
        serve_gateway(servers, store=shared, clock=clock, session_idle_s=IDLE_S) as a,
        serve_gateway(servers, store=shared, clock=clock, session_idle_s=IDLE_S) as b,
    ):
        switch = Switch(a.base, b.base)
        async with client_via(switch, sampling_callback=sampling) as (client, get_id):
            session_id = get_id()
            assert session_id in a.sessions and session_id not in b.sessions
            with anyio.fail_after(DEADLINE_S):
                switch.to(1)
                assert "hi" in text(await client.call_tool("echo", {"message": "hi"}))
                assert session_id in b.sessions
                # The client's capabilities came with the record: B's upstream was told the
                # client samples, and B relays the server's sampling request to it.
                sampled = await client.call_tool("trigger-sampling-request", {"prompt": "x"})
                assert "sampled!" in text(sampled)
                switch.to(0)
                assert "7" in text(await client.call_tool("get-sum", {"a": 3, "b": 4}))
                # A's copy sat idle while B served the session: not idle for the record.
                clock.advance(IDLE_S - 10)
                switch.to(1)
                await client.send_ping()
                clock.advance(20)
                switch.to(0)
                assert "5" in text(await client.call_tool("get-sum", {"a": 2, "b": 3}))
            # Another key, or the same key on another endpoint, finds nothing on B either.
            stolen = await post(b.base, "/mcp/local", "sk-bob", session_id)
            assert stolen.status_code == 404
            assert stolen.json()["error"]["code"] == NOT_FOUND
            assert (await post(b.base, "/mcp", "sk-alice", session_id)).status_code == 404
            switch.to(1)  # the client's DELETE at exit goes to B
        assert len(a.rows("mcp.session")) == 1 and not b.rows("mcp.session")
        assert len(a.rows("mcp.tool")) == 2 and len(b.rows("mcp.tool")) == 2
        assert session_id not in b.sessions
        # Deleted on B: A's copy goes at its next sweep, and the id is unknown everywhere.
        assert session_id in a.sessions
        assert await a.sessions.sweep() == 1
        assert session_id not in a.sessions
        for gw in (a, b):
            assert (await post(gw.base, "/mcp/local", "sk-alice", session_id)).status_code == 404


async def test_deleted_elsewhere_is_refused_at_next_use(
    store: tuple[SessionStore, FakeClock],
) -> None:
    shared, clock = store
    servers = (stdio_server(),)
    async with (
        serve_gateway(servers, store=shared, clock=clock) as a,
        serve_gateway(servers, store=shared, clock=clock) as b,
    ):
        switch = Switch(a.base, b.base)
        async with client_via(switch) as (client, get_id):
            session_id = get_id()
            with anyio.fail_after(DEADLINE_S):
                await client.send_ping()
                await shared.forget(session_id)  # as a DELETE on a third replica does
                refused = await post(a.base, "/mcp/local", "sk-alice", session_id)
                assert refused.status_code == 404
                assert session_id not in a.sessions
                assert (await post(b.base, "/mcp/local", "sk-alice", session_id)).status_code == 404


async def test_without_a_store_another_replica_does_not_know_the_session() -> None:
    servers = (stdio_server(),)
    async with (
        serve_gateway(servers) as a,
        serve_gateway(servers) as b,
        client_via(Switch(a.base, b.base)) as (_client, get_id),
    ):
        session_id = get_id()
        answer = await post(b.base, "/mcp/local", "sk-alice", session_id)
        assert answer.status_code == 404  # the client re-initialises, as the spec says
        assert answer.json()["error"]["code"] == NOT_FOUND
        assert (await post(a.base, "/mcp/local", "sk-alice", session_id)).status_code == 200
