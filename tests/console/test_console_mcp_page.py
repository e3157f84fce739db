"""The console's MCP page: the servers a person may use (admins: all, with health), gateway
URLs and client snippets with a key placeholder, tools listed on demand through the tool
runner with the person's access applied, an upstream that is down as a message, and never a
key or an upstream credential on the page."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path

import pytest

from tests.console.support import browser, console_world, signed_in
from tests.integration.conftest import CONFIG
from tests.integration.test_tenancy import World
from tests.mcp.conftest import EVERYTHING

UPSTREAM_SECRET = "Bearer upstream-secret-0123456789"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listening: connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def config_text(closed_port: int) -> str:
    """The integration CONFIG plus an ``mcp:`` section (JSON is YAML)."""
    servers = [
        {
            "name": "everything",
            "description": "The reference test server",
            "tags": ["demo", "reference"],
            "transport": "stdio",
            "command": "node",
            "args": [str(EVERYTHING), "stdio"],
            "tools": {"deny": ["trigger-*"]},
        },
        {
            "name": "down",
            "description": "Nothing answers here",
            "transport": "streamable_http",
            "url": f"http://127.0.0.1:{closed_port}/mcp",
            "timeout_s": 5,
        },
        {
            "name": "vault",
            "description": "Only for some",
            "transport": "streamable_http",
            "url": f"http://127.0.0.1:{closed_port}/vault-path",
            "headers": {"Authorization": UPSTREAM_SECRET},
        },
    ]
    return CONFIG + "mcp: " + json.dumps({"servers": servers}) + "\n"


@pytest.fixture
async def world(tmp_path: Path, closed_port: int) -> AsyncIterator[World]:
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    async with console_world(tmp_path, config_text(closed_port)) as w:
        # Team A may use everything and down (not vault), and not the echo tool.
        patched = await w.call(
            "admin",
            "PATCH",
            "/api/v1/teams/{teamA}",
            {"mcp_servers": ["everything", "down"], "mcp_tools_exclude": ["everything/echo"]},
        )
        assert patched.status_code == 200, patched.text
        yield w


def server_names(html: str) -> set[str]:
    return set(re.findall(r'<section class="card mcp-server" id="server-([a-z0-9_-]+)"', html))


def assert_no_secrets(world: World, html: str, closed_port: int) -> None:
    for token in world.tokens.values():
        assert token not in html
    assert "upstream-secret" not in html
    assert f":{closed_port}" not in html  # no upstream URL
    assert str(EVERYTHING) not in html  # no stdio command line


async def test_a_member_sees_the_servers_of_their_access_with_urls_and_snippets(
    world: World, closed_port: int
) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        page = await b.get("/ui/mcp")
        assert page.status_code == 200, page.text
        html = page.text
        assert server_names(html) == {"everything", "down"}
        assert 'href="/ui/mcp" aria-current="page">MCP</a>' in html
        text = unescape(html)
        assert 'value="http://gw/mcp/everything"' in html
        assert 'value="http://gw/mcp"' in html  # the aggregated endpoint
        assert "The reference test server" in text and ">reference</li>" in html
        assert "stdio" in text and "streamable_http" in text
        assert (
            "claude mcp add --transport http everything http://gw/mcp/everything "
            '--header "Authorization: Bearer <your-sluice-key>"'
        ) in text
        cursor = '"everything": {\n      "url": "http://gw/mcp/everything",'
        assert cursor in text and '"type": "http"' in text
        assert "everything__echo" not in text and "server__tool" in text
        assert "Health" not in text and "Restarts" not in text  # admins only
        assert_no_secrets(world, html, closed_port)
        # another server is not there at all, as a page or as a tool list
        assert (await b.get("/ui/mcp/vault")).status_code == 404
        refused = await b.get("/ui/mcp/vault/tools.json")
        assert refused.status_code == 404 and refused.json() == {"error": "no MCP server 'vault'"}
        assert (await b.get("/ui/mcp/nope/tools.json")).status_code == 404


async def test_tools_are_listed_with_the_members_access_applied(world: World) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        listed = await b.get("/ui/mcp/everything/tools.json")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        names = [t["name"] for t in body["tools"]]
        assert "get-sum" in names and "get-env" in names
        assert "echo" not in names  # excluded for team A
        assert not any(n.startswith("trigger-") for n in names)  # the server's own filter
        assert names == sorted(names)
        assert all(t["description"] for t in body["tools"])
        # the same listing without scripts: the server's own page
        page = await b.get("/ui/mcp/everything")
        assert page.status_code == 200
        assert "<code>get-sum</code>" in page.text and "<code>echo</code>" not in page.text
        assert server_names(page.text) == {"everything"}
    async with signed_in(world.app, "ub@example.org") as b:  # team B: no MCP lists
        names = [t["name"] for t in (await b.get("/ui/mcp/everything/tools.json")).json()["tools"]]
        assert "echo" in names


async def test_an_upstream_that_is_down_is_a_message_not_an_error(
    world: World, closed_port: int
) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        listed = await b.get("/ui/mcp/down/tools.json")
        assert listed.status_code == 502
        assert listed.json()["tools"] == []
        assert "down" in listed.json()["error"] and "unavailable" in listed.json()["error"]
        page = await b.get("/ui/mcp/down")
        assert page.status_code == 200
        assert 'role="alert">The tools could not be listed' in page.text
        assert_no_secrets(world, page.text, closed_port)


async def test_an_admin_sees_every_server_with_its_health(world: World, closed_port: int) -> None:
    async with signed_in(world.app, "ua@example.org") as b:
        assert (await b.get("/ui/mcp/everything/tools.json")).status_code == 200
    async with signed_in(world.app, "root@example.org") as b:
        assert (await b.get("/ui/mcp/vault/tools.json")).status_code == 502
        html = (await b.get("/ui/mcp")).text
        assert server_names(html) == {"everything", "down", "vault"}
        health = dict(
            re.findall(
                r'<dl class="facts health" aria-label="Health of ([a-z]+)">(.*?)</dl>', html, re.S
            )
        )
        assert set(health) == {"everything", "down", "vault"}
        assert "<dt>Restarts</dt><dd>0</dd>" in health["everything"]
        assert "<dt>Health</dt><dd>not connected</dd>" in health["down"]  # never asked
        # the failed listing above is vault's last error
        assert "<dt>Health</dt><dd>down</dd>" in health["vault"]
        assert "<dt>Last error</dt><dd><code>" in health["vault"]
        assert 'href="/ui/admin/users"' in html and 'href="/ui/team"' in html
        assert_no_secrets(world, html, closed_port)


async def test_a_team_admin_gets_the_link_to_edit_access(world: World) -> None:
    async with signed_in(world.app, "ta@example.org") as b:
        html = (await b.get("/ui/mcp")).text
        assert 'id="mcp-access"' in html and 'href="/ui/team"' in html
        assert 'href="/ui/admin/users"' not in html
    async with signed_in(world.app, "ua@example.org") as b:
        assert 'id="mcp-access"' not in (await b.get("/ui/mcp")).text


async def test_signed_out_the_page_asks_for_sign_in(world: World) -> None:
    async with browser(world.app) as b:
        page = await b.client.get("/ui/mcp")
        assert page.status_code == 303 and page.headers["location"] == "/ui/login?next=/ui/mcp"
        listed = await b.client.get("/ui/mcp/everything/tools.json")
        assert listed.status_code == 401
