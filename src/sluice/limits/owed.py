"""Store calls Redis did not answer (a settle or release during an outage), sent again in
order once it does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence

from sluice.limits.lua import STORE_ERRORS, LuaScript

log = logging.getLogger("sluice.limits")


class Owed:
    """Calls owed to Redis, oldest first.

    Only calls that are safe to run twice may be deferred: a call that timed out may have
    run on the server, or may still run there when a frozen server wakes. At most
    ``max_pending`` wait; past that the oldest is dropped (``what`` names the calls in the
    log line). :meth:`retry` sends them; :meth:`run` does so every ``retry_s`` while any
    wait, until cancelled, and once more on cancellation (stopping at the first failure).
    """

    def __init__(self, *, what: str, retry_s: float = 1.0, max_pending: int = 10_000) -> None:
        self._what = what
        self.retry_s = retry_s
        self._max_pending = max_pending
        self._calls: deque[tuple[LuaScript, Sequence[str], Sequence[str | int]]] = deque()
        self.wake = asyncio.Event()
        """Set when a call is deferred (a loop waiting on it retries at once)."""
        self._failing = False

    @property
    def pending(self) -> int:
        """Calls waiting for Redis."""
        return len(self._calls)

    def defer(self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int]) -> None:
        if len(self._calls) >= self._max_pending:
            self._calls.popleft()
            log.warning("%d %s wait for Redis; dropped the oldest", self._max_pending, self._what)
        self._calls.append((script, keys, args))
        self.wake.set()

    async def retry(self) -> bool:
        """Send the owed calls, oldest first; stop at the first that fails. ``True`` when
        none is left. Raises nothing but cancellation."""
        while self._calls:
            script, keys, args = self._calls[0]
            try:
                await script(keys, args)
            except STORE_ERRORS:
                return False
            self._calls.popleft()
        return True

    async def run(self) -> None:
        """Retry while calls wait, until cancelled."""
        try:
            while True:
                self.wake.clear()
                if self._calls:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.retry_s):
                            await self.wake.wait()
                else:
                    await self.wake.wait()
                self.note(await self.retry())
        finally:
            await self.final()

    def note(self, answered: bool) -> None:
        """Log once when Redis stops answering and once when it answers again."""
        if not answered and not self._failing:
            self._failing = True
            log.warning("Redis does not answer; %d %s wait", len(self._calls), self._what)
        elif answered and self._failing:
            self._failing = False
            log.warning("Redis answers again; the %s that waited were sent", self._what)

    async def final(self) -> None:
        """One last pass (at shutdown); gives up at the first failure."""
        if self._calls:
            with contextlib.suppress(Exception):
                await self.retry()
