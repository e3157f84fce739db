"""The analytics storage seam."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sluice.analytics.model import LogQuery, RollupQuery, RollupRow, Visibility
from sluice.usage.event import UsageEvent


class AnalyticsStore(Protocol):
    async def rollups(self, query: RollupQuery) -> list[RollupRow]:
        """Rollup sums per group; groups with no rows are absent."""
        ...

    async def top(self, queries: Sequence[RollupQuery], limit: int) -> list[str]:
        """The values of the one group column of the queries (each a segment of a range,
        all grouped by the same column) of the ``limit`` largest groups over all their rows
        together: by cost, then requests, descending, then value ascending (code points)."""
        ...

    async def log(self, query: LogQuery) -> list[UsageEvent]:
        """At most ``query.limit`` raw usage rows, newest first (ties by request id,
        descending), strictly after ``query.after``."""
        ...

    async def event(self, request_id: str, visibility: Visibility) -> UsageEvent | None:
        """One raw row, ``None`` when absent (purged) or not visible."""
        ...
