"""Batches: the signed-in person's batches (admins: everyone's) with their progress, cancel,
and their output and error files to download. Scoped like ``/v1/batches``: a user sees the
batches of their own keys."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.batches.model import render
from sluice.console.context import SECURITY_HEADERS, ConsoleContext, redirect

PAGE = 50


def routes(ctx: ConsoleContext) -> list[Route]:
    service = ctx.control.batches

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        after = request.query_params.get("after") or None
        rows, more = await service.page(viewer.principal, after=after, limit=PAGE)
        batches: list[dict[str, Any]] = []
        for b in rows:
            view = render(b)
            view["done"] = b.completed + b.failed
            view["owner"] = b.user_id or b.team_id or b.key_id
            batches.append(view)
        return ctx.render(
            request,
            "batches.html",
            viewer,
            batches=batches,
            next_after=rows[-1].id if more and rows else None,
            everyone=viewer.principal.is_admin,
        )

    async def cancel(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        await ctx.form(request, viewer)
        await service.cancel(viewer.principal, request.path_params["batch_id"])
        return redirect("/ui/batches", "batch_cancelled")

    async def download(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        batch_id, which = request.path_params["batch_id"], request.path_params["which"]
        if which not in ("output", "errors"):
            which = "missing"
        data = await service.download(viewer.principal, batch_id, which)
        name = f"{batch_id}_{which}.jsonl"
        headers = {**SECURITY_HEADERS, "content-disposition": f'attachment; filename="{name}"'}
        return Response(data, media_type="application/jsonl", headers=headers)

    return [
        Route("/ui/batches", page, methods=["GET"]),
        Route("/ui/batches/{batch_id}/cancel", cancel, methods=["POST"]),
        Route("/ui/batches/{batch_id}/{which}.jsonl", download, methods=["GET"]),
    ]
