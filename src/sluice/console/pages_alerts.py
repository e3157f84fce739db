"""Alerts: the budget and breaker alerts this person may see (admins: all), newest first
and paged; admins send a test alert to every webhook or to one, through the alert service."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.console.pages_audit import audit_names
from sluice.control.alerts import send_test, visibility
from sluice.errors import GatewayError

ALERT_ROWS = 50


def routes(ctx: ConsoleContext) -> list[Route]:
    alerts = ctx.control.alerts

    async def render(
        request: Request, viewer: Viewer, *, status: int = 200, errors: dict[str, str] | None = None
    ) -> Response:
        p = viewer.principal
        member_orgs: frozenset[str] = frozenset()
        if not p.is_admin and p.teams:
            directory = await ctx.control.tenancy.directory()
            member_orgs = frozenset(t.org_id for t in directory.teams if t.id in p.teams)
        raw = request.query_params.get("before_id", "")
        before = int(raw) if raw.isdigit() and len(raw) < 19 else None
        query = replace(visibility(p, member_orgs), before_id=before, limit=ALERT_ROWS)
        rows = await alerts.repo.list(query)
        older = None
        if len(rows) == ALERT_ROWS and rows[-1].id is not None:
            older = "?" + urlencode({"before_id": rows[-1].id})
        return ctx.render(
            request,
            "alerts.html",
            viewer,
            status=status,
            alerts=rows,
            names=await audit_names(ctx),
            webhooks=alerts.sender.names if p.is_admin else [],
            older=older,
            paged=before is not None,
            errors=errors or {},
        )

    async def page(request: Request) -> Response:
        return await render(request, await ctx.viewer(request))

    async def test(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        form = await ctx.form(request, viewer)
        try:
            only = forms.text(form, "webhook", required=False, max_len=64) or None
            await send_test(alerts, viewer.principal, only=only)
        except GatewayError as exc:
            return await render(
                request, viewer, status=exc.status, errors=field_errors(exc, "webhook")
            )
        return redirect("/ui/alerts", "alert_test")

    return [
        Route("/ui/alerts", page, methods=["GET"]),
        Route("/ui/alerts/test", test, methods=["POST"]),
    ]
