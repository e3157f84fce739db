"""Usage (everyone, scoped): cards, charts per day or hour, the per-model breakdown, top
users / keys / teams, MCP tool calls per server and tool, and the burn-down of every budget
on the scope's levels.

Every number comes from :class:`~sluice.analytics.service.Analytics` called with the
signed-in person's visibility and the scope's filter, exactly as the admin API's
``/api/v1/analytics/...`` would answer them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.analytics import scope as scoping
from sluice.analytics.cache import CacheQuery
from sluice.analytics.mcp import McpQuery
from sluice.analytics.model import Metrics, Narrow, Visibility, Window
from sluice.analytics.units import UnitQuery
from sluice.auth.keys import KeyRecord
from sluice.console import burndown, usage_scope
from sluice.console.charts import BarChart, Series, TimeChart, bucket_labels
from sluice.console.context import ConsoleContext, Viewer, field_errors
from sluice.console.usage_scope import PRESETS, ScopeChoice
from sluice.errors import BadRequest

TOP_ROWS = 10
MODEL_ROWS = 12
MCP_ROWS = 50
"""Rows of the "MCP tool calls" table (the most called tools)."""
TOPS = {
    "own": ("key",),
    "team": ("user", "key"),
    "org": ("team", "user", "key"),
    "global": ("org", "team", "user", "key"),
}
"""Which top-N tables each scope shows (the groups that vary inside it)."""
TITLES = {"org": "Top organisations", "team": "Top teams", "user": "Top users", "key": "Top keys"}


@dataclass(frozen=True, slots=True)
class Group:
    label: str
    metrics: Metrics


def names(ctx: ConsoleContext, keys: list[KeyRecord]) -> dict[str, dict[str, str]]:
    """Display names per breakdown dimension, from the key cache's directory."""
    index = ctx.control.cache.index
    return {
        "org": {o.id: o.name for o in index.orgs.values()},
        "team": {t.id: t.name for t in index.teams.values()},
        "user": {u.id: u.email for u in index.users.values()},
        "key": {k.id: k.name for k in keys},
    }


def series_charts(points: list[tuple[int, Metrics]], interval: str) -> list[TimeChart]:
    labels, ticks = bucket_labels([b for b, _ in points], interval)
    per = "hour" if interval == "hour" else "day"
    ms = [m for _, m in points]

    def chart(cid: str, title: str, series: tuple[Series, ...], unit: Any) -> TimeChart:
        return TimeChart(cid, f"{title} per {per}", labels, ticks, series, unit)

    return [
        chart(
            "requests",
            "Requests",
            (
                Series("Requests", tuple(float(m.requests) for m in ms), "bar"),
                Series("Errors", tuple(float(m.errors) for m in ms), "bar"),
            ),
            "count",
        ),
        chart(
            "tokens",
            "Tokens",
            (
                Series("Input", tuple(float(m.input_tokens) for m in ms), "area"),
                Series("Output", tuple(float(m.output_tokens) for m in ms), "line"),
            ),
            "tokens",
        ),
        chart(
            "cost",
            "Cost",
            (Series("Cost", tuple(float(m.cost_micros) for m in ms), "area"),),
            "micros",
        ),
    ]


def routes(ctx: ConsoleContext) -> list[Route]:
    service = ctx.control.analytics

    async def groups(
        w: Window, v: Visibility, n: Narrow, *, by: str, shown: dict[str, str], limit: int
    ) -> list[Group]:
        rows, _ = await service.breakdown(w, v, n, by=by, limit=limit)
        return [Group(shown.get(value, value) if value else "(none)", m) for value, m in rows]

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        params = request.query_params
        values = {k: params.get(k, "") for k in ("scope", "from", "to", "range")}
        try:
            chosen, narrow, offered = await usage_scope.resolve(ctx, viewer, params.get("scope"))
        except BadRequest as exc:
            return render_error(request, viewer, exc, values)
        try:
            span = usage_scope.parse_range(params, ctx.control.clock.now())
            window = service.window(span.start_dt(), span.end_dt())
        except BadRequest as exc:
            return render_error(request, viewer, exc, values, chosen=chosen, offered=offered)
        data = await collect(viewer, chosen, narrow, window, span.interval)
        link = {"scope": chosen.value, **span.query()}
        return ctx.render(
            request,
            "usage.html",
            viewer,
            chosen=chosen,
            offered=offered,
            span=span,
            presets=list(PRESETS),
            window=window,
            scope_query=urlencode({"scope": chosen.value}),
            range_query=urlencode(link),
            values={**values, "from": span.from_value, "to": span.to_value},
            **data,
        )

    def render_error(
        request: Request,
        viewer: Viewer,
        exc: BadRequest,
        values: dict[str, str],
        *,
        chosen: ScopeChoice | None = None,
        offered: list[ScopeChoice] | None = None,
    ) -> Response:
        offered = offered or usage_scope.choices(ctx, viewer)
        values = {**values, **usage_scope.kept_range(request.query_params, ctx.control.clock.now())}
        return ctx.render(
            request,
            "usage.html",
            viewer,
            status=exc.status,
            chosen=chosen or offered[0],
            offered=offered,
            span=None,
            presets=list(PRESETS),
            errors=field_errors(exc, "range"),
            values=values,
        )

    async def collect(
        viewer: Viewer, chosen: ScopeChoice, narrow: Narrow, window: Window, interval: str
    ) -> dict[str, Any]:
        v = scoping.visibility(viewer.principal)
        keys = await ctx.control.keys.list(viewer.principal)
        shown = names(ctx, keys)
        # The dashboard's queries are independent: run them at once (each on its own pooled
        # connection), so the page waits for the slowest, not for their sum.
        dims = TOPS[chosen.kind]
        summary, points, models, top_groups, raw_rows = await asyncio.gather(
            service.summary(window, v, narrow),
            service.series(window, v, narrow, interval=interval),
            groups(window, v, narrow, by="model", shown={}, limit=MODEL_ROWS),
            asyncio.gather(
                *(groups(window, v, narrow, by=by, shown=shown[by], limit=TOP_ROWS) for by in dims)
            ),
            asyncio.gather(  # from the raw rows
                service.mcp_tools(McpQuery(window.start, window.end, v, narrow)),
                service.cache_usage(CacheQuery(window.start, window.end, v, narrow)),
                service.unit_usage(UnitQuery(window.start, window.end, v, narrow)),
            ),
        )
        mcp_tools, cache_rows, units = raw_rows
        by_cost = any(g.metrics.cost_micros for g in models)
        model_chart = BarChart(
            "models",
            "Cost per model" if by_cost else "Requests per model",
            tuple(g.label for g in models),
            tuple(float(g.metrics.cost_micros if by_cost else g.metrics.requests) for g in models),
            "micros" if by_cost else "count",
        )
        tops = [(TITLES[by], rows) for by, rows in zip(dims, top_groups, strict=True)]
        gov = await ctx.control.tenancy.global_governance() if chosen.kind == "global" else None
        budgets = burndown.budgets_for(
            chosen, ctx.control.cache.index, keys, gov.budget if gov else None
        )
        now = ctx.control.clock.now()
        burns = [await burndown.burn(service, b, v=v, now=now) for b in budgets]
        return {
            "summary": summary,
            "charts": series_charts(points, interval),
            "models": models,
            "model_chart": model_chart,
            "tops": tops,
            "burns": burns,
            "mcp_tools": mcp_tools[:MCP_ROWS],
            "unit_rows": units[:MCP_ROWS],
            "cache_rows": [
                (r, shown["team"].get(r.team_id or "", r.team_id)) for r in cache_rows[:MCP_ROWS]
            ],
        }

    return [Route("/ui/usage", page, methods=["GET"])]
