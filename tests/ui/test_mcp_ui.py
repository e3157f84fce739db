"""The console's MCP page in Chromium: the gateway URLs and client snippets are on the page
(nothing is copied), and a server's tools load when its panel is opened (server-everything
over stdio as the upstream)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.mcp.conftest import EVERYTHING
from tests.ui.conftest import UiWorld, sign_in

pytestmark = pytest.mark.ui


@pytest.fixture(autouse=True)
def _everything() -> None:
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")


def test_the_mcp_page_shows_urls_snippets_and_tools_on_demand(
    context: Any, ui_world: UiWorld
) -> None:
    key = ui_world.api("POST", "/keys", {"name": "mcp-ui", "user_id": ui_world.ids["ua"]})
    page = context.new_page()
    sign_in(page, "ua@example.org")
    page.click('nav a:has-text("MCP")')
    page.wait_for_url("**/ui/mcp")
    server = page.locator("#server-everything")
    expect(server.locator("h2")).to_contain_text("everything")
    expect(server).to_contain_text("The MCP reference server")
    expect(page.locator("#mcp-url-everything")).to_have_value(f"{ui_world.url}/mcp/everything")
    expect(page.locator("#mcp-url-all")).to_have_value(f"{ui_world.url}/mcp")

    server.locator("details.setup > summary").click()
    cli = page.locator("#snip-everything-claude-cli")
    expect(cli).to_be_visible()
    assert cli.input_value() == (
        f"claude mcp add --transport http everything {ui_world.url}/mcp/everything "
        '--header "Authorization: Bearer <your-sluice-key>"'
    )
    claude = json.loads(page.locator("#snip-everything-claude-json").input_value())
    assert claude["mcpServers"]["everything"] == {
        "type": "http",
        "url": f"{ui_world.url}/mcp/everything",
        "headers": {"Authorization": "Bearer <your-sluice-key>"},
    }
    cursor = json.loads(page.locator("#snip-everything-cursor").input_value())
    assert cursor["mcpServers"]["everything"]["url"] == f"{ui_world.url}/mcp/everything"
    expect(page.locator("#snip-all-cursor")).to_have_count(1)

    tools = server.locator("details.tools")
    body = tools.locator(".tools-body")
    expect(body.locator("a")).to_have_text("Show the tools of everything")  # nothing loaded yet
    tools.locator("summary").click()
    expect(body.locator("td code", has_text="get-sum")).to_be_visible(timeout=30_000)
    names = body.locator("td code").all_inner_texts()
    assert "echo" in names and not any(n.startswith("trigger-") for n in names)
    assert key["key"] not in page.content()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1
