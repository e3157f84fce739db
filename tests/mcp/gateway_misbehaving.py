"""A FastMCP stdio server that misbehaves on request: hangs, answers too much, or dies."""

from __future__ import annotations

import os

import anyio
from mcp.server.fastmcp import FastMCP

app = FastMCP("misbehaving")


@app.tool()
async def hang() -> str:
    """Never answers."""
    await anyio.sleep_forever()
    return ""


@app.tool()
def giant(size: int) -> str:
    """A result of ``size`` characters."""
    return "x" * size


@app.tool()
def die() -> str:
    """Exits the process mid call."""
    os._exit(3)


if __name__ == "__main__":
    app.run("stdio")
