"""Bringing the process up when its database may not be reachable yet.

The server binds and answers whatever the database does: the steps that need it (migrate,
bootstrap the admin key, load the key cache, start the work that reads it) run in one
attempt, tried once while the app starts and then, if the database did not answer, in the
background with a growing pause until it does. Until then readiness answers 503 naming
the database, and every other route 503 ``dependency_unavailable`` (``sluice.lifecycle``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import SQLAlchemyError

from sluice.clock import Clock, SystemClock
from sluice.lifecycle import Lifecycle
from sluice.storage.availability import database_unavailable

log = logging.getLogger("sluice")

PING_TIMEOUT_S = 5.0
"""How long one attempt waits for the database to answer its first query."""
ATTEMPT_TIMEOUT_S = 300.0
"""How long one whole attempt (migrations included) may take before it is abandoned."""
FIRST_RETRY_S = 0.5
"""The pause after the first failed attempt; it doubles up to ``retry_max_s``."""


def database_error(exc: BaseException) -> bool:
    """The failure is the database's (unavailable: ``database_unavailable``; or erroring, a
    migration that failed), not a bug of this process: by exception type and driver code,
    never by message text."""
    return database_unavailable(exc) or isinstance(exc, SQLAlchemyError)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BringUp:
    """Runs ``steps`` until they succeed once, then marks the lifecycle ready.

    ``steps`` must be safe to run again after a partial failure (every step is idempotent:
    migrations, the admin-key bootstrap, a cache load).
    """

    def __init__(
        self,
        steps: Callable[[], Awaitable[None]],
        lifecycle: Lifecycle,
        *,
        retry_max_s: float,
        first_retry_s: float = FIRST_RETRY_S,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._steps = steps
        self._first_retry_s = min(first_retry_s, retry_max_s)
        self._lifecycle = lifecycle
        self._retry_max_s = retry_max_s
        self._attempt_timeout_s = attempt_timeout_s
        self._failures = 0
        self._since = self._clock.monotonic()

    async def attempt(self) -> bool:
        """One bounded attempt; ``True`` once the process is ready."""
        try:
            async with asyncio.timeout(self._attempt_timeout_s):
                await self._steps()
        except Exception as exc:
            self._failed(exc)
            return False
        if self._failures:
            log.info(
                "the database answers again after %d failed attempt(s) over %.1f s; ready",
                self._failures,
                self._clock.monotonic() - self._since,
            )
        self._lifecycle.mark_ready()
        return True

    async def retry(self) -> None:
        """Attempt with a doubling pause until one succeeds (a background task)."""
        pause = self._first_retry_s
        while not await self.attempt():
            await self._clock.sleep(pause)
            pause = min(pause * 2, self._retry_max_s)

    def _failed(self, exc: Exception) -> None:
        reason = _reason(exc)
        self._failures += 1
        first, changed = self._failures == 1, reason != self._lifecycle.last_error
        self._lifecycle.last_error = reason
        if not (first or changed):
            log.debug("the database is still unavailable (%s)", reason)
            return
        # One line when the outage is first seen and one per change of cause, not one per
        # attempt; a failure that is not the database's (a bug) comes with its traceback.
        log.warning(
            "the database is unavailable (%s); serving 503 and retrying (at most every %g s)",
            reason,
            self._retry_max_s,
            exc_info=not database_error(exc),
        )
