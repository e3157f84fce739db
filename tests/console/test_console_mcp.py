"""MCP access editing in the console (team and organisation forms, the rules of model
access: team admins their teams, org admins their orgs) and the Usage page's "MCP tool
calls" table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluice.usage.event import MCP_TOOL, UsageEvent
from tests.console.support import console_world, signed_in
from tests.integration.test_tenancy import World

MCP_FORM = {
    "mcp_servers": "github, docs",
    "mcp_servers_exclude": "shell",
    "mcp_tools": "",
    "mcp_tools_exclude": "github/delete_*, */drop_*",
    "limits.mcp_rpm": "30",
}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with console_world(tmp_path) as w:
        yield w


async def test_a_team_admin_edits_the_teams_mcp_access(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "ta@example.org") as b:
        page = await b.get(f"/ui/team/{ids['teamA']}")
        assert 'name="mcp_servers"' in page.text and 'name="mcp_tools_exclude"' in page.text
        saved = await b.post(f"/ui/team/{ids['teamA']}/limits", MCP_FORM)
        assert saved.status_code == 303, saved.text
        again = (await b.get(f"/ui/team/{ids['teamA']}")).text
        assert 'value="github, docs"' in again and 'value="github/delete_*, */drop_*"' in again
        bad = await b.post(f"/ui/team/{ids['teamA']}/limits", {**MCP_FORM, "mcp_tools": "no slash"})
        assert bad.status_code == 400 and 'id="err-mcp_tools"' in bad.text
    team = (await world.call("admin", "GET", "/api/v1/teams/{teamA}")).json()
    assert team["mcp_servers"] == ["github", "docs"]
    assert team["mcp_servers_exclude"] == ["shell"]
    assert team["mcp_tools"] is None
    assert team["mcp_tools_exclude"] == ["github/delete_*", "*/drop_*"]
    assert team["limits"] == {"mcp_rpm": 30}
    assert world.app.runtime is not None
    principal = world.app.runtime.keys.principal(ids["ua_key"])
    assert principal is not None
    assert principal.mcp.may_use_tool("github", "list_issues")
    assert not principal.mcp.may_use_tool("github", "delete_repo")
    assert not principal.mcp.may_use_server("shell")
    audit = (await world.call("admin", "GET", "/api/v1/audit")).json()["data"]
    update = next(e for e in audit if e["action"] == "team.update")
    assert update["after"]["governance"]["mcp_servers"] == ["github", "docs"]


async def test_members_and_other_tenants_cannot_edit_it(world: World) -> None:
    ids = world.ids
    async with signed_in(world.app, "ua@example.org") as b:
        assert (await b.post(f"/ui/team/{ids['teamA']}/limits", MCP_FORM)).status_code == 403
        assert (await b.post(f"/ui/team/{ids['teamB']}/limits", MCP_FORM)).status_code == 404
    async with signed_in(world.app, "oa@example.org") as b:
        page = await b.get(f"/ui/org/{ids['orgA']}")
        assert 'name="mcp_servers_exclude"' in page.text
        saved = await b.post(f"/ui/org/{ids['orgA']}/limits", {"mcp_servers_exclude": "shell"})
        assert saved.status_code == 303, saved.text
    org = (await world.call("admin", "GET", "/api/v1/orgs/{orgA}")).json()
    assert org["mcp_servers_exclude"] == ["shell"]
    assert (await world.call("admin", "GET", "/api/v1/teams/{teamA}")).json()["mcp_servers"] is None


async def test_the_usage_page_lists_mcp_tool_calls(world: World) -> None:
    ids = world.ids
    assert world.app.runtime is not None
    now = world.app.runtime.clock.now()
    for i, tool in enumerate(("echo", "echo", "add")):
        world.app.runtime.usage.record(
            UsageEvent(
                f"mcp-{i}",
                now,
                MCP_TOOL,
                ids["ua_key"],
                None,
                latency_ms=25.0,
                user_id=ids["ua"],
                team_id=ids["teamA"],
                org_id=ids["orgA"],
                mcp_server="everything",
                mcp_tool=tool,
                rpc_error=-32602 if tool == "add" else None,
            )
        )
    await world.app.runtime.usage.flush()
    async with signed_in(world.app, "ua@example.org") as b:
        page = (await b.get("/ui/usage")).text
        table = page.split('id="mcp-tools"')[1].split("</section>")[0]
        assert "MCP tool calls" in table
        rows = table.split("<tbody>")[1]
        assert rows.index("echo") < rows.index("add")
        assert '<td>everything</td><td>echo</td><td class="num">2</td>' in rows
        assert '<td>everything</td><td>add</td><td class="num">1</td><td class="num">1</td>' in rows
    async with signed_in(world.app, "ub@example.org") as b:
        page = (await b.get("/ui/usage")).text
        assert "No MCP tool calls in this range." in page
