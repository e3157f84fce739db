"""Task ownership. The only module that creates tasks directly.

Background work runs in the lifespan's ``asyncio.TaskGroup``; the one per-request helper
here (:class:`DisconnectWatch`) is owned and cancelled by the request that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

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

    __slots__ = (
        "_receive",
        "_response",
        "_target",
        "_task",
        "_timer",
        "disconnected",
    )

    def __init__(
        self,
        receive: Receive,
        response: _Ended,
        *,
        delay_s: float = WATCH_DELAY_S,
        target: asyncio.Task[Any] | None = None,
        queue: WatchQueue | None = None,
    ):
        """``target``: the request's task (default: the current one); ``queue``: starts the
        watch after the queue's delay instead of a timer of its own (``delay_s``)."""
        self.disconnected = False
        self._receive: Receive | None = receive
        self._response: _Ended | None = response
        self._target = target if target is not None else asyncio.current_task()
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if queue is None:
            self._timer = asyncio.get_running_loop().call_later(delay_s, self._start)
        else:
            queue.add(self)

    def _start(self) -> None:
        self._timer = None
        if self._receive is not None:
            self._task = asyncio.ensure_future(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                response = self._response
                if response is None or response.ended:
                    return  # servers report "disconnect" once the answer is complete
                self.disconnected = response.gone = True
                if self._target is not None:
                    self._target.cancel()
                return

    def stop(self) -> None:
        if self._task is None:
            # Not watching (yet): let go of the request's objects now, not when a queue
            # that still holds this watch reaches it.
            self._receive = self._response = self._target = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        elif self._task is not None and not self._task.done():
            self._task.cancel()


class WatchQueue:
    """Starts delayed :class:`DisconnectWatch` es with one timer for all of them.

    A timer per request (its handle pushed on the loop's heap, cancelled, popped later, with
    Python-level comparisons each way) cost about 1 % of a request. Watches share one delay,
    so they fall due in the order they were added: the queue keeps them in that order and
    arms one timer, for the oldest. A watch stopped before it is due lets go of the
    request's objects at once and is dropped when it falls due.
    """

    __slots__ = ("_delay_s", "_due", "_timer")

    def __init__(self, delay_s: float = WATCH_DELAY_S) -> None:
        self._delay_s = delay_s
        self._due: deque[tuple[float, DisconnectWatch]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: DisconnectWatch) -> None:
        loop = asyncio.get_running_loop()
        self._due.append((loop.time() + self._delay_s, watch))
        if self._timer is None:
            self._timer = loop.call_later(self._delay_s, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        due = self._due
        now = loop.time()
        while due and due[0][0] <= now:
            watch = due.popleft()[1]
            if watch._receive is not None:  # not stopped meanwhile
                watch._start()
        if due:
            self._timer = loop.call_at(due[0][0], self._tick, loop)


async def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` as its own task that a cancellation of the caller does not cut: a
    database write half done when the process stops (cancelling a database driver's call
    midway can leave its connection unusable, and the shutdown waiting on it). When the
    caller is cancelled meanwhile, ``coro`` still runs to its end, then the cancellation is
    raised."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


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


class Background:
    """The lifespan's one task group and the tasks started in it (iterable, for probes).

    :meth:`bind` is called once the lifespan has opened its group; :meth:`cancel_all` at exit
    lets the group end. Nothing here outlives the lifespan.
    """

    def __init__(self) -> None:
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def bind(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Start a background task in the lifespan's task group (cancelled at exit)."""
        assert self._group is not None, "the lifespan's task group is not open"
        self._tasks.append(spawn_in(self._group, coro, name=name))

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()

    def __iter__(self) -> Iterator[asyncio.Task[None]]:
        return iter(self._tasks)
