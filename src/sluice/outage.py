"""One log line per edge of an outage, for a task that retries on its own schedule.

A periodic task (key refresh, retention purge, alert checks) that fails because its
database is away would otherwise log a traceback per attempt, several a second. With an
:class:`OutageLog` it logs one WARNING when the outage starts, one INFO when the task works
again, and nothing in between but DEBUG lines. A failure that is not an outage (a bug) still
gets its traceback, at most once per ``traceback_every_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sluice.clock import Clock, SystemClock
from sluice.storage.availability import database_unavailable

TRACEBACK_EVERY_S = 300.0
"""Least time between two tracebacks of one task's unexpected failures."""


def describe(exc: BaseException) -> str:
    """One line about ``exc``: the driver's error when a database library wrapped it (not the
    statement and its parameters, which a wrapper's text includes)."""
    inner = getattr(exc, "orig", None)
    cause = inner if isinstance(inner, BaseException) else exc
    text = str(cause).strip().split("\n", 1)[0][:300]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


class OutageLog:
    """The outage state of one task, for its log.

    Call :meth:`failed` with each failure and :meth:`succeeded` after each success.
    ``task`` names the task in the lines ("key refresh"); ``meanwhile`` says what the
    process does while it fails ("serving the cached keys"). ``is_outage`` tells an outage
    from a bug (default: :func:`sluice.storage.availability.database_unavailable`);
    ``dependency`` names what is away ("the database").
    """

    def __init__(
        self,
        log: logging.Logger,
        task: str,
        *,
        meanwhile: str,
        dependency: str = "the database",
        is_outage: Callable[[BaseException], bool] = database_unavailable,
        clock: Clock | None = None,
        traceback_every_s: float = TRACEBACK_EVERY_S,
    ) -> None:
        self._log = log
        self._task = task
        self._meanwhile = meanwhile
        self._dependency = dependency
        self._is_outage = is_outage
        self._clock = clock or SystemClock()
        self._traceback_every_s = traceback_every_s
        self._last_traceback: float | None = None
        self._since = 0.0
        self.failures = 0
        """Outage failures since the last success."""

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        if not self._is_outage(exc):
            self._unexpected(exc)
            return
        self.failures += 1
        if self.failures > 1:
            self._log.debug(
                "%s: %s still unavailable (%s)", self._task, self._dependency, describe(exc)
            )
            return
        self._since = self._clock.monotonic()
        self._log.warning(
            "%s failed: %s is unavailable (%s); %s until it answers",
            self._task,
            self._dependency,
            describe(exc),
            self._meanwhile,
        )

    def succeeded(self) -> None:
        if not self.failures:
            return
        self._log.info(
            "%s works again: %s answers after %d failed attempt(s) over %.1f s",
            self._task,
            self._dependency,
            self.failures,
            self._clock.monotonic() - self._since,
        )
        self.failures = 0

    def _unexpected(self, exc: BaseException) -> None:
        now = self._clock.monotonic()
        last = self._last_traceback
        if last is not None and now - last < self._traceback_every_s:
            self._log.debug("%s failed again (%s)", self._task, describe(exc))
            return
        self._last_traceback = now
        self._log.warning("%s failed; %s", self._task, self._meanwhile, exc_info=exc)
