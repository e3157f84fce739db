"""The gateway's MCP client sessions: random ids bound to the principal and the endpoint that
created them, closed when idle past ``mcp.session_idle_s`` and all closed at shutdown.

With a :class:`~sluice.mcp.records.SessionStore` (Redis, several replicas), each session also
has a record there: a replica that gets a request for a session it does not hold rebuilds it
from the record, a deleted session's record is gone for every replica, and a replica closing
its copy (idle, shutdown) leaves the record to the others."""

from __future__ import annotations

import logging
import secrets

import anyio
import anyio.abc
from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
from mcp.types import LATEST_PROTOCOL_VERSION, InitializeRequestParams

from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.mcp.proxy import GatewaySession, View
from sluice.mcp.records import SessionRecord, SessionStore
from sluice.mcp.tools import ToolRunner
from sluice.mcp.upstream import Upstreams

log = logging.getLogger("sluice.mcp")

SESSION_ID_BYTES = 24
"""192 random bits per session id (``secrets.token_urlsafe``)."""


class Sessions:
    """Every open client session. :meth:`run` owns their tasks: start it in the lifespan's
    task group before serving; when it ends (cancelled at shutdown) every session is closed."""

    def __init__(
        self,
        runner: ToolRunner,
        upstreams: Upstreams,
        *,
        clock: Clock,
        idle_s: float,
        store: SessionStore | None = None,
    ) -> None:
        """``store``: the records shared with other replicas (``None``: this process only)."""
        self._runner = runner
        self._upstreams = upstreams
        self._clock = clock
        self._idle_s = idle_s
        self._store = store
        self._by_id: dict[str, GatewaySession] = {}
        self._restoring: dict[str, anyio.Lock] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._ready = anyio.Event()
        self._some = anyio.Event()
        """Set when a session is added (wakes :meth:`sweep_forever`)."""

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_id

    def held(self, session_id: str) -> GatewaySession | None:
        """The session when this process holds it (no check of key, endpoint or idleness)."""
        return self._by_id.get(session_id)

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
        """Close idle sessions every so often (a lookup also refuses an idle one). While no
        session is held the loop waits for one, not for the clock: an idle gateway, or one
        without MCP clients, never wakes up for it."""
        while True:
            if not self._by_id:
                self._some = anyio.Event()
                await self._some.wait()
            await self._clock.sleep(min(self._idle_s / 2, 60.0))
            await self.sweep()

    async def sweep(self) -> int:
        """Close every idle session, and with a store every session deleted elsewhere; keep
        the records of the sessions in use here alive. How many were closed."""
        idle = [s for s in self._by_id.values() if self._idle(s)]
        if self._store is not None:
            # A request in flight keeps its record alive however long it runs; the others
            # were refreshed when last used and are only checked.
            busy = [s for s in self._by_id.values() if s.busy]
            quiet = [s for s in self._by_id.values() if not s.busy and not self._idle(s)]
            alive = await self._touch([s.id for s in busy])
            alive += await self._exists([s.id for s in quiet])
            idle += [s for s, ok in zip(busy + quiet, alive, strict=True) if not ok]
        for session in idle:
            await self.close(session.id)
        return len(idle)

    async def create(
        self, principal: Principal, view: View, params: InitializeRequestParams | None = None
    ) -> GatewaySession:
        """A new session, serving once this returns. ``params``: the client's ``initialize``
        params, kept in the store for other replicas (``None``: not shared)."""
        session = await self._start(secrets.token_urlsafe(SESSION_ID_BYTES), principal, view)
        if self._store is not None and params is not None:
            now = self._clock.now()
            record = SessionRecord(
                key_id=principal.key_id,
                endpoint=view.key,
                client_params=params,
                protocol_version=_negotiated(params.protocolVersion),
                created=now,
                last_used=now,
            )
            try:
                await self._store.save(session.id, record)
            except Exception:
                log.warning("mcp session not shared with other replicas", exc_info=True)
        return session

    async def _start(
        self,
        session_id: str,
        principal: Principal,
        view: View,
        restored: InitializeRequestParams | None = None,
    ) -> GatewaySession:
        with anyio.fail_after(5.0):
            await self._ready.wait()
        assert self._tg is not None
        session = GatewaySession(
            session_id,
            principal,
            view,
            runner=self._runner,
            upstreams=self._upstreams,
            now=self._clock.now(),
            restored=restored,
        )
        self._by_id[session.id] = session
        self._some.set()
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
        endpoint; ``None`` otherwise (the caller cannot tell which). With a store, a session
        held here whose record is gone (deleted elsewhere, expired) is closed, and one held
        elsewhere is rebuilt from its record."""
        session = self._by_id.get(session_id)
        if session is not None and session.closed.is_set():
            return None
        if session is None:
            return await self._restore(session_id, principal, view)
        if session.principal.key_id != principal.key_id or session.view.key != view.key:
            return None
        if self._store is not None:
            # The record says whether the session lives on: another replica may have used
            # it meanwhile (so a copy idle here is not idle) or deleted it.
            if not (await self._touch([session_id]))[0]:
                await self.close(session_id)
                return None
        elif self._idle(session):
            await self.close(session_id)
            return None
        session.last_used = self._clock.now()
        return session

    async def _restore(
        self, session_id: str, principal: Principal, view: View
    ) -> GatewaySession | None:
        """Rebuild a session another replica created, from its record (one rebuild at a
        time per id: concurrent requests for it share the result)."""
        if self._store is None:
            return None
        lock = self._restoring.setdefault(session_id, anyio.Lock())
        try:
            async with lock:
                session = self._by_id.get(session_id)
                if session is None:
                    session = await self._rebuild(session_id, principal, view)
                elif session.principal.key_id != principal.key_id or session.view.key != view.key:
                    return None
                if session is not None:
                    session.last_used = self._clock.now()
                return session
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._restoring.pop(session_id, None)

    async def _rebuild(
        self, session_id: str, principal: Principal, view: View
    ) -> GatewaySession | None:
        assert self._store is not None
        try:
            record = await self._store.load(session_id)
        except Exception:
            log.warning("mcp session record could not be read", exc_info=True)
            return None
        if record is None or record.key_id != principal.key_id or record.endpoint != view.key:
            return None
        try:
            if not (await self._store.touch([session_id], now=self._clock.now()))[0]:
                return None
        except Exception:
            log.warning("mcp session record could not be refreshed", exc_info=True)
        return await self._start(session_id, principal, view, restored=record.client_params)

    async def _touch(self, session_ids: list[str]) -> list[bool]:
        """Refresh these records; a store that fails counts them alive (the sessions held
        here keep working while Redis is away)."""
        assert self._store is not None
        if not session_ids:
            return []
        try:
            return await self._store.touch(session_ids, now=self._clock.now())
        except Exception:
            log.warning("mcp session records could not be refreshed", exc_info=True)
            return [True] * len(session_ids)

    async def _exists(self, session_ids: list[str]) -> list[bool]:
        assert self._store is not None
        if not session_ids:
            return []
        try:
            return await self._store.exists(session_ids)
        except Exception:
            log.warning("mcp session records could not be read", exc_info=True)
            return [True] * len(session_ids)

    def _idle(self, session: GatewaySession) -> bool:
        return session.busy == 0 and self._clock.now() - session.last_used > self._idle_s

    async def close(self, session_id: str) -> None:
        """Close the copy of the session held here (its record, if any, stays)."""
        session = self._by_id.pop(session_id, None)
        if session is not None:
            await session.close()

    async def forget(self, session_id: str) -> None:
        """The client ended the session: remove its record, so no replica serves it again
        (a replica holding a copy closes it at its next use or sweep)."""
        if self._store is not None:
            try:
                await self._store.forget(session_id)
            except Exception:
                log.warning("mcp session record could not be removed", exc_info=True)

    async def close_all(self) -> None:
        """Close every session held here (shutdown: the records stay for other replicas)."""
        for session_id in list(self._by_id):
            await self.close(session_id)


def _negotiated(requested: str | int) -> str:
    """The version the SDK's server answers ``initialize`` with."""
    version = str(requested)
    return version if version in SUPPORTED_PROTOCOL_VERSIONS else LATEST_PROTOCOL_VERSION
