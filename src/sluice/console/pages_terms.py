"""The terms of service: the page a person must accept before anything else, and the admin
view of who accepted what."""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.console import forms
from sluice.console.context import ConsoleContext, not_found, redirect
from sluice.console.pages_admin import admin_viewer
from sluice.console.signin import safe_next
from sluice.errors import GatewayError


def markdown_renderer() -> MarkdownIt:
    """CommonMark with tables; raw HTML in the source is shown as text, never rendered, and
    links with a ``javascript:`` (or ``vbscript:``, ``file:``, ``data:``) target are not
    made (the library's link validation)."""
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def routes(ctx: ConsoleContext) -> list[Route]:
    service = ctx.control.terms
    rendered = (
        Markup(markdown_renderer().render(service.current.body))
        if service.current is not None
        else Markup("")
    )

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request, terms=False)
        terms = service.current
        if terms is None:
            raise not_found("page", "terms of service")
        pending = ctx.control.cache.index.terms_pending(viewer.user) is not None
        return ctx.render(
            request,
            "terms.html",
            viewer,
            terms=terms,
            body=rendered,
            pending=pending,
            accepted_at=await service.accepted_at(viewer.user.id),
            next=safe_next(request.query_params.get("next")),
            terms_only=pending,
        )

    async def accept(request: Request) -> Response:
        viewer = await ctx.viewer(request, terms=False)
        form = await ctx.form(request, viewer)
        target = safe_next(str(form.get("next") or ""))
        try:
            await service.accept(viewer.principal, forms.text(form, "version", max_len=64))
        except GatewayError as exc:
            return ctx.error_page(request, viewer, exc)
        return redirect(target, None if "?" in target else "terms")

    async def admin_page(request: Request) -> Response:
        viewer = admin_viewer(await ctx.viewer(request))
        version = request.query_params.get("version") or None
        if version is not None:
            version = version[:64]
        rows = await service.acceptances(viewer.principal, version=version)
        return ctx.render(
            request,
            "admin_terms.html",
            viewer,
            terms=service.current,
            rows=rows,
            version=version,
        )

    return [
        Route("/ui/terms", page, methods=["GET"]),
        Route("/ui/terms", accept, methods=["POST"]),
        Route("/ui/admin/terms", admin_page, methods=["GET"]),
    ]
