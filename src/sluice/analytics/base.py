"""The analytics storage seam."""

from __future__ import annotations

from typing import Protocol

from sluice.analytics.model import LogQuery, RollupQuery, RollupRow, Visibility
from sluice.usage.event import UsageEvent


class AnalyticsStore(Protocol):
    async def rollups(self, query: RollupQuery) -> list[RollupRow]:
        """Rollup sums per group; groups with no rows are absent."""
        ...

    async def log(self, query: LogQuery) -> list[UsageEvent]:
        """At most ``query.limit`` raw usage rows, newest first (ties by request id,
        descending), strictly after ``query.after``."""
        ...

    async def event(self, request_id: str, visibility: Visibility) -> UsageEvent | None:
        """One raw row, ``None`` when absent (purged) or not visible."""
        ...
