"""The upstream MCP servers of this process: the config's plus those admins store, how to
reach each, and how each is doing.

``share: true`` stdio servers run under a :class:`~sluice.mcp.supervisor.SharedStdio`
supervisor (one process and one ``ClientSession`` for every gateway session, restarted with
back-off); every other server gets a connection (and a stdio process) per :meth:`Registry.open`.

The MCP SDK is imported when a server is first started or reached, not with this module: a
gateway with no MCP server never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from sluice.clock import Clock
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.config.mcp_urls import RefusedUrl
from sluice.errors import ErrorKind, GatewayError
from sluice.mcp.health import HealthState, ServerHealth
from sluice.tasks import spawn_in

if TYPE_CHECKING:
    from mcp import ClientSession

    from sluice.mcp.stdio import StdioEnd
    from sluice.mcp.supervisor import SharedStdio
    from sluice.mcp.upstream import Hooks

log = logging.getLogger("sluice.mcp")

__all__ = ["Registry", "ServerHealth"]


class Registry:
    """Open it (``async with``) in the lifespan; closing it stops every process it started.

    Stored servers come from :meth:`set_stored` (the control plane's reload); a stored server
    never replaces a config server of the same name (the admin API refuses such a name).
    """

    def __init__(self, config: McpConfig, *, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._static = {s.name: s for s in config.servers}
        self._stored: dict[str, McpServerConfig] = {}
        self._health: dict[str, HealthState] = {}
        self._shared: dict[str, tuple[SharedStdio, asyncio.Task[None]]] = {}
        self._own: dict[StdioEnd, McpServerConfig] = {}
        """The per-session stdio processes running, with the server each was started for."""
        self._group: asyncio.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> Registry:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._sync()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # the contract ---------------------------------------------------------------------
    def servers(self) -> Mapping[str, McpServerConfig]:
        """Every server by name: the config's and the stored ones."""
        return {**self._stored, **self._static}

    def open(
        self, name: str, hooks: Hooks | None = None
    ) -> AbstractAsyncContextManager[ClientSession]:
        """An initialised upstream session for one gateway session, closed (its own stdio
        process stopped) when the block ends. For a ``share: true`` stdio server: a lease on
        the one shared session, whose hooks are the registry's (server→client requests are
        refused there), ``hooks`` unused (``None``: none). ``GatewayError``: unknown server
        (404), refused URL or unreachable (502), not up within ``timeout_s`` (504)."""
        server = self.servers().get(name)
        if server is None or self._closed:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no MCP server named {name!r}")
        shared = self._shared.get(name)
        if shared is not None:
            return self._lease(shared[0])
        return self._connect(server, hooks)

    def health(self) -> Mapping[str, ServerHealth]:
        """Up, last error and restarts of every server (a server never connected yet is
        down without an error)."""
        return {name: self._state(name).view() for name in self.servers()}

    # stored servers -------------------------------------------------------------------
    async def set_stored(self, servers: Iterable[McpServerConfig]) -> None:
        """Replace the stored servers. A removed or changed server's processes are stopped:
        a shared stdio server is restarted with its new spec; a per-session process is
        killed, so its gateway session gets a closed connection (and a new session the
        server as it is now, or 404)."""
        fresh = {s.name: s for s in servers if s.name not in self._static}
        if fresh == self._stored:
            return
        self._stored = fresh
        await self._stop_stale()
        self._sync()

    async def aclose(self) -> None:
        """Stop every supervisor and kill every process still running (none outlives
        this)."""
        if self._closed:
            return
        self._closed = True
        for end in list(self._own):
            _kill(end)
        for supervisor, _ in self._shared.values():
            supervisor.stop()
        self._shared.clear()
        if self._group is not None:
            group, self._group = self._group, None
            await group.__aexit__(None, None, None)

    # internals ------------------------------------------------------------------------
    def _state(self, name: str) -> HealthState:
        state = self._health.get(name)
        if state is None:
            state = self._health[name] = HealthState()
        return state

    def _sync(self) -> None:
        """Start a supervisor for every shared stdio server that has none."""
        if self._group is None or self._closed:
            return
        for name, server in self.servers().items():
            if server.transport == "stdio" and server.share and name not in self._shared:
                from sluice.mcp.supervisor import SharedStdio

                supervisor = SharedStdio(
                    server, self._state(name), clock=self._clock, config=self._config
                )
                task = spawn_in(self._group, supervisor.run(), name=f"mcp-{name}")
                self._shared[name] = (supervisor, task)

    async def _stop_stale(self) -> None:
        current = self.servers()
        for name, (supervisor, task) in list(self._shared.items()):
            if current.get(name) != supervisor.server:
                del self._shared[name]
                supervisor.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for end, server in list(self._own.items()):
            if current.get(server.name) != server:
                _kill(end)
        for name in list(self._health):
            if name not in current:
                del self._health[name]

    @contextlib.asynccontextmanager
    async def _lease(self, supervisor: SharedStdio) -> AsyncIterator[ClientSession]:
        session = await supervisor.lease()
        supervisor.leases += 1
        try:
            yield session
        finally:
            supervisor.leases -= 1

    @contextlib.asynccontextmanager
    async def _connect(
        self, server: McpServerConfig, hooks: Hooks | None
    ) -> AsyncIterator[ClientSession]:
        from sluice.mcp.stdio import StderrTail, StdioEnd
        from sluice.mcp.tracked import TrackedSession, describe
        from sluice.mcp.upstream import NO_HOOKS, Watch, open_session

        state = self._state(server.name)
        watch = Watch(StderrTail(self._config.stderr_tail_bytes), StdioEnd())
        self._own[watch.end] = server
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    session = await stack.enter_async_context(
                        open_session(
                            server,
                            NO_HOOKS if hooks is None else hooks,
                            watch=watch,
                            max_message_bytes=self._config.max_result_bytes,
                            session_class=TrackedSession.bound(state),
                        )
                    )
                except Exception as exc:
                    reason = describe(exc, watch)
                    state.failed(reason)
                    kind = (
                        ErrorKind.PROVIDER_TIMEOUT
                        if isinstance(exc, TimeoutError)
                        else ErrorKind.PROVIDER_UNREACHABLE
                    )
                    if isinstance(exc, RefusedUrl):
                        log.warning("mcp server %s: refused url: %s", server.name, exc)
                    raise GatewayError(kind, f"MCP server {server.name!r}: {reason}") from exc
                state.ok()
                yield session
        finally:
            self._own.pop(watch.end, None)
            if watch.end.reason is not None and not watch.end.reason.startswith("stopped"):
                state.failed(describe(None, watch))


def _kill(end: StdioEnd) -> None:
    if end.pid is not None and not end.ended.is_set():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(end.pid, signal.SIGKILL)
