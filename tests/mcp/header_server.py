"""An MCP server over Streamable HTTP, built with the SDK's FastMCP, whose one tool answers
with the HTTP headers its request arrived with (what the gateway sends upstream).

Run: ``python header_server.py PORT``."""

from __future__ import annotations

import json
import sys

from mcp.server.fastmcp import Context, FastMCP

server = FastMCP("sluice-test-headers", host="127.0.0.1", port=int(sys.argv[1]))


@server.tool()
def seen_headers(ctx: Context) -> str:  # type: ignore[type-arg]
    """The request's HTTP headers, as a JSON object (names in lower case)."""
    request = ctx.request_context.request
    assert request is not None
    return json.dumps({k.lower(): v for k, v in request.headers.items()})


if __name__ == "__main__":
    server.run("streamable-http")
