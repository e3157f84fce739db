"""Playground: chat with a model this person may use, streamed from the data plane with one
of their keys (kept in the browser's sessionStorage only; the server never sees it here)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from sluice.console.context import ConsoleContext


def routes(ctx: ConsoleContext) -> list[Route]:
    async def playground(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        allowed = viewer.principal.models
        names = sorted(ctx.control.table.everything if allowed is None else allowed)
        return ctx.render(request, "playground.html", viewer, models=names)

    async def home(request: Request) -> Response:
        return RedirectResponse("/ui/keys", status_code=303)

    return [
        Route("/ui", home, methods=["GET"]),
        Route("/ui/", home, methods=["GET"]),
        Route("/ui/playground", playground, methods=["GET"]),
    ]
