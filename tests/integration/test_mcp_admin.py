"""MCP access lists and ``mcp_rpm`` through the admin API, on SQLite and PostgreSQL: set on
create and update of orgs, teams, users and keys, shown in reads, audited, validated (400
naming the field), and narrowed into the principal the key cache serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.app import SluiceApp
from sluice.limits.spec import LimitSpec
from tests.integration.conftest import make_settings, running

ACCESS = {
    "mcp_servers": ["github", "docs", "later-added"],
    "mcp_servers_exclude": ["shell"],
    "mcp_tools": ["github/*", "docs/*"],
    "mcp_tools_exclude": ["*/delete_*"],
}


@pytest.fixture
async def gw(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    async with running(make_settings(tmp_path, database_url=database_url)) as pair:
        yield pair


async def _made(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _shown(body: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        assert body[name] == value, name


async def test_every_level_takes_shows_and_audits_the_mcp_fields(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    app, client = gw
    org = await _made(
        client, "/api/v1/orgs", {"name": "acme", **ACCESS, "limits": {"mcp_rpm": 100}}
    )
    _shown(org, ACCESS)
    assert org["limits"] == {"mcp_rpm": 100}
    team = await _made(
        client,
        f"/api/v1/orgs/{org['id']}/teams",
        {"name": "core", "mcp_servers": ["github", "docs"], "limits": {"mcp_rpm": 50}},
    )
    assert team["mcp_servers"] == ["github", "docs"] and team["mcp_tools"] is None
    user = await _made(
        client,
        "/api/v1/users",
        {
            "email": "a@example.org",
            "name": "A",
            "team_id": team["id"],
            "mcp_tools_exclude": ["github/get_secret"],
        },
    )
    assert user["mcp_tools_exclude"] == ["github/get_secret"]
    key = await _made(
        client,
        "/api/v1/keys",
        {
            "name": "agent",
            "user_id": user["id"],
            "team_id": team["id"],
            "mcp_tools": ["github/list_*", "docs/search"],
            "limits": {"mcp_rpm": 5, "rpm": 9},
        },
    )
    assert key["mcp_tools"] == ["github/list_*", "docs/search"]

    # Reads show them.
    for path, expected in (
        (f"/api/v1/orgs/{org['id']}", ACCESS),
        (f"/api/v1/teams/{team['id']}", {"mcp_servers": ["github", "docs"]}),
        (f"/api/v1/users/{user['id']}", {"mcp_tools_exclude": ["github/get_secret"]}),
        (f"/api/v1/keys/{key['id']}", {"mcp_tools": ["github/list_*", "docs/search"]}),
    ):
        resp = await client.get(path)
        assert resp.status_code == 200, resp.text
        _shown(resp.json(), expected)

    # The key cache narrows every level into the principal.
    assert app.runtime is not None
    principal = app.runtime.keys.principal(key["id"])
    assert principal is not None
    access = principal.mcp
    assert access.servers == frozenset({"github", "docs"})
    assert access.may_use_tool("github", "list_issues")
    assert not access.may_use_tool("github", "create_issue")
    assert not access.may_use_tool("github", "delete_repo")
    assert not access.may_use_server("shell")
    assert access.may_use_tool("docs", "search") and not access.may_use_tool("docs", "fetch")
    assert principal.mcp_limit_checks == (
        (f"key:{key['id']}:mcp", LimitSpec(rpm=5)),
        (f"team:{team['id']}:mcp", LimitSpec(rpm=50)),
        (f"org:{org['id']}:mcp", LimitSpec(rpm=100)),
    )

    # Update: a field present replaces, null clears, an absent one is kept.
    resp = await client.patch(
        f"/api/v1/keys/{key['id']}", json={"mcp_tools": None, "mcp_servers_exclude": ["docs"]}
    )
    assert resp.status_code == 200, resp.text
    _shown(resp.json(), {"mcp_tools": None, "mcp_servers_exclude": ["docs"]})
    assert resp.json()["limits"] == {"rpm": 9, "mcp_rpm": 5}
    resp = await client.patch(f"/api/v1/teams/{team['id']}", json={"mcp_tools": ["github/*"]})
    assert resp.status_code == 200, resp.text
    _shown(resp.json(), {"mcp_servers": ["github", "docs"], "mcp_tools": ["github/*"]})

    # Audited like model access.
    audit = (await client.get("/api/v1/audit", params={"limit": 100})).json()["data"]
    key_update = next(e for e in audit if e["action"] == "key.update")
    assert key_update["before"]["mcp_tools"] == ["github/list_*", "docs/search"]
    assert key_update["after"]["mcp_tools"] is None
    assert key_update["after"]["mcp_servers_exclude"] == ["docs"]
    org_create = next(e for e in audit if e["action"] == "org.create")
    assert org_create["after"]["governance"]["mcp_servers_exclude"] == ["shell"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"mcp_servers": ["Not A Name"]}, "mcp_servers.0"),
        ({"mcp_servers": "github"}, "mcp_servers"),
        ({"mcp_servers_exclude": ["x" * 65]}, "mcp_servers_exclude.0"),
        ({"mcp_tools": ["github"]}, "mcp_tools.0"),
        ({"mcp_tools": ["github/a b"]}, "mcp_tools.0"),
        ({"mcp_tools_exclude": [f"s/t{i}" for i in range(501)]}, "mcp_tools_exclude"),
        ({"limits": {"mcp_rpm": -1}}, "limits.mcp_rpm"),
        ({"limits": {"mcp_rpm": True}}, "limits.mcp_rpm"),
        ({"limits": {"models": {"mock-gpt": {"mcp_rpm": 3}}}}, "limits.models.mock-gpt.mcp_rpm"),
    ],
)
async def test_bad_mcp_fields_are_refused_naming_the_field(
    gw: tuple[SluiceApp, httpx.AsyncClient], body: dict[str, Any], param: str
) -> None:
    _, client = gw
    org = await _made(client, "/api/v1/orgs", {"name": "acme"})
    for method, path, payload in (
        ("POST", "/api/v1/orgs", {"name": "other", **body}),
        ("PATCH", f"/api/v1/orgs/{org['id']}", body),
        ("POST", "/api/v1/keys", {"name": "k", **body}),
    ):
        resp = await client.request(method, path, json=payload)
        assert resp.status_code == 400, (method, path, resp.text)
        assert resp.json()["error"]["param"] == param, resp.json()
    assert (await client.get(f"/api/v1/orgs/{org['id']}")).json()["mcp_servers"] is None
