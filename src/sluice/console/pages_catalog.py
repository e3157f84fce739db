"""Models: the catalogue everyone sees (the models they may use, with aliases, capabilities,
context window, prices and live status) and the admin's editor of the catalogue (add, edit,
remove models and providers written as in the config file; override a price; send one test
request to a deployment and see its answer, latency and cost).

Entries from the config file are shown read only; every change goes through the control
plane's catalogue service (validated like the file, audited, applied on every replica)."""

from __future__ import annotations

from typing import Any

import yaml
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.console import forms
from sluice.console.context import ConsoleContext, field_errors, redirect
from sluice.console.pages_admin import admin_viewer
from sluice.errors import BadRequest, GatewayError

MAX_YAML_CHARS = 65_536


def _yaml_mapping(form: FormData, name: str) -> dict[str, Any]:
    text = forms.text(form, name, max_len=MAX_YAML_CHARS)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise BadRequest(f"{name}: not valid YAML{where}", param=name) from None
    if not isinstance(data, dict):
        raise BadRequest(f"{name}: write the entry as a YAML mapping", param=name)
    return data


def _as_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


async def editor(
    ctx: ConsoleContext,
    request: Request,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    model_text: str | None = None,
    provider_text: str | None = None,
    provider_name: str = "",
    editing: str = "",
    tested: Any = None,
) -> Response:
    """The admin's catalogue page, with what a refused form sent and why."""
    catalog = ctx.control.catalog
    viewer = admin_viewer(await ctx.viewer(request))
    edit = editing or request.query_params.get("edit", "")
    stored = catalog.stored("model", edit) if edit else None
    if model_text is None and stored is not None:
        model_text = _as_yaml({"name": edit, **stored.spec})
    return ctx.render(
        request,
        "admin_catalog.html",
        viewer,
        status=status,
        errors=errors or {},
        models=catalog.models(viewer.principal),
        providers=[
            (name, source, _as_yaml(spec))
            for name, source, spec in catalog.providers(viewer.principal)
        ],
        editing=edit if stored is not None else "",
        model_text=model_text or "",
        provider_text=provider_text or "",
        provider_name=provider_name,
        tested=tested,
    )


def routes(ctx: ConsoleContext) -> list[Route]:
    return [*_model_routes(ctx), *_provider_routes(ctx)]


def _model_routes(ctx: ConsoleContext) -> list[Route]:
    catalog = ctx.control.catalog

    async def catalogue(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        return ctx.render(request, "catalog.html", viewer, models=catalog.models(viewer.principal))

    async def editor_page(request: Request) -> Response:
        return await editor(ctx, request)

    async def save_model(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        raw = form.get("model")
        editing = forms.text(form, "editing", required=False, max_len=200)
        try:
            spec = _yaml_mapping(form, "model")
            if editing:
                await catalog.put_model(viewer.principal, spec, create=False, name=editing)
            else:
                await catalog.put_model(viewer.principal, spec, create=True)
        except GatewayError as exc:
            return await editor(
                ctx,
                request,
                status=exc.status,
                errors={"model": f"{exc.message}"},
                model_text=raw if isinstance(raw, str) else "",
                editing=editing,
            )
        return redirect("/ui/admin/catalog", "model_saved")

    async def delete_model(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        await ctx.form(request, viewer)
        try:
            await catalog.remove_model(viewer.principal, request.path_params["name"])
        except GatewayError as exc:
            return await editor(ctx, request, status=exc.status, errors=field_errors(exc))
        return redirect("/ui/admin/catalog", "model_removed")

    async def set_price(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        name = request.path_params["name"]
        try:
            if form.get("clear"):
                await catalog.set_price(viewer.principal, name, None)
            else:
                prices = {
                    "input_usd_per_mtok": forms.money(form, "input_usd_per_mtok") or 0.0,
                    "output_usd_per_mtok": forms.money(form, "output_usd_per_mtok") or 0.0,
                }
                await catalog.set_price(viewer.principal, name, prices)
        except GatewayError as exc:
            return await editor(ctx, request, status=exc.status, errors=field_errors(exc))
        return redirect("/ui/admin/catalog", "price_saved")

    async def test(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        try:
            model = forms.text(form, "model", max_len=200)
            deployment = forms.text(form, "deployment", max_len=400)
            result = await catalog.test_deployment(viewer.principal, model, deployment)
        except GatewayError as exc:
            return await editor(ctx, request, status=exc.status, errors=field_errors(exc))
        return await editor(ctx, request, tested=result)

    return [
        Route("/ui/models", catalogue, methods=["GET"]),
        Route("/ui/admin/catalog", editor_page, methods=["GET"]),
        Route("/ui/admin/catalog/models", save_model, methods=["POST"]),
        Route("/ui/admin/catalog/models/{name:path}/delete", delete_model, methods=["POST"]),
        Route("/ui/admin/catalog/models/{name:path}/price", set_price, methods=["POST"]),
        Route("/ui/admin/catalog/test", test, methods=["POST"]),
    ]


def _provider_routes(ctx: ConsoleContext) -> list[Route]:
    catalog = ctx.control.catalog

    async def save_provider(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        form = await ctx.form(request, viewer)
        raw = form.get("provider")
        name = forms.text(form, "name", required=False, max_len=200)
        try:
            spec = _yaml_mapping(form, "provider")
            exists = catalog.stored("provider", name) is not None
            await catalog.put_provider(viewer.principal, name, spec, create=not exists)
        except GatewayError as exc:
            return await editor(
                ctx,
                request,
                status=exc.status,
                errors={"provider": exc.message},
                provider_text=raw if isinstance(raw, str) else "",
                provider_name=name,
            )
        return redirect("/ui/admin/catalog", "provider_saved")

    async def delete_provider(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        await ctx.form(request, viewer)
        try:
            await catalog.remove_provider(viewer.principal, request.path_params["name"])
        except GatewayError as exc:
            return await editor(ctx, request, status=exc.status, errors=field_errors(exc))
        return redirect("/ui/admin/catalog", "provider_removed")

    return [
        Route("/ui/admin/catalog/providers", save_provider, methods=["POST"]),
        Route("/ui/admin/catalog/providers/{name}/delete", delete_provider, methods=["POST"]),
    ]
