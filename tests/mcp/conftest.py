"""Upstream MCP servers for the registry tests: server-everything (npm) and a FastMCP server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import _wait_port, free_port

HERE = Path(__file__).resolve().parent
EVERYTHING = (
    HERE.parent / "clients/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)
TOOL_SERVER = HERE / "tool_server.py"


def everything_stdio() -> dict[str, object]:
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    return {"command": "node", "args": [str(EVERYTHING), "stdio"]}


def tool_stdio() -> dict[str, object]:
    return {"command": sys.executable, "args": [str(TOOL_SERVER)]}


@pytest.fixture(params=["streamableHttp", "sse"])
def everything_http(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(transport, url) of a server-everything listening on loopback."""
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    port = free_port()
    proc = subprocess.Popen(
        ["node", str(EVERYTHING), request.param],
        env={"PATH": os.environ["PATH"], "PORT": str(port), "HOME": os.environ.get("HOME", "/")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_port(port, timeout_s=30, proc=proc)
        if request.param == "sse":
            yield "sse", f"http://127.0.0.1:{port}/sse"
        else:
            yield "streamable_http", f"http://127.0.0.1:{port}/mcp"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
