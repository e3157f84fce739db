"""Task ownership. The only module that creates tasks directly.

Background work runs in the lifespan's ``asyncio.TaskGroup``; the one per-request helper
here (:func:`disconnect_watch`) is owned and cancelled by the request that started it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, Protocol

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


class _Ended(Protocol):
    ended: bool
    gone: bool


WATCH_DELAY_S = 0.2
"""How long a request runs before its disconnect watch starts. Most answers take less: they
cost a timer instead of a task (creating, scheduling and cancelling a task per request was
a measurable share of the request path). A client that left earlier is noticed when the
watch starts, well within a second."""


class DisconnectWatch:
    """Cancels the request's task when the client disconnects.

    Start it after the request body is read; the watching itself begins after ``delay_s``
    (see :data:`WATCH_DELAY_S`). ``disconnected`` (and the response's ``gone``) tells the
    handler why it was cancelled.
    :meth:`stop` must be called on every exit path (``finally``).
    """

    __slots__ = ("_receive", "_response", "_target", "_task", "_timer", "disconnected")

    def __init__(
        self,
        receive: Receive,
        response: _Ended,
        *,
        delay_s: float = WATCH_DELAY_S,
        target: asyncio.Task[Any] | None = None,
    ):
        """``target``: the request's task (default: the current one)."""
        self.disconnected = False
        self._receive = receive
        self._response = response
        self._target = target if target is not None else asyncio.current_task()
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            delay_s, self._start
        )

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if self._response.ended:
                    return  # servers report "disconnect" once the answer is complete
                self.disconnected = self._response.gone = True
                if self._target is not None:
                    self._target.cancel()
                return

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif self._task is not None and not self._task.done():
            self._task.cancel()


def spawn_in(
    group: asyncio.TaskGroup, coro: Coroutine[Any, Any, None], *, name: str
) -> asyncio.Task[None]:
    """Start a background task owned by the lifespan's task group."""
    return group.create_task(coro, name=name)


class OwnedTasks:
    """A set of tasks owned by a long-lived object (a server's connections); each task leaves
    the set when it ends, and :meth:`cancel_all` ends the rest."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
