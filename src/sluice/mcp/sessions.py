"""The gateway's MCP client sessions: random ids bound to the principal and the endpoint that
created them, closed when idle past ``mcp.session_idle_s`` and all closed at shutdown."""

from __future__ import annotations

import logging
import secrets

import anyio
import anyio.abc

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.mcp.proxy import GatewaySession, View
from sluice.mcp.tools import ToolRunner
from sluice.mcp.upstream import Upstreams

log = logging.getLogger("sluice.mcp")

SESSION_ID_BYTES = 24
"""192 random bits per session id (``secrets.token_urlsafe``)."""


class Sessions:
    """Every open client session. :meth:`run` owns their tasks: start it in the lifespan's
    task group before serving; when it ends (cancelled at shutdown) every session is closed."""

    def __init__(
        self, runner: ToolRunner, upstreams: Upstreams, *, clock: Clock, idle_s: float
    ) -> None:
        self._runner = runner
        self._upstreams = upstreams
        self._clock = clock
        self._idle_s = idle_s
        self._by_id: dict[str, GatewaySession] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._ready = anyio.Event()

    def __len__(self) -> int:
        return len(self._by_id)

    async def run(self) -> None:
        """Hold the sessions' task group until cancelled, then close every session."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self._ready.set()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._by_id.clear()

    async def sweep_forever(self) -> None:
        """Close idle sessions every so often (a lookup also refuses an idle one)."""
        while True:
            await self._clock.sleep(min(self._idle_s, 60.0))
            await self.sweep()

    async def sweep(self) -> int:
        """Close every idle session; how many were closed."""
        idle = [s for s in self._by_id.values() if self._idle(s)]
        for session in idle:
            await self.close(session.id)
        return len(idle)

    async def create(self, principal: Principal, view: View) -> GatewaySession:
        """A new session, serving once this returns."""
        with anyio.fail_after(5.0):
            await self._ready.wait()
        assert self._tg is not None
        session = GatewaySession(
            secrets.token_urlsafe(SESSION_ID_BYTES),
            principal,
            view,
            runner=self._runner,
            upstreams=self._upstreams,
            now=self._clock.now(),
        )
        self._by_id[session.id] = session
        self._tg.start_soon(self._own, session)
        await session.started.wait()
        return session

    async def _own(self, session: GatewaySession) -> None:
        try:
            await session.run()
        finally:
            if self._by_id.get(session.id) is session:
                del self._by_id[session.id]

    async def get(self, session_id: str, principal: Principal, view: View) -> GatewaySession | None:
        """The session when it exists, is not idle, and belongs to this principal and this
        endpoint; ``None`` otherwise (the caller cannot tell which)."""
        session = self._by_id.get(session_id)
        if session is None or session.closed.is_set():
            return None
        if session.principal.key_id != principal.key_id or session.view.key != view.key:
            return None
        if self._idle(session):
            await self.close(session_id)
            return None
        session.last_used = self._clock.now()
        return session

    def _idle(self, session: GatewaySession) -> bool:
        return session.busy == 0 and self._clock.now() - session.last_used > self._idle_s

    async def close(self, session_id: str) -> None:
        session = self._by_id.pop(session_id, None)
        if session is not None:
            await session.close()

    async def close_all(self) -> None:
        for session_id in list(self._by_id):
            await self.close(session_id)
