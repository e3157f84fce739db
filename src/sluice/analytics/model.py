"""Analytics value types: who may be seen, what is asked, what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field

from sluice.usage.rollup import Sums


@dataclass(frozen=True, slots=True)
class Visibility:
    """The usage a caller may see: everything (``everything``), or rows billed to any of
    these orgs, teams, users or keys."""

    everything: bool = False
    org_ids: frozenset[str] = frozenset()
    team_ids: frozenset[str] = frozenset()
    user_ids: frozenset[str] = frozenset()
    key_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Narrow:
    """Equality filters on the rollup dimensions (``None``: any)."""

    org_id: str | None = None
    team_id: str | None = None
    user_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class RollupQuery:
    """Rollup rows of one table (``width_s``: 3600 or 86 400) with ``start <= bucket < end``,
    summed per ``group_by`` (rollup column names, ``bucket`` included when asked)."""

    width_s: int
    start: int
    end: int
    visibility: Visibility
    narrow: Narrow
    group_by: tuple[str, ...] = ()
    among: frozenset[str] | None = None
    """Only these values of the (one, non-``bucket``) group column (``None``: any)."""


@dataclass(frozen=True, slots=True)
class RollupRow:
    group: tuple[str | int, ...]
    sums: Sums


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of the request log ended: the last row's time and request id."""

    created_at: float
    request_id: str


@dataclass(frozen=True, slots=True)
class LogQuery:
    """The request log, newest first, ``start <= created_at < end``."""

    start: float
    end: float
    visibility: Visibility
    narrow: Narrow
    status: int | None = None
    errors_only: bool | None = None
    """``True``: status >= 400 only; ``False``: below 400 only; ``None``: both."""
    after: Cursor | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Window:
    """The range a rollup answer covers, in epoch seconds ``[start, end)`` on hour bounds."""

    start: int
    end: int


@dataclass(slots=True)
class Metrics:
    requests: int
    errors: int
    error_rate: float
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cost_micros: int
    cost_usd: float
    latency_ms_mean: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    ttft_ms_mean: float | None
    extra: dict[str, object] = field(default_factory=dict)
