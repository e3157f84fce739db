"""Admin: organisations, global limits, users (roles, initial passwords)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.console import forms
from sluice.console.context import ConsoleContext, Viewer, field_errors, redirect
from sluice.console.spend import month_spend
from sluice.errors import GatewayError
from sluice.tenancy import rules
from sluice.tenancy.model import Governance

Work = Callable[[Viewer, FormData, dict[str, str]], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


def admin_viewer(viewer: Viewer) -> Viewer:
    if not viewer.principal.is_admin:
        raise rules.forbidden("only admins see the admin pages")
    return viewer


async def _terms_accepted(ctx: ConsoleContext, viewer: Viewer) -> dict[str, float]:
    """User id → when they accepted the current terms (none configured: empty)."""
    current = ctx.control.terms.current
    if current is None:
        return {}
    rows = await ctx.control.terms.acceptances(viewer.principal, version=current.version)
    return {r.acceptance.user_id: r.acceptance.accepted_at for r in rows}


def routes(ctx: ConsoleContext) -> list[Route]:
    t = ctx.control.tenancy

    async def render(
        request: Request,
        viewer: Viewer,
        template: str,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
        form_id: str = "",
    ) -> Response:
        p = viewer.principal
        directory = await t.directory()
        extra: dict[str, object] = {}
        archived = request.query_params.get("archived") == "1"
        extra["archived"] = archived
        if template == "admin_orgs.html":
            orgs = await t.list_orgs(p, archived=archived)
            extra["orgs"] = orgs
            extra["team_count"] = {
                o.id: sum(1 for x in directory.teams if x.org_id == o.id) for o in orgs
            }
            extra["spend"] = await month_spend(ctx, viewer, by="org", ids=(o.id for o in orgs))
            values = values or forms.governance_values(await t.global_governance())
        else:
            with_password = await ctx.repo.users_with_password()
            users = await t.list_users(p, archived=archived)
            extra["users"] = [(u, u.id in with_password) for u in users]
            extra["spend"] = await month_spend(ctx, viewer, by="user", ids=(u.id for u in users))
            extra["sign_ins"] = await ctx.control.sso.sign_ins()
            extra["orgs"] = directory.orgs
            extra["terms"] = ctx.control.terms.current
            extra["terms_accepted"] = await _terms_accepted(ctx, viewer)
        return ctx.render(
            request,
            template,
            viewer,
            status=status,
            errors=errors or {},
            values=values or {},
            form_id=form_id,
            **extra,
        )

    async def orgs_page(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        return await render(request, viewer, "admin_orgs.html")

    async def users_page(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        return await render(request, viewer, "admin_users.html")

    def action(kind: str, template: str, back: str) -> Callable[[Work], Endpoint]:
        def wrap(work: Work) -> Endpoint:
            async def handler(request: Request) -> Response:
                viewer = admin_viewer(await ctx.viewer(request))
                form = await ctx.form(request, viewer)
                try:
                    await work(viewer, form, dict(request.path_params))
                except GatewayError as exc:
                    return await render(
                        request,
                        viewer,
                        template,
                        status=exc.status,
                        errors=field_errors(exc),
                        values=forms.submitted(form),
                        form_id=kind,
                    )
                return redirect(back, kind)

            return handler

        return wrap

    @action("org", "admin_orgs.html", "/ui/admin")
    async def create_org(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        await t.create_org(viewer.principal, forms.text(form, "org_name"), Governance())

    @action("global", "admin_orgs.html", "/ui/admin")
    async def set_global(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        current = await t.global_governance()
        gov = forms.governance(form, current, ctx.control.table.canonical, mcp=False)
        await t.set_global_governance(viewer.principal, gov)

    return [
        *_work_routes(ctx, action),
        Route("/ui/admin", orgs_page, methods=["GET"]),
        Route("/ui/admin/orgs", create_org, methods=["POST"]),
        Route("/ui/admin/global", set_global, methods=["POST"]),
        Route("/ui/admin/users", users_page, methods=["GET"]),
    ]


def _work_routes(
    ctx: ConsoleContext, action: Callable[[str, str, str], Callable[[Work], Endpoint]]
) -> list[Route]:
    t = ctx.control.tenancy

    @action("user", "admin_users.html", "/ui/admin/users")
    async def create_user(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        address = forms.email(form)
        password = form.get("password")
        hashed = None
        if isinstance(password, str) and password:
            hashed = await asyncio.to_thread(ctx.passwords.hash, password)
        await t.create_user(
            viewer.principal,
            email=address,
            name=forms.text(form, "name", required=False) or address,
            org_id=forms.text(form, "org_id", required=False) or None,
            team_id=None,
            max_keys=None,
            gov=Governance(),
            password_hash=hashed,
        )

    @action("password", "admin_users.html", "/ui/admin/users")
    async def set_password(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        user = await t.visible_user(viewer.principal, params["user_id"])
        password = form.get("password")
        hashed = await asyncio.to_thread(
            ctx.passwords.hash, password if isinstance(password, str) else ""
        )
        await t.set_password(viewer.principal, user.id, hashed)

    @action("role", "admin_users.html", "/ui/admin/users")
    async def set_role(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        grant = forms.text(form, "admin") == "1"
        if not grant and params["user_id"] == viewer.user.id:
            raise rules.forbidden("you cannot take your own admin role (ask another admin)")
        await t.set_admin(viewer.principal, params["user_id"], grant)

    @action("disabled", "admin_users.html", "/ui/admin/users")
    async def set_disabled(viewer: Viewer, form: FormData, params: dict[str, str]) -> None:
        disabled = forms.text(form, "disabled") == "1"
        if disabled and params["user_id"] == viewer.user.id:
            raise rules.forbidden("you cannot disable yourself")
        user = await t.visible_user(viewer.principal, params["user_id"])
        await t.update_user(
            viewer.principal,
            user.id,
            name=None,
            disabled=disabled,
            max_keys=None,
            fields={"disabled"},
            gov=user.governance,
        )

    return [
        Route("/ui/admin/users", create_user, methods=["POST"]),
        Route("/ui/admin/users/{user_id}/password", set_password, methods=["POST"]),
        Route("/ui/admin/users/{user_id}/admin", set_role, methods=["POST"]),
        Route("/ui/admin/users/{user_id}/disabled", set_disabled, methods=["POST"]),
    ]
