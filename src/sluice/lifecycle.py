"""Whether the process serves: starting (waiting for its database), ready, or draining.

The app answers every request but the health probes with 503 while the process is not
ready: ``dependency_unavailable`` while starting, ``shutting_down`` while draining. The data
plane keeps its requests in flight here, so that a drain knows when they are done (the
control plane's are short: uvicorn waits for them after the drain).

A drain starts on SIGTERM (:class:`SigtermHook`): readiness turns 503 at once, new
requests are refused, the requests in flight may finish until ``grace_s``; those still
running then are cancelled (each ends with an explicit error: a terminal event on a stream)
and the server is told to stop. Only then does the server close its listener, so probes and
clients that connect during the drain get an answer instead of a refused connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("sluice")

CANCEL_WAIT_S = 5.0
"""How long cancelled requests get to send their error and record their usage row after
the grace deadline before the server is told to stop anyway."""


class Phase(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    """The serving phase and the requests in flight (the app adds and removes them)."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.waiting_for = "the database"
        """While starting: what the process waits for (readiness and 503s name it)."""
        self.last_error: str | None = None
        """While starting: why the last attempt to reach the database failed."""
        self.inflight: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None
        """Set when the last request in flight ends; exists only during a drain."""

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY

    def mark_ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY
            self.last_error = None

    def track(self) -> asyncio.Task[Any]:
        """Keep the current task (a request) in flight until :meth:`done`."""
        task = asyncio.current_task()
        assert task is not None
        self.inflight.add(task)
        return task

    def done(self, task: asyncio.Task[Any]) -> None:
        """A request ended: forget it, and wake a drain waiting for the last one."""
        self.inflight.discard(task)
        if self._idle is not None and not self.inflight:
            self._idle.set()

    async def drain(self, *, grace_s: float) -> None:
        """Refuse new requests, let those in flight finish until ``grace_s``, then cancel
        the rest and wait (at most :data:`CANCEL_WAIT_S`) for them to answer."""
        self.phase = Phase.DRAINING
        current = asyncio.current_task()
        self.inflight.discard(current)
        self._idle = asyncio.Event()
        if not self.inflight:
            log.info("SIGTERM: draining; no request in flight")
            return
        log.info(
            "SIGTERM: draining %d request(s) in flight (up to %.1f s)", len(self.inflight), grace_s
        )
        if await _wait(self._idle, grace_s):
            log.info("drained: every request in flight finished")
            return
        log.warning(
            "drain deadline: ending %d request(s) still running with a shutting_down error",
            len(self.inflight),
        )
        for task in list(self.inflight):
            task.cancel()
        if not await _wait(self._idle, CANCEL_WAIT_S):
            log.error("%d request(s) did not end after cancellation", len(self.inflight))


async def _wait(event: asyncio.Event, timeout_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await event.wait()
        return True
    return False


Handler = Callable[[int, FrameType | None], Any]


class SigtermHook:
    """Puts the app's drain in front of the server's own SIGTERM handling.

    The server's Python-level SIGTERM handler (uvicorn's, which stops accepting connections
    at once) is kept and called when the drain is over, or at once on a second SIGTERM.
    Nothing is hooked outside the main thread or when no Python handler is installed (an
    in-process test, a server that handles signals otherwise): then the server's own
    behaviour applies.
    """

    def __init__(self, on_term: Callable[[], None]) -> None:
        self._on_term = on_term
        self._previous: Handler | None = None
        self._signalled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):
            return False
        self._previous = previous
        self._loop = asyncio.get_running_loop()
        signal.signal(signal.SIGTERM, self._handle)
        return True

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        if self._signalled:  # a second SIGTERM: the server stops now
            self.release()
            return
        self._signalled = True
        assert self._loop is not None
        # A signal handler runs between two bytecodes of the loop's thread: schedule, do
        # not start the drain here.
        self._loop.call_soon_threadsafe(self._on_term)

    def release(self) -> None:
        """Hand SIGTERM to the server's handler (it stops serving and shuts down)."""
        if self._previous is not None:
            self._previous(signal.SIGTERM, None)

    def uninstall(self) -> None:
        if self._previous is not None and signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self._previous)
