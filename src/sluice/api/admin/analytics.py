"""Usage analytics: summary, breakdowns, series, the request log and its CSV export.

Scoped by role (``sluice.analytics.scope``); every range is UTC and hour-aligned.
"""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the aliases are local to `router()`.

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from sluice.analytics import scope as scoping
from sluice.analytics.cache import CacheQuery
from sluice.analytics.export import csv_chunks
from sluice.analytics.mcp import McpQuery
from sluice.analytics.model import LogQuery, Narrow, Visibility, Window
from sluice.analytics.service import decode_cursor
from sluice.analytics.units import UnitQuery
from sluice.api.admin.analytics_schemas import (
    BodyOut,
    BreakdownOut,
    CacheRowOut,
    CacheUsageOut,
    GroupOut,
    McpToolOut,
    McpToolsOut,
    MetricsOut,
    PointOut,
    RequestDetail,
    RequestOut,
    RequestPage,
    SeriesOut,
    SummaryOut,
    UnitRowOut,
    UnitUsageOut,
)
from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import IsoDateTime
from sluice.auth.principal import Principal
from sluice.config.mcp import SERVER_NAME
from sluice.errors import BadRequest
from sluice.tenancy import rules

SCOPED = (
    "own usage for everyone; team admins also their teams', org admins their orgs', admins "
    "all; scope=... of an invisible object 404, of a visible one you do not administer 403"
)
MAX_EXPORT_ROWS = 1_000_000


@dataclass(frozen=True, slots=True)
class Asked:
    window: Window
    """Hour-aligned, for the rollups."""
    start: float
    end: float
    """The range as given (defaults: the window's), for the request log."""
    visibility: Visibility
    narrow: Narrow


def _utc(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # a time without a zone is UTC
    return moment


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["analytics"], prefix="/analytics")
    Actor = Annotated[Principal, Depends(ctx.actor)]
    service = ctx.control.analytics

    async def asked(
        *,
        actor: Actor,
        start: Annotated[
            IsoDateTime | None,
            Query(
                alias="from",
                description="ISO 8601 start (UTC when no zone); default 30 days before `to`",
            ),
        ] = None,
        end: Annotated[
            IsoDateTime | None,
            Query(alias="to", description="ISO 8601 end; default the end of today (UTC)"),
        ] = None,
        scope: Annotated[
            str | None, Query(description="global, org:ID, team:ID, user:ID or key:ID")
        ] = None,
        model: Annotated[str | None, Query(max_length=200)] = None,
        provider: Annotated[str | None, Query(max_length=100)] = None,
        org_id: Annotated[str | None, Query(max_length=64)] = None,
        team_id: Annotated[str | None, Query(max_length=64)] = None,
        user_id: Annotated[str | None, Query(max_length=64)] = None,
        key_id: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Asked:
        start, end = _utc(start), _utc(end)
        window = service.window(start, end)
        base = await scoping.narrow_to(actor, scope, tenancy=ctx.tenancy, keys=ctx.keys)
        narrow = scoping.combine(
            base,
            org_id=org_id,
            team_id=team_id,
            user_id=user_id,
            key_id=key_id,
            model=model,
            provider=provider,
        )
        return Asked(
            window,
            start.timestamp() if start else window.start,
            end.timestamp() if end else window.end,
            scoping.visibility(actor),
            narrow,
        )

    Ask = Annotated[Asked, Depends(asked)]

    @api.get("/summary", response_model=SummaryOut, **policy(SCOPED))
    async def summary(q: Ask) -> SummaryOut:
        m = await service.summary(q.window, q.visibility, q.narrow)
        return SummaryOut(
            start=_at(q.window.start), end=_at(q.window.end), **MetricsOut.of(m).model_dump()
        )

    @api.get("/breakdown", response_model=BreakdownOut, **policy(SCOPED))
    async def breakdown(
        q: Ask,
        by: Annotated[str, Query(description="model, provider, org, team, user or key")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> BreakdownOut:
        rows, truncated = await service.breakdown(
            q.window, q.visibility, q.narrow, by=by, limit=limit
        )
        return BreakdownOut(
            start=_at(q.window.start),
            end=_at(q.window.end),
            by=by,
            data=[GroupOut(value=v, **MetricsOut.of(m).model_dump()) for v, m in rows],
            truncated=truncated,
        )

    @api.get("/series", response_model=SeriesOut, **policy(SCOPED))
    async def series(
        q: Ask, interval: Annotated[str, Query(description="hour or day")] = "day"
    ) -> SeriesOut:
        points = await service.series(q.window, q.visibility, q.narrow, interval=interval)
        return SeriesOut(
            start=_at(q.window.start),
            end=_at(q.window.end),
            interval=interval,
            data=[PointOut(bucket=_at(b), **MetricsOut.of(m).model_dump()) for b, m in points],
        )

    @api.get("/mcp", response_model=McpToolsOut, **policy(SCOPED))
    async def mcp_tools(
        q: Ask,
        server: Annotated[
            str | None,
            Query(max_length=64, pattern=SERVER_NAME.pattern, description="only this server"),
        ] = None,
    ) -> McpToolsOut:
        query = McpQuery(q.start, q.end, q.visibility, q.narrow, server=server)
        rows = await service.mcp_tools(query)
        return McpToolsOut(
            start=_at(q.start),
            end=_at(q.end),
            data=[McpToolOut(**asdict(r)) for r in rows],
        )

    @api.get("/cache", response_model=CacheUsageOut, **policy(SCOPED))
    async def cache_usage(q: Ask) -> CacheUsageOut:
        """Response-cache requests, hits, hit rate and savings per model and team."""
        rows = await service.cache_usage(CacheQuery(q.start, q.end, q.visibility, q.narrow))
        return CacheUsageOut(
            start=_at(q.start), end=_at(q.end), data=[CacheRowOut.of(r) for r in rows]
        )

    @api.get("/units", response_model=UnitUsageOut, **policy(SCOPED))
    async def unit_usage(q: Ask) -> UnitUsageOut:
        """Billed units of media requests (audio seconds, speech characters, images, rerank
        searches) per endpoint, model and unit, with their cost."""
        rows = await service.unit_usage(UnitQuery(q.start, q.end, q.visibility, q.narrow))
        return UnitUsageOut(
            start=_at(q.start),
            end=_at(q.end),
            data=[
                UnitRowOut(
                    endpoint=r.endpoint,
                    model=r.model,
                    unit_kind=r.unit_kind,
                    requests=r.requests,
                    units=r.units,
                    cost_usd=r.cost_micros / 1_000_000,
                )
                for r in rows
            ],
        )

    def log_query(q: Asked, status: str | None, cursor: str | None, limit: int) -> LogQuery:
        code: int | None = None
        errors_only: bool | None = None
        if status in ("error", "ok"):
            errors_only = status == "error"
        elif status is not None:
            if not status.isdigit() or not 100 <= int(status) <= 599:
                raise BadRequest("status must be an HTTP status, error or ok", param="status")
            code = int(status)
        return LogQuery(
            start=q.start,
            end=q.end,
            visibility=q.visibility,
            narrow=q.narrow,
            status=code,
            errors_only=errors_only,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit,
        )

    Status = Annotated[
        str | None, Query(description="an HTTP status, error (>= 400) or ok (< 400)")
    ]

    @api.get("/requests", response_model=RequestPage, **policy(SCOPED))
    async def requests(
        q: Ask,
        status: Status = None,
        cursor: Annotated[str | None, Query(max_length=400)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> RequestPage:
        page, nxt = await service.log(log_query(q, status, cursor, limit))
        return RequestPage(data=[RequestOut.of(e) for e in page], next_cursor=nxt)

    @api.get(
        "/requests.csv",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}},
        **policy(SCOPED),
    )
    async def requests_csv(
        q: Ask,
        status: Status = None,
        max_rows: Annotated[int, Query(ge=1, le=MAX_EXPORT_ROWS)] = MAX_EXPORT_ROWS,
    ) -> StreamingResponse:
        query = log_query(q, status, None, 1000)
        pages = service.log_pages(query, max_rows=max_rows)
        name = f"sluice-requests-{_at(q.window.start):%Y%m%d%H}-{_at(q.window.end):%Y%m%d%H}.csv"
        return StreamingResponse(
            csv_chunks(pages),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @api.get(
        "/requests/{request_id}",
        response_model=RequestDetail,
        **policy("the row's owner, its team's and org's admins, admins (404 otherwise)"),
    )
    async def request_detail(actor: Actor, request_id: str) -> RequestDetail:
        event = await service.event(request_id, scoping.visibility(actor))
        if event is None:
            raise rules.not_found("request", request_id)
        body = await ctx.control.records.bodies.get(request_id)
        return RequestDetail(
            **RequestOut.of(event).model_dump(),
            body=BodyOut(request=body.request, response=body.response, truncated=body.truncated)
            if body is not None
            else None,
        )

    return api
