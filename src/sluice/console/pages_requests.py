"""Requests (everyone, scoped): the request log with filters and keyset pages, one
request's detail, and the CSV export of what the filters select.

The filters offered follow the scope (a person's own log has no user or team filter); a
value that is not one of the scope's keys, users or teams is shown as an error next to its
field. A request outside what the person may see answers 404, whatever the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sluice.analytics import scope as scoping
from sluice.analytics.export import csv_chunks
from sluice.analytics.model import LogQuery, Narrow
from sluice.analytics.service import decode_cursor
from sluice.auth.keys import KeyRecord
from sluice.console import usage_scope
from sluice.console.context import ConsoleContext, Viewer, field_errors, not_found
from sluice.console.pages_usage import names
from sluice.console.usage_scope import PRESETS, DateRange, ScopeChoice
from sluice.errors import BadRequest

PAGE_ROWS = 50
MAX_BACK = 20
"""Pages remembered for "Previous" (older ones start again from the newest page)."""
MAX_EXPORT_ROWS = 100_000
FILTERS = ("model", "status", "key_id", "user_id", "team_id")


@dataclass
class Options:
    """What each filter may be set to within the scope (id → display name)."""

    keys: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)


def options(
    ctx: ConsoleContext, chosen: ScopeChoice, keys: list[KeyRecord], viewer: Viewer
) -> Options:
    index = ctx.control.cache.index
    ident = chosen.ident
    if chosen.kind == "own":
        mine = [k for k in keys if k.user_id == viewer.user.id]
        return Options(keys={k.id: k.name for k in mine})
    if chosen.kind == "team":
        members = {
            uid for uid, ms in index.memberships.items() if any(m.team_id == ident for m in ms)
        }
        return Options(
            keys={k.id: k.name for k in keys if k.team_id == ident or k.user_id in members},
            users={u: index.users[u].email for u in sorted(members) if u in index.users},
        )
    if chosen.kind == "org":
        teams = {t.id: t.name for t in index.teams.values() if t.org_id == ident}
        members = {
            uid for uid, ms in index.memberships.items() if any(m.team_id in teams for m in ms)
        }
        return Options(
            keys={k.id: k.name for k in keys if k.team_id in teams or k.user_id in members},
            users={u: index.users[u].email for u in sorted(members) if u in index.users},
            teams=teams,
        )
    return Options(
        keys={k.id: k.name for k in keys},
        users={u.id: u.email for u in index.users.values()},
        teams={t.id: t.name for t in index.teams.values()},
    )


def _choice(params: QueryParams, name: str, allowed: dict[str, str], what: str) -> str | None:
    value = (params.get(name) or "").strip() or None
    if value is not None and value not in allowed:
        raise BadRequest(f"{value[:64]!r} is not a {what} in this scope", param=name)
    return value


def _status(params: QueryParams) -> tuple[int | None, bool | None]:
    value = (params.get("status") or "").strip()
    if not value:
        return None, None
    if value in ("ok", "error"):
        return None, value == "error"
    if not value.isdigit() or not 100 <= int(value) <= 599:
        raise BadRequest("status must be ok, error or an HTTP status (100-599)", param="status")
    return int(value), None


def log_query(
    params: QueryParams, span: DateRange, base: Narrow, opts: Options, viewer: Viewer
) -> LogQuery:
    """The filters as a log query; the first bad field raises ``BadRequest`` naming it."""
    model = (params.get("model") or "").strip() or None
    if model is not None and len(model) > 200:
        raise BadRequest("model may have at most 200 characters", param="model")
    code, errors_only = _status(params)
    narrow = scoping.combine(
        base,
        model=model,
        key_id=_choice(params, "key_id", opts.keys, "key"),
        user_id=_choice(params, "user_id", opts.users, "user"),
        team_id=_choice(params, "team_id", opts.teams, "team"),
    )
    cursor = (params.get("cursor") or "").strip()
    return LogQuery(
        start=span.start,
        end=span.end,
        visibility=scoping.visibility(viewer.principal),
        narrow=narrow,
        status=code,
        errors_only=errors_only,
        after=decode_cursor(cursor) if cursor else None,
        limit=PAGE_ROWS,
    )


def inline(exc: BadRequest) -> dict[str, str]:
    """The error next to its field, or above the form for one without a field (cursor)."""
    errors = field_errors(exc, "range")
    return {
        (k if k in ("scope", "from", "to", *FILTERS) else "range"): v for k, v in errors.items()
    }


def routes(ctx: ConsoleContext) -> list[Route]:
    service = ctx.control.analytics

    @dataclass(frozen=True, slots=True)
    class Asked:
        chosen: ScopeChoice
        offered: list[ScopeChoice]
        keys: list[KeyRecord]
        opts: Options
        span: DateRange
        query: LogQuery

    async def prepare(request: Request, viewer: Viewer) -> Asked:
        """Scope, filter options, range and the log query; ``BadRequest`` names a bad field."""
        params = request.query_params
        chosen, base, offered = await usage_scope.resolve(ctx, viewer, params.get("scope"))
        keys = await ctx.control.keys.list(viewer.principal)
        opts = options(ctx, chosen, keys, viewer)
        span = usage_scope.parse_range(params, ctx.control.clock.now())
        query = log_query(params, span, base, opts, viewer)
        return Asked(chosen, offered, keys, opts, span, query)

    def values_of(params: QueryParams) -> dict[str, str]:
        return {k: params.get(k, "") for k in ("scope", "from", "to", "range", *FILTERS)}

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        params = request.query_params
        values = values_of(params)
        try:
            asked = await prepare(request, viewer)
        except BadRequest as exc:
            offered = usage_scope.choices(ctx, viewer)
            chosen = next((c for c in offered if c.value == values["scope"]), offered[0])
            keys = await ctx.control.keys.list(viewer.principal)
            return ctx.render(
                request,
                "requests.html",
                viewer,
                status=exc.status,
                chosen=chosen,
                offered=offered,
                opts=options(ctx, chosen, keys, viewer),
                presets=list(PRESETS),
                rows=None,
                errors=inline(exc),
                values={**values, **usage_scope.kept_range(params, ctx.control.clock.now())},
            )
        rows, nxt = await service.log(asked.query)
        keep = {k: v for k, v in values.items() if v}
        if not (values["from"] or values["to"]):
            keep.update(asked.span.query())
        back = [c for c in (params.get("back") or "").split(",") if c][-MAX_BACK:]
        here = (params.get("cursor") or "").strip()
        next_link = (
            urlencode({**keep, "cursor": nxt, "back": ",".join([*back, here or "-"])})
            if nxt
            else None
        )
        prev_link: str | None = None
        if here:
            prev = back[-1] if back else "-"
            older = {"cursor": prev} if prev != "-" else {}
            prev_link = urlencode({**keep, **older, "back": ",".join(back[:-1])})
        return ctx.render(
            request,
            "requests.html",
            viewer,
            chosen=asked.chosen,
            offered=asked.offered,
            opts=asked.opts,
            presets=list(PRESETS),
            span=asked.span,
            rows=rows,
            shown=names(ctx, asked.keys),
            next_link=next_link,
            prev_link=prev_link,
            export_link=urlencode(keep),
            values={**values, "from": asked.span.from_value, "to": asked.span.to_value},
        )

    async def export(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        asked = await prepare(request, viewer)
        span = asked.span
        pages = service.log_pages(asked.query, max_rows=MAX_EXPORT_ROWS)
        name = f"sluice-requests-{span.start_dt():%Y%m%d%H}-{span.end_dt():%Y%m%d%H}.csv"
        return StreamingResponse(
            csv_chunks(pages),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}"',
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
            },
        )

    async def detail(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        request_id = request.path_params["request_id"]
        event = await service.event(request_id, scoping.visibility(viewer.principal))
        if event is None:
            raise not_found("request", request_id)
        body = await ctx.control.records.bodies.get(request_id)
        shown: dict[str, Any] = names(ctx, await ctx.control.keys.list(viewer.principal))
        return ctx.render(request, "request.html", viewer, e=event, body=body, shown=shown)

    return [
        Route("/ui/requests", page, methods=["GET"]),
        Route("/ui/requests.csv", export, methods=["GET"]),
        Route("/ui/requests/{request_id}", detail, methods=["GET"]),
    ]
