"""Admin: the sign-in mapping of every identity provider (read-only, from the config) and
its dry run (the same function as every sign-in; nothing is written)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.console.context import ConsoleContext
from sluice.console.pages_admin import admin_viewer
from sluice.errors import GatewayError


def routes(ctx: ConsoleContext) -> list[Route]:
    sso = ctx.control.sso

    def rules() -> list[dict[str, Any]]:
        shown = []
        for name, idp in sso.login.providers.items():
            config = idp.config
            p = config.provisioning
            shown.append(
                {
                    "name": name,
                    "display_name": config.display_name,
                    "issuer": config.issuer,
                    "groups_claim": config.claims.groups,
                    "default_org": config.default_org,
                    "orgs": p.orgs,
                    "org_rules": [(r.match, r.org, r.create) for r in p.org_rules],
                    "admin_groups": p.admin_groups,
                    "org_admin_groups": p.org_admin_groups,
                    "teams": [(r.match, r.team) for r in p.teams],
                    "sync_manual_teams": p.sync_manual_teams,
                    "allowed_domains": p.allowed_domains,
                }
            )
        return shown

    async def page(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        return ctx.render(request, "admin_sso.html", viewer, idps=rules(), values={})

    async def check(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        values = {k: str(form.get(k) or "") for k in ("idp", "groups", "email")}
        groups = tuple(g.strip() for g in values["groups"].split(",") if g.strip())
        try:
            plan = await sso.check(
                values["idp"], groups=groups[:500], email=values["email"].strip() or None
            )
        except GatewayError as exc:
            return ctx.render(
                request,
                "admin_sso.html",
                viewer,
                status=exc.status,
                idps=rules(),
                values=values,
                errors={"_form": exc.message},
            )
        return ctx.render(request, "admin_sso.html", viewer, idps=rules(), values=values, plan=plan)

    return [
        Route("/ui/admin/sso", page, methods=["GET"]),
        Route("/ui/admin/sso/check", check, methods=["POST"]),
    ]
