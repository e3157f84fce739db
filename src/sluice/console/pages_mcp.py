"""MCP: the servers the signed-in person may use (admins: every server), the gateway URLs to
reach them, ready client snippets (Claude Code, Cursor) with a placeholder where the key
goes, each server's tools on demand, and for admins each server's health.

No key and no upstream detail (URL, headers, command, environment) is ever on the page.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluice.console.context import SECURITY_HEADERS, ConsoleContext, Viewer, not_found
from sluice.console.pages_sso import base_url
from sluice.control.mcp_catalog import CatalogServer, ToolListing

KEY_PLACEHOLDER = "<your-sluice-key>"
"""Stands where the person's key goes; the console never prints a key."""
AGGREGATED_NAME = "sluice"
"""The name the snippets of the aggregated endpoint give it in the client's config."""


@dataclass(frozen=True, slots=True)
class Snippets:
    """Client config for one endpoint, ready to paste (the key left as a placeholder)."""

    claude_cli: str
    claude_json: str
    cursor_json: str


def snippets(name: str, url: str) -> Snippets:
    auth = f"Bearer {KEY_PLACEHOLDER}"
    cli = (
        f"claude mcp add --transport http {shlex.quote(name)} {shlex.quote(url)} "
        f'--header "Authorization: {auth}"'
    )
    claude = {
        "mcpServers": {name: {"type": "http", "url": url, "headers": {"Authorization": auth}}}
    }
    cursor = {"mcpServers": {name: {"url": url, "headers": {"Authorization": auth}}}}
    return Snippets(
        claude_cli=cli,
        claude_json=json.dumps(claude, indent=2),
        cursor_json=json.dumps(cursor, indent=2),
    )


@dataclass(frozen=True, slots=True)
class ServerCard:
    server: CatalogServer
    url: str
    snippets: Snippets


def routes(ctx: ConsoleContext) -> list[Route]:
    catalog = ctx.control.mcp

    def render(
        request: Request, viewer: Viewer, servers: list[CatalogServer], listing: ToolListing | None
    ) -> Response:
        base = base_url(ctx, request)
        aggregated = f"{base}/mcp"
        cards = [
            ServerCard(s, url, snippets(s.name, url))
            for s in servers
            for url in (f"{base}/mcp/{s.name}",)
        ]
        admin = viewer.principal.is_admin
        return ctx.render(
            request,
            "mcp.html",
            viewer,
            cards=cards,
            single=listing is not None,
            listing=listing,
            aggregated=aggregated,
            aggregated_snippets=snippets(AGGREGATED_NAME, aggregated),
            separator=ctx.control.config.mcp.separator,
            placeholder=KEY_PLACEHOLDER,
            health=catalog.health() if admin else None,
        )

    async def page(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        return render(request, viewer, catalog.servers(viewer.principal), None)

    async def server_page(request: Request) -> Response:
        """One server with its tools listed on the server (the page without scripts)."""
        viewer = await ctx.viewer(request)
        name = request.path_params["name"]
        shown = catalog.server(viewer.principal, name)
        listing = await catalog.tools(viewer.principal, name) if shown else None
        if shown is None or listing is None:
            raise not_found("MCP server", name)
        return render(request, viewer, [shown], listing)

    async def tools_json(request: Request) -> Response:
        viewer = await ctx.viewer(request)
        name = request.path_params["name"]
        listing = await catalog.tools(viewer.principal, name)
        if listing is None:
            body: dict[str, object] = {"error": f"no MCP server {name!r}"}
            return JSONResponse(body, status_code=404, headers=SECURITY_HEADERS)
        if listing.error is not None:
            body = {"server": name, "error": listing.error, "tools": []}
            return JSONResponse(body, status_code=502, headers=SECURITY_HEADERS)
        tools = [{"name": t.name, "description": t.description} for t in listing.tools]
        return JSONResponse({"server": name, "tools": tools}, headers=SECURITY_HEADERS)

    return [
        Route("/ui/mcp", page),
        Route("/ui/mcp/{name}/tools.json", tools_json),
        Route("/ui/mcp/{name}", server_page),
    ]
