"""A small MCP server for the upstream tests, built with the SDK's FastMCP (stdio)."""

from __future__ import annotations

import os
import signal
import sys

import anyio
from mcp.server.fastmcp import FastMCP

server = FastMCP("sluice-test-tools")


@server.tool()
def echo(text: str) -> str:
    """Answer with the text."""
    return text


@server.tool()
def pid() -> int:
    """The server process's id."""
    return os.getpid()


@server.tool()
async def never() -> str:
    """Never answers."""
    await anyio.Event().wait()
    return "unreachable"


@server.tool()
def die() -> str:
    """Kills its own process mid call."""
    print("dying on request", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@server.tool()
def big(size: int) -> str:
    """A result of ``size`` characters."""
    return "x" * size


if __name__ == "__main__":
    print("tool server starting", file=sys.stderr, flush=True)
    server.run("stdio")
