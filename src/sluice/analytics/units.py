"""Billed units of media requests (audio seconds, speech characters, images, rerank
searches) per endpoint, model and unit over a time range, from the raw usage rows that carry
them (``unit_kind`` not null).

Like the cache and MCP figures, these cover the raw rows' retention (``usage.retention``);
scoping is the analytics' own (``sluice.analytics.scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sluice.analytics.model import Narrow, Visibility


@dataclass(frozen=True, slots=True)
class UnitQuery:
    """Rows with ``start <= created_at < end`` that the caller may see."""

    start: float
    end: float
    visibility: Visibility
    narrow: Narrow


@dataclass(slots=True)
class UnitSums:
    """One endpoint, model and unit's figures."""

    endpoint: str
    model: str
    unit_kind: str
    """``audio_seconds``, ``characters``, ``images`` or ``searches``."""
    requests: int = 0
    units: float = 0.0
    cost_micros: int = 0


class UnitUsageStore(Protocol):
    async def unit_sums(self, query: UnitQuery) -> list[UnitSums]:
        """Sums per endpoint, model and unit, the most costly first."""
        ...
