"""``POST /v1/responses`` ``mcp`` tools through the gateway's REAL tool runner (no
``tool_runner=`` override): usage rows per round and per call, access lists, and external
servers (``mcp.allow_external``) reached over Streamable HTTP.

The model is the in-process mock (it calls the first tool offered, then quotes the result).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sluice.app import SluiceApp
from sluice.auth.principal import McpAccess
from sluice.config.loader import parse_config
from sluice.usage.event import UsageEvent
from tests.integration.conftest import MASTER, make_settings
from tests.mcp.conftest import EVERYTHING
from tests.mcp.test_responses_mcp import _narrow

Gateway = tuple[SluiceApp, openai.AsyncOpenAI]


_SEEN: dict[int, list[UsageEvent]] = {}
"""The usage rows each gateway of a test recorded, by ``id(app)``."""


async def _rows(app: SluiceApp) -> list[UsageEvent]:
    """The usage rows written so far, as the writer's observers saw them (every field: the
    MCP ones included)."""
    assert app.runtime is not None
    await app.runtime.usage.flush()
    return list(_SEEN[id(app)])


def _config(allow_external: bool) -> str:
    return f"""
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
mcp:
  allow_external: {str(allow_external).lower()}
  external_timeout_s: 30
  servers:
    - {{name: everything, transport: stdio, command: node, args: ["{EVERYTHING}", stdio]}}
"""


@asynccontextmanager
async def open_gateway(tmp_path: Path, *, allow_external: bool) -> AsyncIterator[Gateway]:
    if not EVERYTHING.exists():
        pytest.skip("server-everything is not installed (tests/clients: npm ci)")
    app = SluiceApp(make_settings(tmp_path), parse_config(_config(allow_external), source="t.yaml"))
    runtime = await app.startup()
    rows = _SEEN[id(app)] = []
    runtime.usage.observe(rows.extend)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(
        api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
    )
    try:
        yield app, client
    finally:
        await http.aclose()
        await app.shutdown()
        del _SEEN[id(app)]


OpenGateway = Callable[..., AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def gateway(tmp_path: Path) -> OpenGateway:
    return lambda allow_external=False: open_gateway(tmp_path, allow_external=allow_external)


async def test_rows_per_round_and_per_call(gateway: OpenGateway) -> None:
    async with gateway() as (app, client):
        response = await client.responses.create(
            model="mock-gpt",
            input="Say hello through the echo tool",
            tools=[{"type": "mcp", "server_label": "everything", "allowed_tools": ["echo"]}],
        )
        assert response.status == "completed"
        assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
        call = response.output[1]
        assert call.output == "Echo: mock"  # type: ignore[union-attr]
        rows = await _rows(app)
    rounds = [r for r in rows if r.endpoint == "responses"]
    [tool] = [r for r in rows if r.endpoint == "mcp.tool"]
    assert len(rounds) == 2 and {r.status for r in rounds} == {200}
    own = min(rounds, key=lambda r: len(r.request_id)).request_id
    assert sorted(r.request_id for r in rounds) == [own, own + ".1"]
    assert (tool.mcp_server, tool.mcp_tool, tool.status, tool.model) == (
        "everything",
        "echo",
        200,
        None,
    )
    assert tool.key_id == rounds[0].key_id and tool.bytes_out > 0


async def test_excluded_tool_is_not_offered_nor_run(gateway: OpenGateway) -> None:
    async with gateway() as (app, client):
        _narrow(app, McpAccess(tools_deny=("everything/echo",)))
        response = await client.responses.create(
            model="mock-gpt",
            input="Echo please",
            tools=[
                {"type": "mcp", "server_label": "everything", "allowed_tools": ["echo", "get-sum"]}
            ],
        )
        listed, call, _message = response.output
        assert [t.name for t in listed.tools] == ["get-sum"]  # type: ignore[union-attr]
        assert call.name == "get-sum"  # type: ignore[union-attr]
        rows = await _rows(app)
    assert [(r.mcp_server, r.mcp_tool) for r in rows if r.endpoint == "mcp.tool"] == [
        ("everything", "get-sum")
    ]


@pytest.mark.parametrize("everything_http", ["streamableHttp"], indirect=True)
async def test_external_server(gateway: OpenGateway, everything_http: tuple[str, str]) -> None:
    _transport, url = everything_http
    tool = {
        "type": "mcp",
        "server_label": "ext.everything",
        "server_url": url,
        "allowed_tools": ["echo"],
        "headers": {"X-Upstream-Token": "t0ken"},
    }
    async with gateway(allow_external=True) as (app, client):
        response = await client.responses.create(
            model="mock-gpt", input="Echo through the external server", tools=[tool]
        )
        assert response.status == "completed"
        listed, call, _message = response.output
        assert listed.server_label == "ext.everything"  # type: ignore[union-attr]
        assert (call.name, call.output) == ("echo", "Echo: mock")  # type: ignore[union-attr]
        # A refusal raised while the external session is open is the caller's 400 (the
        # SDK's task groups do not turn it into a 500).
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(
                model="mock-gpt",
                previous_response_id=response.id,
                input=[
                    {"type": "mcp_approval_response", "approval_request_id": "x", "approve": True}
                ],
                tools=[tool],  # type: ignore[list-item]
            )
        assert info.value.param == "input[0].approval_request_id"
        rows = await _rows(app)
    [row] = [r for r in rows if r.endpoint == "mcp.tool"]
    assert (row.mcp_server, row.mcp_tool, row.status) == ("ext.everything", "echo", 200)
    assert sorted(r.status for r in rows if r.endpoint == "responses") == [200, 200, 400]


@pytest.mark.parametrize("everything_http", ["streamableHttp"], indirect=True)
async def test_external_refused_when_off(
    gateway: OpenGateway, everything_http: tuple[str, str]
) -> None:
    _transport, url = everything_http
    async with gateway(allow_external=False) as (_app, client):
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(
                model="mock-gpt",
                input="Hi",
                tools=[{"type": "mcp", "server_label": "ext", "server_url": url}],  # type: ignore[list-item]
            )
    assert info.value.param == "tools[0].server_url"


async def _refused(client: openai.AsyncOpenAI, tool: dict[str, Any]) -> str | None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="mock-gpt", input="Hi", tools=[tool])  # type: ignore[list-item]
    return info.value.param


async def test_external_bad_tools_refused(gateway: OpenGateway) -> None:
    async with gateway(allow_external=True) as (app, client):
        ext: dict[str, Any] = {"type": "mcp", "server_label": "ext"}
        for url in (
            "http://169.254.169.254/mcp",
            "http://[fd00:ec2::254]/mcp",
            "http://metadata.google.internal/mcp",
            "http://[::ffff:169.254.1.1]/mcp",
            "file:///etc/passwd",
        ):
            assert await _refused(client, {**ext, "server_url": url}) == "tools[0].server_url"
        ok = "http://127.0.0.1:9/mcp"
        many = {f"X-H{i}": "v" for i in range(17)}
        assert await _refused(client, {**ext, "server_url": ok, "headers": many}) == (
            "tools[0].headers"
        )
        big = {"X-Big": "v" * 9000}
        assert await _refused(client, {**ext, "server_url": ok, "headers": big}) == (
            "tools[0].headers"
        )
        assert await _refused(client, {**ext, "server_url": ok, "headers": {"Host": "x"}}) == (
            "tools[0].headers"
        )
        bad_value = {"X-A": "a\r\nX-B: b"}
        assert await _refused(client, {**ext, "server_url": ok, "headers": bad_value}) == (
            "tools[0].headers.X-A"
        )
        assert await _refused(client, {**ext, "server_label": "a b", "server_url": ok}) == (
            "tools[0].server_label"
        )
        # A configured server keeps its own URL and credentials.
        assert await _refused(
            client, {"type": "mcp", "server_label": "everything", "server_url": ok}
        ) == ("tools[0].server_url")
        # A key whose access lists its servers may use only the labels it lists.
        _narrow(app, McpAccess(servers=frozenset({"everything"})))
        assert await _refused(client, {**ext, "server_url": ok}) == "tools[0].server_url"
        # Nothing listens on port 9: the server cannot be reached (502 naming the label).
        _narrow(app, McpAccess())
        with pytest.raises(openai.APIStatusError) as info:
            await client.responses.create(
                model="mock-gpt",
                input="Hi",
                tools=[{**ext, "server_url": ok}],  # type: ignore[list-item]
            )
        assert info.value.status_code == 502
        assert "tools[0].server_label" in str(info.value.body)
