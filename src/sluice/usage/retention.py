"""Retention: raw usage rows and logged bodies older than their keep time are deleted in
chunks by one background task. Rollups are kept (analytics and budgets read them)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sluice.clock import Clock
from sluice.outage import OutageLog

log = logging.getLogger("sluice.usage")

DAY_S = 86_400


class Purgeable(Protocol):
    async def purge_before(self, cutoff: float, *, limit: int) -> int:
        """Delete at most ``limit`` rows created before ``cutoff``; the number deleted."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    store: Purgeable
    keep_days: int
    """0 keeps everything."""


class Retention:
    """Runs :meth:`purge` every ``interval_s``; each chunk is its own transaction and has
    a deadline of ``chunk_timeout_s``."""

    def __init__(
        self,
        targets: list[Target],
        *,
        clock: Clock,
        interval_s: float = 3600.0,
        chunk: int = 5000,
        chunk_timeout_s: float = 60.0,
    ) -> None:
        self._targets = [t for t in targets if t.keep_days > 0]
        self._clock = clock
        self._interval_s = interval_s
        self._chunk = chunk
        self._timeout_s = chunk_timeout_s
        self.purged: dict[str, int] = {t.name: 0 for t in self._targets}

    async def purge(self) -> dict[str, int]:
        """Delete everything past its keep time now; the rows deleted per target."""
        done: dict[str, int] = {}
        for target in self._targets:
            cutoff = self._clock.now() - target.keep_days * DAY_S
            total = 0
            while True:
                async with asyncio.timeout(self._timeout_s):
                    n = await target.store.purge_before(cutoff, limit=self._chunk)
                total += n
                if n < self._chunk:
                    break
                await asyncio.sleep(0)  # let requests run between chunks
            done[target.name] = total
            self.purged[target.name] += total
        return done

    async def run(self) -> None:
        """Purge forever (first purge right away); cancelled by the lifespan."""
        outage = OutageLog(
            log, "retention purge", meanwhile="retrying every interval", clock=self._clock
        )
        while True:
            try:
                done = await self.purge()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
                if any(done.values()):
                    log.info("retention purge: %s", done)
            await asyncio.sleep(self._interval_s)
