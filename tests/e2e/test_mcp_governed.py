"""The MCP gateway's governance end to end on one ``sluice serve`` (SQLite): a key made
through the admin API with MCP access lists and an ``mcp_rpm`` limit; the SDK's client sees
only what the key may use, is refused the rest, and meets the limit; every refusal is a
usage row with its JSON-RPC code."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp.shared.exceptions import McpError

from sluice.mcp.errors import RATE_LIMITED
from tests.e2e.support import base_env, serve_until_ready
from tests.e2e.test_mcp_replicas import DEADLINE_S, EVERYTHING, Switch, client_via, text

pytestmark = [pytest.mark.e2e]

MASTER = "sk-master-mcp-governed-0123456789"


def config() -> str:
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    return f"""
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
mcp:
  servers:
    - name: local
      transport: stdio
      command: node
      args: ["{EVERYTHING}", "stdio"]
      share: true
    - name: hidden
      transport: stdio
      command: node
      args: ["{EVERYTHING}", "stdio"]
      share: true
"""


def rows(db: Path, key_id: str) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        found = conn.execute(
            "SELECT * FROM usage_events WHERE key_id = ? AND endpoint = 'mcp.tool' "
            "ORDER BY created_at",
            (key_id,),
        ).fetchall()
    return [dict(r) for r in found]


async def test_access_lists_and_tool_call_limit_through_serve(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", MASTER)
    path = tmp_path / "sluice.yaml"
    path.write_text(config())
    proc, port = serve_until_ready(tmp_path, path, env, name="gateway")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {MASTER}"}, timeout=DEADLINE_S
        ) as admin:
            made = await admin.post(
                "/api/v1/keys",
                json={
                    "name": "agent",
                    "mcp_servers_exclude": ["hidden"],
                    "mcp_tools_exclude": ["local/get-sum"],
                    "limits": {"mcp_rpm": 3},
                },
            )
            assert made.status_code == 201, made.text
            key, key_id = made.json()["key"], made.json()["id"]
            bad = await admin.post(
                "/api/v1/keys", json={"name": "bad", "mcp_tools_exclude": ["no slash"]}
            )
            assert bad.status_code == 400 and "mcp_tools_exclude" in bad.text
            for _ in range(600):  # the gateway polls the database for new keys
                seen = await admin.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
                if seen.status_code == 200:
                    break
                await anyio.sleep(0.05)
            hidden = await admin.post(
                "/mcp/hidden",
                content=b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}',
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream",
                },
            )
            assert hidden.status_code == 404
            assert hidden.json()["error"]["code"] < 0
        switch = Switch(port)
        async with client_via(switch, "/mcp", key) as (client, _):
            with anyio.fail_after(DEADLINE_S):
                names = {t.name for t in (await client.list_tools()).tools}
                assert "local__echo" in names
                assert "local__get-sum" not in names
                assert not any(n.startswith("hidden__") for n in names)
                with pytest.raises(McpError):
                    await client.call_tool("local__get-sum", {"a": 1, "b": 2})
                for i in range(3):
                    said = await client.call_tool("local__echo", {"message": f"m{i}"})
                    assert f"m{i}" in text(said)
                with pytest.raises(McpError) as limited:
                    await client.call_tool("local__echo", {"message": "one too many"})
                assert limited.value.error.code == RATE_LIMITED
                assert "mcp_rpm" in limited.value.error.message
    finally:
        proc.terminate()  # flushes the usage buffer
    recorded = rows(tmp_path / "data" / "sluice.db", key_id)
    assert [(r["mcp_tool"], r["status"], r["rpc_error"]) for r in recorded] == [
        ("get-sum", 400, -32602),
        ("echo", 200, None),
        ("echo", 200, None),
        ("echo", 200, None),
        ("echo", 429, RATE_LIMITED),
    ]
