"""Connections to upstream MCP servers: one SDK ``ClientSession`` over Streamable HTTP, the
older HTTP+SSE transport, or a stdio process (``sluice.mcp.stdio``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.message import SessionMessage

from sluice.config.mcp import McpServerConfig
from sluice.mcp.stdio import StderrTail, StdioEnd, StdioSpec, stdio_transport
from sluice.mcp.urls import check_connect

DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Hooks:
    """What an upstream may ask of the client behind one gateway session: the SDK
    ``ClientSession`` callbacks (``None``: the SDK's default answer, which refuses sampling,
    elicitation and roots)."""

    sampling: Any = None
    elicitation: Any = None
    list_roots: Any = None
    logging: Any = None
    message_handler: Any = None


NO_HOOKS = Hooks()


@dataclass(slots=True)
class Watch:
    """What one connection reports back: the stdio process's stderr tail and how it ended."""

    tail: StderrTail
    end: StdioEnd


def _resolved(refs: dict[str, Any]) -> dict[str, str]:
    return {k: v.resolve() or "" for k, v in refs.items()}


Streams = tuple[
    MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]
]


@contextlib.asynccontextmanager
async def transport(
    server: McpServerConfig, *, watch: Watch, max_message_bytes: int
) -> AsyncIterator[Streams]:
    """The (read, write) streams to ``server``; a URL is checked again (resolved addresses)
    before connecting (``RefusedUrl``)."""
    if server.transport == "stdio":
        assert server.command is not None
        spec = StdioSpec(
            command=server.command,
            args=server.args,
            env=_resolved(server.env),
            cwd=server.cwd,
            max_message_bytes=max_message_bytes,
            name=server.name,
        )
        async with stdio_transport(spec, tail=watch.tail, end=watch.end) as streams:
            yield streams
        return
    assert server.url is not None
    await check_connect(server.url, allow_private=server.allow_private, timeout_s=server.timeout_s)
    headers = _resolved(server.headers)
    if server.transport == "sse":
        async with sse_client(server.url, headers=headers, timeout=server.timeout_s) as streams:
            yield streams
        return
    timeout = httpx.Timeout(server.timeout_s, read=max(server.timeout_s, 300.0))
    async with (
        create_mcp_http_client(headers=headers, timeout=timeout) as client,
        streamable_http_client(server.url, http_client=client) as (read, write, _),
    ):
        yield read, write


@contextlib.asynccontextmanager
async def open_session(
    server: McpServerConfig,
    hooks: Hooks = NO_HOOKS,
    *,
    watch: Watch | None = None,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    session_class: type[ClientSession] = ClientSession,
) -> AsyncIterator[ClientSession]:
    """An initialised client session to ``server``, closed on exit (a stdio process is
    stopped). Every request has the server's ``timeout_s`` as its deadline."""
    watch = watch or Watch(StderrTail(8192), StdioEnd())
    async with (
        transport(server, watch=watch, max_message_bytes=max_message_bytes) as (read, write),
        session_class(
            read,
            write,
            read_timeout_seconds=timedelta(seconds=server.timeout_s),
            sampling_callback=hooks.sampling,
            elicitation_callback=hooks.elicitation,
            list_roots_callback=hooks.list_roots,
            logging_callback=hooks.logging,
            message_handler=hooks.message_handler,
        ) as session,
    ):
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
        Raises ``GatewayError`` (404) for an unknown server."""
        ...
