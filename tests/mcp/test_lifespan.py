"""The registry lives in the process lifespan: on the runtime while serving, its processes
gone after shutdown."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.integration.conftest import CONFIG, make_settings, running
from tests.mcp.conftest import TOOL_SERVER


async def test_shutdown_leaves_no_stdio_process(tmp_path: Path) -> None:
    config = (
        CONFIG
        + f"""
mcp:
  servers:
    - name: tools
      transport: stdio
      share: true
      command: {sys.executable}
      args: ["{TOOL_SERVER}"]
"""
    )
    async with running(make_settings(tmp_path), config) as (app, _):
        rt = app.runtime
        assert rt is not None
        assert set(rt.mcp.servers()) == {"tools"}
        async with rt.mcp.open("tools") as session:
            pid = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
        assert rt.mcp.health()["tools"].up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"process {pid} outlived the gateway")
