"""Team (team-admins, and org-admins and admins for their teams): members and roles,
service accounts and their keys, the team's limits and model access within the org's caps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.auth.service import CreatedKey
from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.console.pages_keys import key_view
from sluice.errors import BadRequest, GatewayError
from sluice.tenancy import rules
from sluice.tenancy.model import Governance, Team, TeamRole

Work = Callable[[Viewer, Team, FormData, Mapping[str, Any]], Awaitable[CreatedKey | None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def routes(ctx: ConsoleContext) -> list[Route]:
    t = ctx.control.tenancy
    keys = ctx.control.keys
    clock = ctx.control.clock

    async def team_for(viewer: Viewer, team_id: str) -> Team:
        """404 when the team is not visible; 403 when visible but not administered."""
        team = await t.visible_team(viewer.principal, team_id)
        if not rules.is_team_admin(viewer.principal, team):
            raise rules.forbidden("only this team's admins manage it")
        return team

    async def render(
        request: Request,
        viewer: Viewer,
        team: Team,
        *,
        status: int = 200,
        created: CreatedKey | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        form_id: str = "",
    ) -> Response:
        p = viewer.principal
        directory = await t.directory()
        users = {u.id: u for u in directory.users}
        members = [
            (users[m.user_id], m.role.value)
            for m in directory.memberships
            if m.team_id == team.id and m.user_id in users
        ]
        in_team = {u.id for u, _ in members}
        candidates = [
            u
            for u in directory.users
            if u.id not in in_team and await t.may_see_user(p, u, directory)
        ]
        accounts = [s for s in directory.service_accounts if s.team_id == team.id]
        owners = {s.id: s.name for s in accounts}
        now = clock.now()
        sa_keys = [
            key_view(r, now, owners) for r in await keys.list(p) if r.service_account_id in owners
        ]
        org = next((o for o in directory.orgs if o.id == team.org_id), None)
        return ctx.render(
            request,
            "team.html",
            viewer,
            status=status,
            team=team,
            org=org,
            members=members,
            candidates=candidates,
            accounts=accounts,
            sa_keys=sa_keys,
            created=created,
            errors=errors or {},
            form_id=form_id,
            values=values or forms.governance_values(team.governance),
            caps=org.governance if org else Governance(),
        )

    async def pick(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        if len(viewer.admin_teams) == 1:
            return redirect(f"/ui/team/{viewer.admin_teams[0].id}")
        if not viewer.admin_teams:
            raise rules.forbidden("you administer no team")
        orgs = ctx.control.cache.index.orgs
        return ctx.render(request, "team_pick.html", viewer, teams=viewer.admin_teams, orgs=orgs)

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        return await render(request, viewer, await team_for(viewer, request.path_params["team_id"]))

    def action(kind: str) -> Callable[[Work], Endpoint]:
        """A POST on a team: CSRF, the team's access check, the change, then back to the
        page (or the page again with the error next to its field)."""

        def wrap(work: Work) -> Endpoint:
            async def handler(request: Request) -> Response:
                viewer = await ctx.viewer(request)
                form = await ctx.form(request, viewer)
                team = await team_for(viewer, request.path_params["team_id"])
                try:
                    created = await work(viewer, team, form, request.path_params)
                except GatewayError as exc:
                    return await render(
                        request,
                        viewer,
                        team,
                        status=exc.status,
                        errors=field_errors(exc),
                        form_id=kind,
                        values={
                            **forms.governance_values(team.governance),
                            **forms.submitted(form),
                        },
                    )
                if isinstance(created, CreatedKey):
                    return await render(request, viewer, team, status=201, created=created)
                return redirect(f"/ui/team/{team.id}", kind)

            return handler

        return wrap

    base = "/ui/team/{team_id}"
    return [
        *_work_routes(ctx, action),
        Route("/ui/team", pick, methods=["GET"]),
        Route(base, page, methods=["GET"]),
    ]


def _work_routes(
    ctx: ConsoleContext, action: Callable[[str], Callable[[Work], Endpoint]]
) -> list[Route]:
    t = ctx.control.tenancy
    keys = ctx.control.keys
    clock = ctx.control.clock
    base = "/ui/team/{team_id}"

    @action("member")
    async def set_member(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        user_id = forms.text(form, "user_id")
        role = forms.text(form, "role")
        if role not in (r.value for r in TeamRole):
            raise BadRequest("role must be member or team_admin", param="role")
        await t.set_member(viewer.principal, team.id, user_id, TeamRole(role))
        return None

    @action("member_removed")
    async def remove_member(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        await t.remove_member(viewer.principal, team.id, params["user_id"])
        return None

    @action("service_account")
    async def create_sa(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        await t.create_service_account(viewer.principal, team.id, forms.text(form, "sa_name"))
        return None

    @action("service_account_deleted")
    async def delete_sa(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        await t.delete_service_account(viewer.principal, params["sa_id"])
        return None

    @action("sa_key")
    async def create_sa_key(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        return await keys.create(
            viewer.principal,
            name=forms.text(form, "key_name"),
            now=clock.now(),
            team_id=None,
            user_id=None,
            service_account_id=params["sa_id"],
            expires_at=None,
            gov=Governance(),
            metadata={"created_by": "console"},
        )

    @action("limits")
    async def governance(
        viewer: Viewer, team: Team, form: FormData, params: Mapping[str, Any]
    ) -> CreatedKey | None:
        gov = forms.governance(form, team.governance, ctx.control.table.canonical)
        await t.update_team(viewer.principal, team.id, name=None, gov=gov)
        return None

    return [
        Route(base + "/members", set_member, methods=["POST"]),
        Route(base + "/members/{user_id}/remove", remove_member, methods=["POST"]),
        Route(base + "/service-accounts", create_sa, methods=["POST"]),
        Route(base + "/service-accounts/{sa_id}/delete", delete_sa, methods=["POST"]),
        Route(base + "/service-accounts/{sa_id}/keys", create_sa_key, methods=["POST"]),
        Route(base + "/limits", governance, methods=["POST"]),
    ]
