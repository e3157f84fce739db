"""A ``share: true`` stdio server: one process and one ``ClientSession`` that every gateway
session leases, started again with capped exponential back-off whenever it ends."""

from __future__ import annotations

import asyncio
import logging

import anyio
from mcp import ClientSession

from sluice.clock import Clock
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.mcp.health import HealthState
from sluice.mcp.stdio import StderrTail, StdioEnd
from sluice.mcp.tracked import TrackedSession, describe
from sluice.mcp.upstream import NO_HOOKS, Watch, open_session

log = logging.getLogger("sluice.mcp")


def backoff_s(failures: int, *, base_s: float, max_s: float) -> float:
    """The wait before start number ``failures + 1`` after that many ends in a row."""
    return float(min(max_s, base_s * 2 ** min(failures, 32)))


class SharedStdio:
    """Runs in the registry's task group (:meth:`run`); cancelling it stops the process.

    The session's hooks are the SDK defaults: a server→client request (sampling,
    elicitation, roots) is refused, since the session belongs to no one client."""

    def __init__(
        self, server: McpServerConfig, health: HealthState, *, clock: Clock, config: McpConfig
    ) -> None:
        self.server = server
        self._health = health
        self._clock = clock
        self._config = config
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self.leases = 0
        """Gateway sessions holding the shared session now."""
        self.pid: int | None = None
        """The running process's id (``None`` between starts)."""
        self._scope = anyio.CancelScope()

    def stop(self) -> None:
        """End :meth:`run` (the process is stopped). Through anyio's own cancellation: an
        asyncio ``Task.cancel`` can be taken for one of the SDK's inner cancel scopes and
        swallowed, leaving the supervisor waiting on a live process."""
        self._scope.cancel()

    async def run(self) -> None:
        with self._scope:
            await self._run()

    async def _run(self) -> None:
        failures = 0
        while True:
            started = self._clock.monotonic()
            reason = await self._serve_once()
            self._health.failed(reason)
            log.warning("mcp server %s ended: %s", self.server.name, reason)
            if self._clock.monotonic() - started >= self._config.restart_backoff_max_s:
                failures = 0  # it ran long enough: this end is not part of a crash loop
            delay = backoff_s(
                failures,
                base_s=self._config.restart_backoff_s,
                max_s=self._config.restart_backoff_max_s,
            )
            failures += 1
            await self._clock.sleep(delay)
            self._health.restarts += 1

    async def _serve_once(self) -> str:
        watch = Watch(StderrTail(self._config.stderr_tail_bytes), StdioEnd())
        try:
            async with open_session(
                self.server,
                NO_HOOKS,
                watch=watch,
                max_message_bytes=self._config.max_result_bytes,
                session_class=TrackedSession.bound(self._health),
            ) as session:
                self.pid = watch.end.pid
                self._session = session
                self._ready.set()
                self._health.ok()
                await watch.end.ended.wait()
                if isinstance(session, TrackedSession):
                    await session.drained.wait()
        except Exception as exc:
            return describe(exc, watch)
        finally:
            self._session = None
            self._ready.clear()
            self.pid = None
        return describe(None, watch)

    async def lease(self) -> ClientSession:
        """The running session, waiting up to the server's ``timeout_s`` for a (re)start."""
        try:
            async with asyncio.timeout(self.server.timeout_s):
                while self._session is None:
                    await self._ready.wait()
                    await asyncio.sleep(0)  # let a session that just ended clear itself
        except TimeoutError:
            raise GatewayError(
                ErrorKind.PROVIDER_TIMEOUT,
                f"MCP server {self.server.name!r} is not up: {self._health.last_error}",
            ) from None
        return self._session
