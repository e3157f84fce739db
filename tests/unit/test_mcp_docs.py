"""The MCP config examples in docs/mcp.md parse as config files (a user copies them)."""

from __future__ import annotations

import re
from pathlib import Path

from sluice.config.loader import parse_config

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_documented_mcp_examples_parse() -> None:
    text = (DOCS / "mcp.md").read_text()
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "\nmcp:" in "\n" + b]
    assert len(blocks) >= 2
    for block in blocks:
        config = parse_config(block, source="docs/mcp.md")
        assert config.mcp.servers
        for server in config.mcp.servers:
            for value in (*server.headers.values(), *server.env.values()):
                assert value.env_name is not None, "examples keep secrets in the environment"
