"""Roots and list-changed notifications relayed through the gateway, and the idle sweep loop
closing a session (fake clock: the loop's waits cost no real time)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import (
    ListRootsResult,
    Root,
    ServerNotification,
    TextContent,
    ToolListChangedNotification,
)
from pydantic import FileUrl

from tests.mcp.gateway_harness import (
    DEADLINE_S,
    JSON_HEADERS,
    connect,
    serve_gateway,
    stdio_server,
)


def text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def test_roots_and_list_changed_are_relayed() -> None:
    roots = [Root(uri=FileUrl("file:///srv/first"), name="first")]
    asked = 0
    asked_again = anyio.Event()
    tools_changed = anyio.Event()

    async def list_roots(_ctx: Any) -> ListRootsResult:
        nonlocal asked
        asked += 1
        if asked > 1:
            asked_again.set()
        return ListRootsResult(roots=roots)

    async def on_message(message: Any) -> None:
        if isinstance(message, ServerNotification) and isinstance(
            message.root, ToolListChangedNotification
        ):
            tools_changed.set()

    async with (
        serve_gateway((stdio_server(),)) as gw,
        connect(
            gw.base + "/mcp/local", list_roots_callback=list_roots, message_handler=on_message
        ) as client,
    ):
        with anyio.fail_after(DEADLINE_S):
            # The upstream opens here; server-everything registers its client-dependent
            # tools (roots declared: get-roots-list) and says its tool list changed.
            names = {t.name for t in (await client.list_tools()).tools}
            await tools_changed.wait()
            names |= {t.name for t in (await client.list_tools()).tools}
            assert "get-roots-list" in names
            assert "file:///srv/first" in text(await client.call_tool("get-roots-list", {}))
            # The client's roots change: the upstream hears it and asks again.
            roots = [Root(uri=FileUrl("file:///srv/second"), name="second")]
            await client.send_roots_list_changed()
            await asked_again.wait()
            listed = text(await client.call_tool("get-roots-list", {}))
            assert "file:///srv/second" in listed and "first" not in listed


async def test_sweep_loop_closes_an_idle_session() -> None:
    idle_s = 120.0
    async with serve_gateway((stdio_server(),), session_idle_s=idle_s) as gw:
        headers = {"Authorization": "Bearer sk-alice"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=DEADLINE_S) as http,
            streamable_http_client(gw.base + "/mcp/local", http_client=http) as (r, w, get_id),
            ClientSession(r, w) as client,
        ):
            with anyio.fail_after(DEADLINE_S):
                await client.initialize()
                await client.call_tool("echo", {"message": "x"})
                session_id = get_id()
                started = gw.clock.now()
                session = gw.sessions.held(session_id)
                assert session is not None
                async with anyio.create_task_group() as tg:
                    tg.start_soon(gw.sessions.sweep_forever)
                    await session.closed.wait()
                    closed_after = gw.clock.now() - started
                    tg.cancel_scope.cancel()
                assert session_id not in gw.sessions
            # Swept at the first pass after the session went idle, not before.
            assert idle_s < closed_after <= idle_s + idle_s / 2
            assert set(gw.clock.sleeps) == {idle_s / 2}  # the loop's period
            answer = await http.post(
                gw.base + "/mcp/local",
                content=b'{"jsonrpc":"2.0","id":5,"method":"tools/list"}',
                headers={**JSON_HEADERS, "Mcp-Session-Id": session_id},
            )
            assert answer.status_code == 404
