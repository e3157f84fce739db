"""MCP servers managed through the admin API (``/api/v1/mcp/servers``), over SQLite and
PostgreSQL: stored, validated like the config's, no credential stored or shown, usable at once
and gone at once without a restart, on this replica and the next."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import McpError

from sluice.app import SluiceApp
from sluice.errors import GatewayError
from tests.integration.conftest import CONFIG, make_settings, running
from tests.mcp.conftest import TOOL_SERVER, tool_stdio

SERVERS = "/api/v1/mcp/servers"
WITH_CONFIG_SERVER = (
    CONFIG
    + """
mcp:
  servers:
    - name: docs
      description: from the config
      transport: streamable_http
      url: https://alice:hunter2@docs.example.org/mcp
      headers: {Authorization: "Bearer literal-config-secret", X-Team: env:DOCS_TEAM}
"""
)


@asynccontextmanager
async def gateway(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[SluiceApp, Any]]:
    settings = make_settings(tmp_path, database_url=database_url)
    async with running(settings, WITH_CONFIG_SERVER) as pair:
        yield pair


def tools(**extra: Any) -> dict[str, Any]:
    return {"name": "tools", "transport": "stdio", **tool_stdio(), **extra}


async def call_pid(app: SluiceApp, name: str) -> int:
    assert app.runtime is not None
    async with app.runtime.mcp.open(name) as session:
        result = await session.call_tool("pid", {})
    return int(result.content[0].text)  # type: ignore[union-attr]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_crud_and_the_server_is_usable_without_restart(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway(tmp_path, database_url) as (app, client):
        made = await client.post(
            SERVERS,
            json=tools(
                description="FastMCP tools", tags=["test"], env={"TOKEN": "env:TOOLS_TOKEN"}
            ),
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["source"] == "stored" and body["env"] == {"TOKEN": "env:TOOLS_TOKEN"}
        assert body["command"] == sys.executable and body["args"] == [str(TOOL_SERVER)]
        assert body["created_at"] is not None

        pid = await call_pid(app, "tools")
        assert gone(pid)  # not shared: its process lived as long as the session

        one = (await client.get(f"{SERVERS}/tools")).json()
        assert one["health"] == {"up": True, "last_error": None, "restarts": 0}
        listed = {s["name"]: s for s in (await client.get(SERVERS)).json()["data"]}
        assert set(listed) == {"docs", "tools"}
        assert listed["docs"]["source"] == "config" and listed["docs"]["created_at"] is None

        changed = await client.patch(
            f"{SERVERS}/tools", json={"description": "renamed", "env": None, "timeout_s": 5}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["description"] == "renamed" and changed.json()["env"] == {}
        assert changed.json()["timeout_s"] == 5 and changed.json()["tags"] == ["test"]
        assert app.runtime is not None
        assert app.runtime.mcp.servers()["tools"].description == "renamed"

        assert (await client.delete(f"{SERVERS}/tools")).status_code == 204
        assert "tools" not in app.runtime.mcp.servers()
        with pytest.raises(GatewayError) as refused:
            await call_pid(app, "tools")
        assert refused.value.status == 404
        assert (await client.get(f"{SERVERS}/tools")).status_code == 404
        assert (await client.delete(f"{SERVERS}/tools")).status_code == 404

        audit = (await client.get("/api/v1/audit")).json()["data"]
        actions = [e["action"] for e in audit if e["target_type"] == "mcp_server"]
        assert sorted(actions) == ["mcp.server_create", "mcp.server_delete", "mcp.server_update"]


async def test_a_shared_server_starts_and_its_process_ends_on_delete(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway(tmp_path, database_url) as (app, client):
        assert (await client.post(SERVERS, json=tools(share=True))).status_code == 201
        first = await call_pid(app, "tools")
        assert await call_pid(app, "tools") == first  # one process for every session
        assert (await client.get(f"{SERVERS}/tools")).json()["health"]["up"] is True
        assert (await client.delete(f"{SERVERS}/tools")).status_code == 204
        assert gone(first)


async def test_another_replica_picks_changes_up_on_its_refresh(
    tmp_path: Path, database_url: str
) -> None:
    async with (
        gateway(tmp_path, database_url) as (_app_a, a),
        gateway(tmp_path, database_url) as (
            app_b,
            _,
        ),
    ):
        assert app_b.control is not None and app_b.runtime is not None
        assert (await a.post(SERVERS, json=tools())).status_code == 201
        await app_b.control.sync.refresh()  # what B's poll (or a Redis message) runs
        assert gone(await call_pid(app_b, "tools"))
        assert (await a.delete(f"{SERVERS}/tools")).status_code == 204
        await app_b.control.sync.refresh()
        assert "tools" not in app_b.runtime.mcp.servers()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "transport": "sse"}, "url"),
        ({"name": "x", "transport": "stdio"}, "command"),
        ({"name": "x", "transport": "stdio", "command": "cat", "url": "http://a.org"}, "url"),
        ({"name": "x", "transport": "sse", "url": "http://a.org", "command": "cat"}, "command"),
        ({"name": "x", "transport": "sse", "url": "ftp://a.org/sse"}, "url"),
        ({"name": "x", "transport": "sse", "url": "http://169.254.169.254/sse"}, "url"),
        ({"name": "x", "transport": "sse", "url": "http://metadata.google.internal/"}, "url"),
        ({"name": "x", "transport": "sse", "url": "https://u:p@a.org/sse"}, "url"),
        (
            {"name": "x", "transport": "sse", "url": "https://a.org", "headers": {"A": "tok"}},
            "headers.A",
        ),
        (
            {"name": "x", "transport": "stdio", "command": "cat", "env": {"K": "env:"}},
            "env.K",
        ),
        (
            {"name": "x", "transport": "stdio", "command": "cat", "env": {"K": "sk-123"}},
            "env.K",
        ),
        ({"name": "Bad Name", "transport": "stdio", "command": "cat"}, "name"),
        ({"name": "x", "transport": "stdio", "command": "cat", "timeout_s": 0}, "timeout_s"),
        ({"name": "x", "transport": "stdio", "command": "cat", "share": "yes"}, "share"),
        ({"name": "x", "transport": "stdio", "command": "cat", "extra": 1}, "extra"),
        ({"name": "x", "transport": "carrier-pigeon", "command": "cat"}, "transport"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    tmp_path: Path, sqlite_url: str, body: dict[str, Any], param: str
) -> None:
    async with gateway(tmp_path, sqlite_url) as (_app, client):
        resp = await client.post(SERVERS, json=body)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["param"] == param, resp.text
        assert (await client.get(SERVERS)).json()["data"][0]["name"] == "docs"
        assert len((await client.get(SERVERS)).json()["data"]) == 1


async def test_a_change_is_validated_as_a_whole(tmp_path: Path, database_url: str) -> None:
    async with gateway(tmp_path, database_url) as (_app, client):
        assert (await client.post(SERVERS, json=tools())).status_code == 201
        # Switching to HTTP needs a URL, and the command must go.
        bad = await client.patch(f"{SERVERS}/tools", json={"transport": "sse"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "url"
        secret = await client.patch(f"{SERVERS}/tools", json={"env": {"K": "plain"}})
        assert secret.status_code == 400 and secret.json()["error"]["param"] == "env.K"
        moved = await client.patch(
            f"{SERVERS}/tools",
            json={"transport": "sse", "command": None, "args": None, "url": "http://127.0.0.1:9/"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["command"] is None and moved.json()["url"] == "http://127.0.0.1:9/"
        assert (await client.patch(f"{SERVERS}/nope", json={})).status_code == 404


async def test_credentials_are_never_shown(tmp_path: Path, database_url: str) -> None:
    async with gateway(tmp_path, database_url) as (app, client):
        made = await client.post(
            SERVERS,
            json={
                "name": "remote",
                "transport": "streamable_http",
                "url": "https://mcp.example.org/mcp?team=a",
                "headers": {"Authorization": "env:REMOTE_TOKEN"},
            },
        )
        assert made.status_code == 201, made.text
        assert made.json()["headers"] == {"Authorization": "env:REMOTE_TOKEN"}
        docs = (await client.get(f"{SERVERS}/docs")).json()
        assert docs["headers"] == {"Authorization": "***", "X-Team": "env:DOCS_TEAM"}
        assert docs["url"] == "https://***@docs.example.org/mcp"
        everything = (await client.get(SERVERS)).text + (await client.get("/api/v1/audit")).text
        for secret in ("literal-config-secret", "hunter2", "alice"):
            assert secret not in everything
        assert app.runtime is not None
        stored = await app.runtime.storage.mcp_servers.get("remote")
        assert stored is not None and stored.spec["headers"] == {
            "Authorization": "env:REMOTE_TOKEN"
        }


async def test_config_servers_are_read_only(tmp_path: Path, database_url: str) -> None:
    async with gateway(tmp_path, database_url) as (_app, client):
        body = {"name": "docs", "transport": "stdio", "command": "cat"}
        taken = await client.post(SERVERS, json=body)
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
        assert (await client.patch(f"{SERVERS}/docs", json={"description": "x"})).status_code == 409
        assert (await client.delete(f"{SERVERS}/docs")).status_code == 409
        assert (await client.post(SERVERS, json=tools())).status_code == 201
        again = await client.post(SERVERS, json=tools())
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


async def test_only_admins_manage_servers(tmp_path: Path, database_url: str) -> None:
    async with gateway(tmp_path, database_url) as (_app, client):
        org = (await client.post("/api/v1/orgs", json={"name": "acme"})).json()
        user = (
            await client.post(
                "/api/v1/users", json={"email": "o@acme.org", "name": "o", "org_id": org["id"]}
            )
        ).json()
        assert (
            await client.put(f"/api/v1/orgs/{org['id']}/admins/{user['id']}")
        ).status_code == 204
        key = (await client.post("/api/v1/keys", json={"name": "k", "user_id": user["id"]})).json()
        assert (await client.post(SERVERS, json=tools())).status_code == 201
        as_org_admin = {"Authorization": f"Bearer {key['key']}"}
        for method, path, body in (
            ("GET", SERVERS, None),
            ("GET", f"{SERVERS}/tools", None),
            ("POST", SERVERS, tools(name="mine")),
            ("PATCH", f"{SERVERS}/tools", {"description": "x"}),
            ("DELETE", f"{SERVERS}/tools", None),
        ):
            resp = await client.request(method, path, json=body, headers=as_org_admin)
            assert resp.status_code == 403, f"{method} {path}: {resp.text}"
        assert [s["name"] for s in (await client.get(SERVERS)).json()["data"]] == ["docs", "tools"]


async def test_a_removed_server_ends_open_sessions(tmp_path: Path, database_url: str) -> None:
    async with gateway(tmp_path, database_url) as (app, client):
        assert app.runtime is not None
        assert (await client.post(SERVERS, json=tools())).status_code == 201
        async with app.runtime.mcp.open("tools") as session:
            pid = int((await session.call_tool("pid", {})).content[0].text)  # type: ignore[union-attr]
            assert (await client.delete(f"{SERVERS}/tools")).status_code == 204
            with pytest.raises(McpError):
                await session.call_tool("echo", {"text": "still there?"})
        assert gone(pid)
