"""Organisation (org-admins and admins): teams, users, the org's limits and budget, its
spend this month, its audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.analytics.scope import visibility
from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.console.pages_audit import audit_names
from sluice.console.spend import month_spend
from sluice.errors import GatewayError
from sluice.tenancy import rules
from sluice.tenancy.model import Governance, Org

AUDIT_ROWS = 50
Work = Callable[[Viewer, Org, FormData], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def routes(ctx: ConsoleContext) -> list[Route]:
    t = ctx.control.tenancy

    async def org_for(viewer: Viewer, org_id: str) -> Org:
        org = await t.visible_org(viewer.principal, org_id)
        if not rules.is_org_admin(viewer.principal, org.id):
            raise rules.forbidden("only this organisation's admins manage it")
        return org

    async def render(
        request: Request,
        viewer: Viewer,
        org: Org,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        form_id: str = "",
    ) -> Response:
        directory = await t.directory()
        teams = [x for x in directory.teams if x.org_id == org.id and x.archived_at is None]
        team_ids = {x.id for x in teams}
        team_names = {x.id: x.name for x in teams}
        users = {u.id: u for u in directory.users}
        people: dict[str, list[str]] = {}
        for m in directory.memberships:
            if m.team_id in team_ids and m.user_id in users:
                people.setdefault(m.user_id, []).append(f"{team_names[m.team_id]} ({m.role.value})")
        admins = {
            r.user_id
            for r in directory.org_roles
            if r.org_id == org.id and r.role.value == "org_admin"
        }
        # The same rollups and window as the Usage page's "this month" link, so they agree.
        analytics = ctx.control.analytics
        month = analytics.month_to_date()
        spent = await analytics.spend_by(
            month, visibility(viewer.principal), by="org", among=frozenset({org.id})
        )
        team_spend = await month_spend(ctx, viewer, by="team", ids=team_ids)
        user_spend = await month_spend(ctx, viewer, by="user", ids=people)
        audit = await t.audit_entries(
            viewer.principal, org_id=org.id, limit=AUDIT_ROWS, before_id=None
        )
        return ctx.render(
            request,
            "org.html",
            viewer,
            status=status,
            org=org,
            teams=teams,
            people=[(users[uid], where, uid in admins) for uid, where in people.items()],
            spent_usd=spent.get(org.id, 0) / 1e6,
            month_from=datetime.fromtimestamp(month.start, UTC).date().isoformat(),
            team_spend=team_spend,
            user_spend=user_spend,
            audit=audit,
            names=await audit_names(ctx),
            errors=errors or {},
            form_id=form_id,
            values=values or forms.governance_values(org.governance),
        )

    async def pick(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        orgs = await t.list_orgs(viewer.principal)
        mine = [o for o in orgs if rules.is_org_admin(viewer.principal, o.id)]
        if len(mine) == 1:
            return redirect(f"/ui/org/{mine[0].id}")
        if not mine:
            raise rules.forbidden("you administer no organisation")
        return ctx.render(request, "org_pick.html", viewer, orgs=mine)

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        return await render(request, viewer, await org_for(viewer, request.path_params["org_id"]))

    def action(kind: str) -> Callable[[Work], Endpoint]:
        def wrap(work: Work) -> Endpoint:
            async def handler(request: Request) -> Response:
                viewer = await ctx.viewer(request)
                form = await ctx.form(request, viewer)
                org = await org_for(viewer, request.path_params["org_id"])
                try:
                    await work(viewer, org, form)
                except GatewayError as exc:
                    return await render(
                        request,
                        viewer,
                        org,
                        status=exc.status,
                        errors=field_errors(exc),
                        form_id=kind,
                        values={**forms.governance_values(org.governance), **forms.submitted(form)},
                    )
                return redirect(f"/ui/org/{org.id}", kind)

            return handler

        return wrap

    @action("team")
    async def create_team(viewer: Viewer, org: Org, form: FormData) -> None:
        await t.create_team(viewer.principal, org.id, forms.text(form, "team_name"), Governance())

    @action("user")
    async def create_user(viewer: Viewer, org: Org, form: FormData) -> None:
        address = forms.email(form)
        await t.create_user(
            viewer.principal,
            email=address,
            name=forms.text(form, "name", required=False) or address,
            org_id=org.id,
            team_id=forms.text(form, "team_id", required=False) or None,
            max_keys=None,
            gov=Governance(),
        )

    @action("limits")
    async def governance(viewer: Viewer, org: Org, form: FormData) -> None:
        gov = forms.governance(form, org.governance, ctx.control.table.canonical)
        await t.update_org(viewer.principal, org.id, name=None, gov=gov)

    base = "/ui/org/{org_id}"
    return [
        Route("/ui/org", pick, methods=["GET"]),
        Route(base, page, methods=["GET"]),
        Route(base + "/teams", create_team, methods=["POST"]),
        Route(base + "/users", create_user, methods=["POST"]),
        Route(base + "/limits", governance, methods=["POST"]),
    ]
