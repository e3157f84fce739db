"""Connections to upstream MCP servers: one SDK ``ClientSession`` over Streamable HTTP, the
older HTTP+SSE transport, or a stdio process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from sluice.config.mcp import McpServerConfig


@dataclass(frozen=True, slots=True)
class Hooks:
    """What an upstream may ask of the client behind one gateway session: the SDK
    ``ClientSession`` callbacks (``None``: the SDK's default answer)."""

    sampling: Any = None
    elicitation: Any = None
    list_roots: Any = None
    logging: Any = None
    message_handler: Any = None


NO_HOOKS = Hooks()


@contextlib.asynccontextmanager
async def open_session(
    server: McpServerConfig, hooks: Hooks = NO_HOOKS
) -> AsyncIterator[ClientSession]:
    """An initialised client session to ``server``, closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        if server.transport == "stdio":
            assert server.command is not None
            params = StdioServerParameters(
                command=server.command,
                args=list(server.args),
                env={k: v.resolve() or "" for k, v in server.env.items()} or None,
                cwd=server.cwd,
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        else:
            assert server.url is not None
            headers = {k: v.resolve() or "" for k, v in server.headers.items()}
            if server.transport == "sse":
                read, write = await stack.enter_async_context(
                    sse_client(server.url, headers=headers, timeout=server.timeout_s)
                )
            else:
                client = await stack.enter_async_context(
                    create_mcp_http_client(
                        headers=headers,
                        timeout=httpx.Timeout(server.timeout_s, read=max(server.timeout_s, 300.0)),
                    )
                )
                read, write, _ = await stack.enter_async_context(
                    streamable_http_client(server.url, http_client=client)
                )
        session = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                read_timeout_seconds=timedelta(seconds=server.timeout_s),
                sampling_callback=hooks.sampling,
                elicitation_callback=hooks.elicitation,
                list_roots_callback=hooks.list_roots,
                logging_callback=hooks.logging,
                message_handler=hooks.message_handler,
            )
        )
        await session.initialize()
        yield session


class Upstreams(Protocol):
    """Where the gateway finds its upstream MCP servers (implemented by the server registry)."""

    def servers(self) -> Mapping[str, McpServerConfig]:
        """Every server by name, as configured now."""
        ...

    def open(self, name: str, hooks: Hooks) -> AbstractAsyncContextManager[ClientSession]:
        """An initialised session to server ``name`` whose server->client requests and
        notifications go to ``hooks``; closed on exit (entered and exited in one task).
        Raises ``KeyError`` for an unknown server."""
        ...


class ConfigUpstreams:
    """:class:`Upstreams` over the config's servers: one fresh upstream session per open."""

    def __init__(self, servers: tuple[McpServerConfig, ...]) -> None:
        self._servers = {s.name: s for s in servers}

    def servers(self) -> Mapping[str, McpServerConfig]:
        return self._servers

    def open(self, name: str, hooks: Hooks) -> AbstractAsyncContextManager[ClientSession]:
        return open_session(self._servers[name], hooks)
