"""Summaries, breakdowns and series from the rollups; the request log from the raw rows.

Ranges are UTC and hour-aligned (a start rounds down, an end up): rollups hold hours. A
range is answered from the daily rollups for its whole days and the hourly rollups for the
hours at either edge, so a 30-day dashboard reads about 30 rows per group.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from sluice.analytics.base import AnalyticsStore
from sluice.analytics.cache import CacheQuery, CacheSums, CacheUsageStore
from sluice.analytics.mcp import McpQuery, McpToolMetrics, McpUsageStore, tool_calls
from sluice.analytics.model import (
    Cursor,
    LogQuery,
    Metrics,
    Narrow,
    RollupQuery,
    Visibility,
    Window,
)
from sluice.analytics.units import UnitQuery, UnitSums, UnitUsageStore
from sluice.clock import Clock
from sluice.errors import BadRequest
from sluice.usage import histogram
from sluice.usage.event import UsageEvent
from sluice.usage.rollup import DAY_S, HOUR_S, Sums

DEFAULT_DAYS = 30
MAX_DAYS = 800
MAX_POINTS = 2000
BREAKDOWNS = {
    "model": "model",
    "provider": "provider",
    "org": "org_id",
    "team": "team_id",
    "user": "user_id",
    "key": "key_id",
}
INTERVALS = {"hour": HOUR_S, "day": DAY_S}
RANKED_IN_STORE = frozenset({"user_id", "key_id"})
"""Breakdown columns with thousands of groups: the store ranks them on cost and requests
alone and only the top groups' full sums are read (the others have tens of groups: one
query with every sum is cheaper than two)."""


def metrics(s: Sums) -> Metrics:
    return Metrics(
        requests=s.requests,
        errors=s.errors,
        error_rate=s.errors / s.requests if s.requests else 0.0,
        input_tokens=s.prompt_tokens,
        output_tokens=s.completion_tokens,
        cached_tokens=s.cached_tokens,
        cost_micros=s.cost_micros,
        cost_usd=s.cost_micros / 1e6,
        latency_ms_mean=s.latency_ms_sum / s.requests if s.requests else None,
        latency_ms_p50=histogram.percentile(s.latency, 0.5),
        latency_ms_p95=histogram.percentile(s.latency, 0.95),
        ttft_ms_mean=s.ttft_ms_sum / s.ttft_count if s.ttft_count else None,
    )


def _segments(w: Window) -> list[tuple[int, int, int]]:
    """(table width, start, end) pieces covering the window: whole days from the daily
    table, the edge hours from the hourly one."""
    first_day = math.ceil(w.start / DAY_S) * DAY_S
    last_day = w.end // DAY_S * DAY_S
    if first_day >= last_day:
        return [(HOUR_S, w.start, w.end)]
    out = [(DAY_S, first_day, last_day)]
    if w.start < first_day:
        out.append((HOUR_S, w.start, first_day))
    if last_day < w.end:
        out.append((HOUR_S, last_day, w.end))
    return out


def encode_cursor(c: Cursor) -> str:
    raw = orjson.dumps([c.created_at, c.request_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created_at, request_id = orjson.loads(raw)
        if not isinstance(created_at, int | float) or not isinstance(request_id, str):
            raise ValueError(text)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadRequest("cursor is not one this API returned", param="cursor") from exc
    return Cursor(float(created_at), request_id)


class Analytics:
    def __init__(
        self,
        store: AnalyticsStore,
        clock: Clock,
        *,
        mcp: McpUsageStore,
        cache: CacheUsageStore | None = None,
        units: UnitUsageStore | None = None,
    ) -> None:
        """``mcp``: where MCP tool-call sums come from (the raw usage rows); ``cache``:
        response-cache sums (the raw usage rows); ``units``: billed units of media requests
        (the raw usage rows)."""
        self._store = store
        self._clock = clock
        self._mcp = mcp
        self._cache = cache
        self._units = units

    async def unit_usage(self, query: UnitQuery) -> list[UnitSums]:
        """Billed units (audio seconds, characters, images, searches) per endpoint, model
        and unit, the most costly first."""
        return [] if self._units is None else await self._units.unit_sums(query)

    async def cache_usage(self, query: CacheQuery) -> list[CacheSums]:
        """Response-cache figures per model and team, the most requested first."""
        return [] if self._cache is None else await self._cache.cache_sums(query)

    async def mcp_tools(self, query: McpQuery) -> list[McpToolMetrics]:
        """MCP tool calls per server and tool, the most called first."""
        return await tool_calls(self._mcp, query)

    def window(self, start: datetime | None, end: datetime | None) -> Window:
        """The hour-aligned range. By default the 30 UTC days ending with today (today
        included, so far): whole days, which the daily rollups answer alone; a range with
        part-days at its edges reads those hours from the (much larger) hourly rollups."""
        if end is None:
            end_s = (int(self._clock.now()) // DAY_S + 1) * DAY_S
        else:
            end_s = math.ceil(end.timestamp() / HOUR_S) * HOUR_S
        if start is None:
            start_s = end_s - DEFAULT_DAYS * DAY_S
        else:
            start_s = int(start.timestamp()) // HOUR_S * HOUR_S
        if start_s >= end_s:
            raise BadRequest("from must be before to", param="from")
        if end_s - start_s > MAX_DAYS * DAY_S:
            raise BadRequest(f"the range is longer than {MAX_DAYS} days", param="from")
        return Window(start_s, end_s)

    async def _sum(
        self,
        w: Window,
        v: Visibility,
        n: Narrow,
        group_by: tuple[str, ...],
        *,
        day: bool = False,
        among: frozenset[str] | None = None,
    ) -> dict[tuple[str | int, ...], Sums]:
        out: dict[tuple[str | int, ...], Sums] = {}
        queries = [
            RollupQuery(width, start, end, v, n, group_by=group_by, among=among)
            for width, start, end in _segments(w)
        ]
        # The (up to three) segments are independent queries: run them at once.
        answers = await asyncio.gather(*(self._store.rollups(q) for q in queries))
        for q, rows in zip(queries, answers, strict=True):
            for row in rows:
                key = row.group
                if day and q.width_s == HOUR_S:
                    key = (int(key[0]) // DAY_S * DAY_S, *key[1:])
                if key in out:
                    out[key].merge(row.sums)
                else:
                    out[key] = row.sums
        return out

    async def summary(self, w: Window, v: Visibility, n: Narrow) -> Metrics:
        sums = await self._sum(w, v, n, ())
        return metrics(sums.get((), Sums()))

    async def breakdown(
        self, w: Window, v: Visibility, n: Narrow, *, by: str, limit: int
    ) -> tuple[list[tuple[str | None, Metrics]], bool]:
        """Groups by cost then requests, largest first; and whether more were cut off."""
        column = BREAKDOWNS.get(by)
        if column is None:
            raise BadRequest(f"by must be one of {', '.join(BREAKDOWNS)}", param="by")
        among = None
        cut: bool | None = None
        if column in RANKED_IN_STORE:
            queries = [RollupQuery(*seg, v, n, group_by=(column,)) for seg in _segments(w)]
            top = await self._store.top(queries, limit + 1)
            cut = len(top) > limit
            if cut:  # the full sums of the top groups only
                among = frozenset(top[:limit])
        sums = await self._sum(w, v, n, (column,), among=among)
        ordered = sorted(
            sums.items(), key=lambda kv: (-kv[1].cost_micros, -kv[1].requests, str(kv[0][0]))
        )
        rows = [(str(k[0]) or None, metrics(s)) for k, s in ordered[:limit]]
        return rows, bool(cut) or len(ordered) > limit

    async def spend_by(
        self, w: Window, v: Visibility, *, by: str, among: frozenset[str]
    ) -> dict[str, int]:
        """Micro-dollars per ``by`` group (``org``, ``team``, ``user``, ``key``) among the ids
        a list page shows: one rollup read for the whole page, whatever its length."""
        column = BREAKDOWNS.get(by)
        if column is None:
            raise BadRequest(f"by must be one of {', '.join(BREAKDOWNS)}", param="by")
        if not among:
            return {}
        sums = await self._sum(w, v, Narrow(), (column,), among=among)
        return {str(k[0]): s.cost_micros for k, s in sums.items()}

    def month_to_date(self) -> Window:
        """From 00:00 UTC on the first of this month to the end of today: the period the
        spend columns and the organisation page show (``budget`` months start there too)."""
        now = self._clock.now()
        today = datetime.fromtimestamp(now, UTC)
        first = datetime(today.year, today.month, 1, tzinfo=UTC)
        return self.window(first, None)

    async def series(
        self, w: Window, v: Visibility, n: Narrow, *, interval: str
    ) -> list[tuple[int, Metrics]]:
        """One point per hour or day of the window, empty ones included."""
        width = INTERVALS.get(interval)
        if width is None:
            raise BadRequest("interval must be hour or day", param="interval")
        first = w.start // width * width
        points = range(first, w.end, width)
        if len(points) > MAX_POINTS:
            raise BadRequest(
                f"{len(points)} points; at most {MAX_POINTS} per series (use interval=day "
                "or a shorter range)",
                param="interval",
            )
        if width == HOUR_S:
            rows = await self._store.rollups(
                RollupQuery(HOUR_S, w.start, w.end, v, n, group_by=("bucket",))
            )
            sums = {r.group: r.sums for r in rows}
        else:
            sums = await self._sum(w, v, n, ("bucket",), day=True)
        return [(p, metrics(sums.get((p,), Sums()))) for p in points]

    async def log(self, query: LogQuery) -> tuple[list[UsageEvent], str | None]:
        """One page of the request log and the cursor of the next (``None`` at the end)."""
        page = await self._store.log(replace(query, limit=query.limit + 1))
        more = len(page) > query.limit
        page = page[: query.limit]
        nxt = encode_cursor(Cursor(page[-1].created_at, page[-1].request_id)) if more else None
        return page, nxt

    async def log_pages(self, query: LogQuery, *, max_rows: int) -> AsyncIterator[list[UsageEvent]]:
        """The whole request log of the query (at most ``max_rows``), page by page, for
        export; each page is one keyset query."""
        sent = 0
        after = query.after
        while sent < max_rows:
            page = await self._store.log(
                replace(query, after=after, limit=min(query.limit, max_rows - sent))
            )
            if not page:
                return
            yield page
            sent += len(page)
            after = Cursor(page[-1].created_at, page[-1].request_id)

    async def event(self, request_id: str, v: Visibility) -> UsageEvent | None:
        return await self._store.event(request_id, v)
