"""Tool listing and calling with the gateway's rules: access lists, the server's tool filter,
a rate-limit hook, the upstream deadline and result cap, and one usage row per call.

One :class:`ToolRunner` is built per process and used by the ``/mcp`` endpoints and by
``/v1/responses`` ``mcp`` tools.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import anyio
import jsonschema  # type: ignore[import-untyped]
import orjson
from mcp import ClientSession
from mcp.shared.exceptions import McpError
from mcp.shared.session import ProgressFnT
from mcp.types import (
    CONNECTION_CLOSED,
    INVALID_PARAMS,
    CallToolRequest,
    CallToolRequestParams,
    CallToolResult,
    CancelledNotification,
    CancelledNotificationParams,
    ClientNotification,
    ClientRequest,
    ListToolsRequest,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
)
from pydantic import BaseModel

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.mcp import McpServerConfig, ToolFilter
from sluice.errors import GatewayError
from sluice.ids import random_hex
from sluice.mcp.errors import (
    NOT_FOUND,
    RATE_LIMITED,
    RESULT_TOO_LARGE,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    rpc_error,
    status_of,
)
from sluice.mcp.rows import mcp_row
from sluice.mcp.upstream import NO_HOOKS, Upstreams
from sluice.usage.event import UsageEvent

ResultT = TypeVar("ResultT", bound=BaseModel)

Admit = Callable[[Principal], Awaitable[None]]
"""The rate-limit hook: returns to admit a tool call, raises the gateway's rate-limit
``GatewayError`` to refuse it."""


async def admit_all(principal: Principal) -> None:
    """The default :data:`Admit`: no tool-call limit."""


def offered(tools: ToolFilter, name: str) -> bool:
    """Whether the server's config filter offers tool ``name``."""
    if tools.allow is not None and not any(fnmatch.fnmatchcase(name, p) for p in tools.allow):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in tools.deny)


def may_call(principal: Principal, server: McpServerConfig, tool: str) -> bool:
    return offered(server.tools, tool) and principal.mcp.may_use_tool(server.name, tool)


async def request(
    session: ClientSession,
    req: ClientRequest,
    result_type: type[ResultT],
    *,
    server: McpServerConfig,
    max_bytes: int,
    progress: ProgressFnT | None = None,
) -> tuple[ResultT, int]:
    """Send ``req`` upstream and return the result and its size in bytes.

    The server's ``timeout_s`` bounds the wait; a cancelled or timed-out request is cancelled
    upstream (``notifications/cancelled``). Upstream failures become JSON-RPC errors
    (``McpError``) with the gateway's codes; an upstream's own JSON-RPC error is passed on."""
    # The id send_request is about to use (read before it runs; nothing awaits in between),
    # to name the request in a cancellation.
    upstream_id = session._request_id
    try:
        result = await session.send_request(
            req,
            result_type,
            request_read_timeout_seconds=timedelta(seconds=server.timeout_s),
            progress_callback=progress,
        )
    except anyio.get_cancelled_exc_class():
        await _cancel_upstream(session, upstream_id, "cancelled by the client")
        raise
    except McpError as exc:
        if exc.error.code == 408:  # the SDK's read timeout
            await _cancel_upstream(session, upstream_id, "deadline exceeded")
            raise rpc_error(
                UPSTREAM_TIMEOUT,
                f"mcp server {server.name!r} did not answer within {server.timeout_s:g} s",
            ) from exc
        if exc.error.code == CONNECTION_CLOSED:
            raise rpc_error(
                UPSTREAM_UNAVAILABLE, f"mcp server {server.name!r} closed the connection"
            ) from exc
        raise
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise rpc_error(UPSTREAM_UNAVAILABLE, f"mcp server {server.name!r} is unavailable") from exc
    size = len(result.model_dump_json(by_alias=True, exclude_none=True))
    if size > max_bytes:
        raise rpc_error(
            RESULT_TOO_LARGE,
            f"the answer of mcp server {server.name!r} is {size} bytes, over the gateway's "
            f"limit of {max_bytes} (mcp.max_result_bytes)",
        )
    return result, size


async def _cancel_upstream(session: ClientSession, request_id: int, reason: str) -> None:
    note = CancelledNotification(
        params=CancelledNotificationParams(requestId=request_id, reason=reason)
    )
    with anyio.CancelScope(shield=True), anyio.move_on_after(1.0), contextlib.suppress(Exception):
        await session.send_notification(ClientNotification(note))


async def list_all_tools(
    session: ClientSession, server: McpServerConfig, *, max_bytes: int
) -> list[Tool]:
    """Every tool of ``server`` (all pages)."""
    tools: list[Tool] = []
    cursor: str | None = None
    while True:
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page, _ = await request(
            session,
            ClientRequest(ListToolsRequest(params=params)),
            ListToolsResult,
            server=server,
            max_bytes=max_bytes,
        )
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            return tools


def check_arguments(tool: Tool, arguments: dict[str, Any]) -> None:
    """Raise a JSON-RPC ``INVALID_PARAMS`` error naming the field when ``arguments`` do not
    fit the tool's input schema."""
    try:
        jsonschema.validate(arguments, tool.inputSchema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise rpc_error(
            INVALID_PARAMS, f"arguments.{where}: {exc.message} (tool {tool.name!r})"
        ) from None
    except jsonschema.SchemaError:
        return  # the upstream's schema is broken: let the upstream judge the arguments


class ToolRunner:
    """Lists and calls tools for a principal, with access checks, the rate-limit hook and
    one ``mcp.tool`` usage row per call."""

    def __init__(
        self,
        upstreams: Upstreams,
        record: Callable[[UsageEvent], None],
        *,
        clock: Clock,
        max_result_bytes: int,
        admit: Admit = admit_all,
    ) -> None:
        """``admit``: the tool-call rate limit (``sluice.mcp.quota.admit_call`` bound to the
        limiter once it exists; allows everything by default)."""
        self._upstreams = upstreams
        self._record = record
        self._clock = clock
        self._max = max_result_bytes
        self._admit = admit

    def servers(self) -> Mapping[str, McpServerConfig]:
        """Every configured server by name (access not applied)."""
        return self._upstreams.servers()

    @property
    def max_result_bytes(self) -> int:
        return self._max

    def server(self, principal: Principal, name: str) -> McpServerConfig | None:
        """The server's config when ``principal`` may use it, else ``None`` (unknown and
        excluded look the same)."""
        config = self._upstreams.servers().get(name)
        if config is None or not principal.mcp.may_use_server(name):
            return None
        return config

    def _known(self, principal: Principal, name: str) -> McpServerConfig:
        config = self.server(principal, name)
        if config is None:
            raise rpc_error(NOT_FOUND, f"unknown mcp server {name!r}")
        return config

    def _config(
        self,
        principal: Principal,
        server: str,
        external: McpServerConfig | None,
        session: ClientSession | None,
    ) -> McpServerConfig:
        if external is None:
            return self._known(principal, server)
        if not principal.mcp.may_use_server(server):
            raise rpc_error(NOT_FOUND, f"unknown mcp server {server!r}")
        if session is None:  # the registry cannot open it
            raise rpc_error(UPSTREAM_UNAVAILABLE, f"mcp server {server!r} is not connected")
        return external

    async def list_tools(
        self,
        principal: Principal,
        server: str,
        *,
        session: ClientSession | None = None,
        external: McpServerConfig | None = None,
    ) -> list[Tool]:
        """The tools of ``server`` that ``principal`` may call. ``session``: an open upstream
        session to use (else one is opened for the listing). ``external``: the server is
        not the registry's but this one (``sluice.mcp.external``; ``session`` is then its
        open session)."""
        config = self._config(principal, server, external, session)
        async with self._session(config, session) as upstream:
            tools = await list_all_tools(upstream, config, max_bytes=self._max)
        return [t for t in tools if may_call(principal, config, t.name)]

    async def call_tool(
        self,
        principal: Principal,
        server: str,
        tool: str,
        arguments: dict[str, Any] | None,
        *,
        session: ClientSession | None = None,
        progress: ProgressFnT | None = None,
        schema: Tool | None = None,
        request_id: str | None = None,
        external: McpServerConfig | None = None,
    ) -> CallToolResult:
        """Call ``tool`` on ``server`` for ``principal`` and write one usage row.

        ``session``: the open upstream session to call on (else one is opened for the call);
        ``progress``: receives the upstream's progress notifications; ``schema``: the tool as
        listed, to check ``arguments`` against (else the server is asked for it);
        ``external``: as for :meth:`list_tools`. Raises
        ``McpError`` (a JSON-RPC error) when refused or failed."""
        mono = self._clock.monotonic()
        args = arguments or {}
        event = mcp_row(
            principal,
            "mcp.tool",
            request_id=request_id or "mcp_" + random_hex(10),
            created_at=self._clock.now(),
            server=server,
            tool=tool,
            bytes_in=len(orjson.dumps({"name": tool, "arguments": args})),
        )
        try:
            result, size = await self._call(
                principal,
                self._config(principal, server, external, session),
                tool,
                args,
                session=session,
                progress=progress,
                schema=schema,
            )
            event.bytes_out = size
            return result
        except McpError as exc:
            event.rpc_error = exc.error.code
            event.status = status_of(exc.error.code)
            event.error_message = exc.error.message
            raise
        except GatewayError as exc:  # the rate-limit hook's refusal
            event.rpc_error = RATE_LIMITED if exc.status == 429 else NOT_FOUND
            event.status = exc.status
            event.error_kind = exc.kind.value
            event.error_message = exc.message
            raise rpc_error(event.rpc_error, exc.message) from exc
        except anyio.get_cancelled_exc_class():
            event.status = 499
            event.error_message = "cancelled by the client"
            raise
        finally:
            event.latency_ms = (self._clock.monotonic() - mono) * 1000.0
            self._record(event)

    async def _call(
        self,
        principal: Principal,
        config: McpServerConfig,
        tool: str,
        args: dict[str, Any],
        *,
        session: ClientSession | None,
        progress: ProgressFnT | None,
        schema: Tool | None,
    ) -> tuple[CallToolResult, int]:
        if not may_call(principal, config, tool):
            raise rpc_error(INVALID_PARAMS, f"unknown tool {tool!r}")
        await self._admit(principal)
        async with self._session(config, session) as upstream:
            if schema is None:
                listed = await list_all_tools(upstream, config, max_bytes=self._max)
                schema = next((t for t in listed if t.name == tool), None)
            if schema is None:
                raise rpc_error(INVALID_PARAMS, f"unknown tool {tool!r}")
            check_arguments(schema, args)
            req = ClientRequest(
                CallToolRequest(params=CallToolRequestParams(name=tool, arguments=args))
            )
            return await request(
                upstream,
                req,
                CallToolResult,
                server=config,
                max_bytes=self._max,
                progress=progress,
            )

    @contextlib.asynccontextmanager
    async def _session(
        self, config: McpServerConfig, session: ClientSession | None
    ) -> AsyncIterator[ClientSession]:
        if session is not None:
            yield session
            return
        async with contextlib.AsyncExitStack() as stack:
            try:
                # The SDK bounds the opening: the connect and ``initialize`` wait at most the
                # server's ``timeout_s``.
                upstream = await stack.enter_async_context(
                    self._upstreams.open(config.name, NO_HOOKS)
                )
            except Exception as exc:
                raise rpc_error(
                    UPSTREAM_UNAVAILABLE, f"mcp server {config.name!r} is unavailable"
                ) from exc
            yield upstream
