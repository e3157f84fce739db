"""Response-cache analytics: requests, hits, hit rate and what the hits saved, per model and
team over a time range, from the raw usage rows that say what the cache did (``cache`` not
null: the cache was configured when they were served).

Like MCP figures, these cover the raw rows' retention (``usage.retention``); scoping is the
analytics' own (``sluice.analytics.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sluice.analytics.model import Narrow, Visibility


@dataclass(frozen=True, slots=True)
class CacheQuery:
    """Rows with ``start <= created_at < end`` that the caller may see."""

    start: float
    end: float
    visibility: Visibility
    narrow: Narrow


@dataclass(slots=True)
class CacheSums:
    """One model and team's figures (``team_id`` ``None``: keys without a team)."""

    model: str
    team_id: str | None
    requests: int = 0
    """Requests the cache saw (hits, misses, refreshes and bypasses)."""
    hits: int = 0
    misses: int = 0
    """Looked up and not found (``miss``), or refreshed (``store``)."""
    bypasses: int = 0
    saved_micros: int = 0
    """What the hits would have cost."""
    cost_micros: int = 0
    """What the other requests cost."""

    @property
    def hit_rate(self) -> float:
        """Hits among the requests that looked the cache up (bypasses left out)."""
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0


class CacheUsageStore(Protocol):
    async def cache_sums(self, query: CacheQuery) -> list[CacheSums]:
        """Sums per model and team, the most requested first."""
        ...
