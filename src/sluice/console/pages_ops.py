"""Admin operations: models and deployments with live health and breaker state, routing
policies (list, reload), provider credentials (masked; set, delete), and a
read-only view of the settings with secrets masked."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.console import forms
from sluice.console.context import SECURITY_HEADERS, ConsoleContext, field_errors, redirect
from sluice.console.pages_admin import admin_viewer
from sluice.errors import GatewayError
from sluice.routing.report import deployment_report

SECRET_SETTINGS = ("master_key", "secret_key")
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def masked_settings(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Every setting as text; secrets shown as set or not, passwords cut out of URLs."""
    out = []
    for name, value in sorted(values.items()):
        if name in SECRET_SETTINGS:
            text = "set (hidden)" if value else "not set"
        elif isinstance(value, str) and "://" in value:
            text = _URL_PASSWORD.sub(r"\1****@", value)
        else:
            text = "—" if value is None else str(value)
        out.append((name, text))
    return out


def routes(ctx: ConsoleContext) -> list[Route]:
    control = ctx.control

    async def models(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        return ctx.render(
            request, "admin_models.html", viewer, report=deployment_report(control.router)
        )

    async def models_json(request: Request) -> Response:
        admin_viewer(await ctx.viewer(request))
        return JSONResponse(deployment_report(control.router), headers=SECURITY_HEADERS)

    async def routing(request: Request, *, result: dict[str, Any] | None = None) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        engine = control.policies.engine
        return ctx.render(
            request,
            "admin_routing.html",
            viewer,
            enabled=engine.enabled,
            generation=engine.generation,
            policies=[p.as_dict() for p in engine.policies()],
            files=control.config.routing.policies,
            result=result,
        )

    async def routing_page(request: Request) -> Response:
        return await routing(request)

    async def reload(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        await ctx.form(request, viewer)
        result = await control.policies.reload(viewer.principal)
        return await routing(request, result=result.as_dict())

    async def providers(
        request: Request,
        *,
        status: int = 200,
        errors: dict[str, str] | None = None,
        which: str = "",
    ) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        listed = await control.credentials.list(viewer.principal)
        return ctx.render(
            request,
            "admin_providers.html",
            viewer,
            status=status,
            providers=listed,
            errors=errors or {},
            which=which,
            can_store=control.credentials.can_store,
        )

    async def providers_page(request: Request) -> Response:
        return await providers(request)

    async def set_credential(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        name = request.path_params["name"]
        try:
            key = forms.text(form, "api_key", max_len=4096)
            await control.credentials.store(viewer.principal, name, key)
        except GatewayError as exc:
            return await providers(
                request, status=exc.status, errors=field_errors(exc, "api_key"), which=name
            )
        return redirect("/ui/admin/providers", "credential")

    async def delete_credential(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        await ctx.form(request, viewer)
        name = request.path_params["name"]
        try:
            await control.credentials.remove(viewer.principal, name)
        except GatewayError as exc:
            return await providers(
                request, status=exc.status, errors=field_errors(exc, "api_key"), which=name
            )
        return redirect("/ui/admin/providers", "credential_removed")

    async def settings(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        cfg = control.config
        return ctx.render(
            request,
            "admin_settings.html",
            viewer,
            settings=masked_settings(control.settings.model_dump()),
            routing=cfg.routing.model_dump(exclude={"wildcards", "policies"}),
            model_count=len(cfg.models),
            provider_count=len(cfg.providers),
            redis=control.shared_state,
        )

    return [
        Route("/ui/admin/models", models, methods=["GET"]),
        Route("/ui/admin/models.json", models_json, methods=["GET"]),
        Route("/ui/admin/routing", routing_page, methods=["GET"]),
        Route("/ui/admin/routing/reload", reload, methods=["POST"]),
        Route("/ui/admin/providers", providers_page, methods=["GET"]),
        Route("/ui/admin/providers/{name}/credential", set_credential, methods=["POST"]),
        Route("/ui/admin/providers/{name}/credential/delete", delete_credential, methods=["POST"]),
        Route("/ui/admin/settings", settings, methods=["GET"]),
    ]
