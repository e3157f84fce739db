"""Rollups: usage events summed per hour and per day and per owner, model and provider.

The writer aggregates each batch here (pure Python, no I/O) and the storage adds the sums to
the rollup tables in the same transaction as the raw rows, so the two never disagree.
Dimensions that an event lacks are stored as ``""`` (unique keys cannot hold NULLs).
MCP rows (``endpoint`` ``mcp.tool``/``mcp.session``) are left out: they have no model, tokens
or cost, and counting them as requests would skew every model figure.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sluice.usage import histogram
from sluice.usage.event import MCP_ENDPOINTS, UsageEvent

HOUR_S = 3600
DAY_S = 86_400

GroupKey = tuple[int, str, str, str, str, str, str]
"""(bucket start in epoch seconds, org, team, user, key, model, provider)."""

DIMENSIONS = ("org_id", "team_id", "user_id", "key_id", "model", "provider")


@dataclass(slots=True)
class Sums:
    """What one rollup row adds up."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int = 0
    latency_ms_sum: float = 0.0
    ttft_ms_sum: float = 0.0
    ttft_count: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * histogram.BUCKETS)

    def add(self, e: UsageEvent) -> None:
        self.requests += 1
        if e.status >= 400:
            self.errors += 1
        self.prompt_tokens += e.prompt_tokens
        self.completion_tokens += e.completion_tokens
        self.cached_tokens += e.cached_tokens
        self.cache_write_tokens += e.cache_write_tokens
        self.cost_micros += e.cost_micros or 0
        self.latency_ms_sum += e.latency_ms
        if e.ttft_ms is not None:
            self.ttft_ms_sum += e.ttft_ms
            self.ttft_count += 1
        self.latency[histogram.bucket(e.latency_ms)] += 1

    def merge(self, other: Sums) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_micros += other.cost_micros
        self.latency_ms_sum += other.latency_ms_sum
        self.ttft_ms_sum += other.ttft_ms_sum
        self.ttft_count += other.ttft_count
        for i, n in enumerate(other.latency):
            self.latency[i] += n


def group_key(e: UsageEvent, width_s: int) -> GroupKey:
    start = int(e.created_at // width_s) * width_s
    return (
        start,
        e.org_id or "",
        e.team_id or "",
        e.user_id or "",
        e.key_id or "",
        e.model or "",
        e.provider or "",
    )


def aggregate(events: Iterable[UsageEvent], width_s: int) -> dict[GroupKey, Sums]:
    """Sum events into buckets of ``width_s`` seconds (``HOUR_S`` or ``DAY_S``)."""
    out: dict[GroupKey, Sums] = {}
    for e in events:
        if e.endpoint in MCP_ENDPOINTS:
            continue
        k = group_key(e, width_s)
        sums = out.get(k)
        if sums is None:
            sums = out[k] = Sums()
        sums.add(e)
    return out


RowValues = tuple[Any, ...]
"""One rollup row as written: the :data:`GroupKey`, then the sums in the order of
:data:`SUM_FIELDS`, then the latency histogram's counts."""

SUM_FIELDS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cost_micros",
    "latency_ms_sum",
    "ttft_ms_sum",
    "ttft_count",
)
_HIST = len(SUM_FIELDS)
_EMPTY: tuple[int | float, ...] = (0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0) + (0,) * histogram.BUCKETS


HourSums = dict[GroupKey, list[Any]]
"""The hourly sums of the events seen so far (see :func:`add_hours`)."""


def add_hours(hours: HourSums, events: Iterable[UsageEvent]) -> None:
    """Add ``events`` to the hourly sums ``hours``: the same sums as :func:`aggregate` with
    ``HOUR_S``, in the row layout of :data:`RowValues`. It runs on the event loop for every
    flush of the usage writer, a slice of a batch at a time."""
    upper = histogram.UPPER_MS
    for e in events:
        if e.endpoint in MCP_ENDPOINTS:
            continue
        k = group_key(e, HOUR_S)
        acc = hours.get(k)
        if acc is None:
            acc = hours[k] = list(_EMPTY)
        acc[0] += 1
        if e.status >= 400:
            acc[1] += 1
        acc[2] += e.prompt_tokens
        acc[3] += e.completion_tokens
        acc[4] += e.cached_tokens
        acc[5] += e.cache_write_tokens
        if e.cost_micros:
            acc[6] += e.cost_micros
        acc[7] += e.latency_ms
        if e.ttft_ms is not None:
            acc[8] += e.ttft_ms
            acc[9] += 1
        acc[_HIST + bisect_left(upper, e.latency_ms)] += 1


def rollup_rows(hours: HourSums) -> tuple[list[RowValues], list[RowValues]]:
    """The hourly and the daily rollup rows of the sums, each sorted by group key (so
    concurrent writers lock rows in one order); the days are summed from the hours."""
    days: dict[GroupKey, list[Any]] = {}
    for k, acc in hours.items():
        dk = (k[0] - k[0] % DAY_S, *k[1:])
        day = days.get(dk)
        if day is None:
            days[dk] = acc.copy()
        else:
            day[:] = [a + b for a, b in zip(day, acc, strict=True)]
    return (
        [(*k, *acc) for k, acc in sorted(hours.items())],
        [(*k, *acc) for k, acc in sorted(days.items())],
    )


def batch_rows(events: Sequence[UsageEvent]) -> tuple[list[RowValues], list[RowValues]]:
    """The hourly and the daily rollup rows of a batch (:func:`add_hours`, then
    :func:`rollup_rows`)."""
    hours: HourSums = {}
    add_hours(hours, events)
    return rollup_rows(hours)
