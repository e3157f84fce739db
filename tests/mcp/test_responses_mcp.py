"""``POST /v1/responses`` with ``mcp`` tools: the gateway runs the model/tool loop against a
real MCP server (server-everything over stdio), driven by the official OpenAI SDK.

The model is the in-process mock: it calls the first tool it is offered with arguments made
from the tool's schema, and answers a tool result with text quoting it
(``providers/mock/turn.py``); ``allowed_tools`` picks which tool comes first.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from mcp import ClientSession, types

from sluice.app import SluiceApp
from sluice.auth.principal import McpAccess, Principal
from sluice.config.loader import parse_config
from sluice.config.mcp import McpServerConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.mcp.upstream import open_session
from tests.integration.conftest import MASTER, make_settings

EVERYTHING = (
    Path(__file__).resolve().parents[1]
    / "clients/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)

CONFIG = f"""
providers:
  mock: {{type: mock}}
models:
  - name: mock-gpt
    deployments: [{{provider: mock, model: chat}}]
mcp:
  max_tool_rounds: 3
  servers:
    - {{name: everything, transport: stdio, command: node, args: ["{EVERYTHING}", stdio]}}
    - {{name: other, transport: stdio, command: node, args: ["{EVERYTHING}", stdio]}}
"""


class SessionRunner:
    """A tool runner over one SDK session per server, applying the caller's MCP access
    (what ``sluice.mcp.tools.ToolRunner`` does, without its rate limit and usage rows)."""

    def __init__(self, sessions: dict[str, ClientSession]) -> None:
        self._sessions = sessions
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def list_tools(
        self, principal: Principal, server: str, **upstream: Any
    ) -> list[types.Tool]:
        if not principal.mcp.may_use_server(server):
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no MCP server {server!r}")
        listed = await self._sessions[server].list_tools()
        return [t for t in listed.tools if principal.mcp.may_use_tool(server, t.name)]

    async def call_tool(
        self,
        principal: Principal,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        **upstream: Any,
    ) -> types.CallToolResult:
        if not principal.mcp.may_use_tool(server, tool):
            raise GatewayError(ErrorKind.CALLER_FORBIDDEN, f"the tool {tool!r} is not allowed")
        self.calls.append((server, tool, arguments))
        return await self._sessions[server].call_tool(tool, arguments)


@pytest.fixture
async def sessions() -> AsyncIterator[dict[str, ClientSession]]:
    """One server-everything process. The session is held by a task of its own: the SDK's
    cancel scopes must be left by the task that entered them (a fixture's teardown runs in
    another)."""
    config = McpServerConfig(
        name="everything", transport="stdio", command="node", args=(str(EVERYTHING), "stdio")
    )
    opened: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        async with open_session(config) as session:
            opened.set_result(session)
            await stop.wait()

    holder = asyncio.create_task(hold())
    try:
        session = await asyncio.wait_for(asyncio.shield(opened), timeout=60)
        yield {"everything": session, "other": session}
    finally:
        stop.set()
        await asyncio.wait_for(holder, timeout=30)


@pytest.fixture
async def gateway(
    tmp_path: Path, sessions: dict[str, ClientSession]
) -> AsyncIterator[tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI]]:
    runner = SessionRunner(sessions)
    app = SluiceApp(
        make_settings(tmp_path), parse_config(CONFIG, source="test.yaml"), tool_runner=runner
    )
    await app.startup()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    client = openai.AsyncOpenAI(
        api_key=MASTER, base_url="http://gw/v1", http_client=http, max_retries=0
    )
    try:
        yield app, runner, client
    finally:
        await http.aclose()
        await app.shutdown()


def _narrow(app: SluiceApp, access: McpAccess) -> None:
    """Every key authenticates with ``access`` as its MCP access (as if an admin set it)."""
    assert app.runtime is not None
    keys = app.runtime.keys
    authenticate = keys.authenticate

    def narrowed(token: str | None, scope: Any = None) -> Principal:
        return dataclasses.replace(authenticate(token, scope), mcp=access)

    keys.authenticate = narrowed  # type: ignore[method-assign]


async def _rows(app: SluiceApp) -> list[Any]:
    assert app.runtime is not None
    await app.runtime.usage.flush()
    return sorted(await app.runtime.storage.usage.recent(limit=100), key=lambda r: r.request_id)


def _mcp(allowed: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "mcp", "server_label": "everything", **extra}
    if allowed is not None:
        tool["allowed_tools"] = allowed
    return tool


async def test_echo_loop(gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI]) -> None:
    app, runner, client = gateway
    response = await client.responses.create(
        model="mock-gpt",
        input="Say hello through the echo tool",
        tools=[_mcp(["echo"], require_approval="never")],  # type: ignore[list-item]
    )
    assert response.status == "completed"
    listed, call, message = response.output
    assert listed.type == "mcp_list_tools" and listed.server_label == "everything"
    assert [t.name for t in listed.tools] == ["echo"]
    assert listed.tools[0].input_schema["properties"]["message"]["type"] == "string"  # type: ignore[index]
    assert call.type == "mcp_call" and call.server_label == "everything"
    assert (call.name, call.arguments, call.error) == ("echo", '{"message":"mock"}', None)
    assert call.output == "Echo: mock"
    assert message.type == "message"
    assert response.output_text == "The tool returned: Echo: mock"
    assert runner.calls == [("everything", "echo", {"message": "mock"})]
    rows = await _rows(app)
    # One usage row per model round: the round that called the tool, then the answer.
    assert [r.endpoint for r in rows] == ["responses", "responses"]
    last, first = rows  # sorted by request id: the request's own id, then round 1's
    assert first.request_id == last.request_id + ".1"
    assert all(r.status == 200 and r.model == "mock-gpt" for r in rows)
    assert response.usage is not None
    assert response.usage.input_tokens == sum(r.prompt_tokens for r in rows)
    assert response.usage.output_tokens == sum(r.completion_tokens for r in rows)
    # Stored: a GET answers the same items, and the conversation continues.
    stored = await client.responses.retrieve(response.id)
    assert [item.type for item in stored.output] == ["mcp_list_tools", "mcp_call", "message"]
    follow = await client.responses.create(
        model="mock-gpt", input="Thanks", previous_response_id=response.id
    )
    assert follow.status == "completed"


async def test_stream_events(gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI]) -> None:
    app, runner, client = gateway
    stream = await client.responses.create(
        model="mock-gpt",
        input="Add one and one",
        tools=[_mcp(["get-sum"])],  # type: ignore[list-item]
        stream=True,
    )
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.mcp_list_tools.completed" in kinds
    assert kinds.index("response.mcp_call.in_progress") < kinds.index("response.mcp_call.completed")
    done = [e.item for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert [item.type for item in done] == ["mcp_list_tools", "mcp_call", "message"]
    assert [getattr(e, "output_index", None) for e in events if e.type.endswith("item.done")] == [
        0,
        1,
        2,
    ]
    call = done[1]
    assert call.name == "get-sum" and call.output == "The sum of 1 and 1 is 2."  # type: ignore[union-attr]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert deltas == "The tool returned: The sum of 1 and 1 is 2."
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.id == events[0].response.id  # type: ignore[union-attr]
    assert runner.calls == [("everything", "get-sum", {"a": 1, "b": 1})]
    assert len(await _rows(app)) == 2


async def test_bounded_rounds(gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI]) -> None:
    """A model that always calls a tool (tool_choice required) stops at mcp.max_tool_rounds."""
    app, runner, client = gateway
    response = await client.responses.create(
        model="mock-gpt",
        input="Echo forever",
        tools=[_mcp(["echo"])],  # type: ignore[list-item]
        tool_choice="required",
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_tool_rounds"  # type: ignore[comparison-overlap]
    calls = [item for item in response.output if item.type == "mcp_call"]
    assert [c.status for c in calls] == ["completed"] * 3 + ["incomplete"]
    assert len(runner.calls) == 3
    assert len(await _rows(app)) == 4  # three rounds that ran tools, the one stopped


async def test_excluded_tool_not_offered(
    gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI],
) -> None:
    app, runner, client = gateway
    _narrow(app, McpAccess(servers=frozenset({"everything"}), tools_deny=("everything/echo",)))
    response = await client.responses.create(
        model="mock-gpt",
        input="Echo please",
        tools=[_mcp(["echo", "get-sum"])],  # type: ignore[list-item]
    )
    listed = response.output[0]
    assert listed.type == "mcp_list_tools" and [t.name for t in listed.tools] == ["get-sum"]
    assert [c for c in runner.calls if c[1] == "echo"] == []


async def _refused(client: openai.AsyncOpenAI, tool: dict[str, Any]) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="mock-gpt", input="Hi", tools=[tool])  # type: ignore[list-item]
    return info.value


async def test_excluded_server_refused(
    gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI],
) -> None:
    app, runner, client = gateway
    _narrow(app, McpAccess(servers=frozenset({"everything"})))
    err = await _refused(client, {"type": "mcp", "server_label": "other"})
    assert err.param == "tools[0].server_label"
    unknown = await _refused(client, {"type": "mcp", "server_label": "nowhere"})
    assert unknown.param == "tools[0].server_label"
    assert err.message.replace("'other'", "X") == unknown.message.replace("'nowhere'", "X")
    assert runner.calls == []


async def test_bad_mcp_tools_refused(
    gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI],
) -> None:
    app, _runner, client = gateway
    foreign = await _refused(
        client, {"type": "mcp", "server_label": "deepwiki", "server_url": "https://mcp.example/mcp"}
    )
    assert foreign.param == "tools[0].server_url"
    assert (await _refused(client, _mcp(server_url="https://elsewhere.example/mcp"))).param == (
        "tools[0].server_url"
    )
    assert (await _refused(client, _mcp(require_approval="sometimes"))).param == (
        "tools[0].require_approval"
    )
    assert (await _refused(client, _mcp(headers={"Authorization": "Bearer x"}))).param == (
        "tools[0].headers"
    )
    assert (await _refused(client, _mcp(allowed_tools="echo"))).param == "tools[0].allowed_tools"
    assert (await _refused(client, {"type": "mcp"})).param == "tools[0].server_label"
    # The gateway's own endpoint for the server names it.
    ok = await client.responses.create(
        model="mock-gpt",
        input="Hi",
        tools=[_mcp(["echo"], server_url="http://gw/mcp/everything")],  # type: ignore[list-item]
    )
    assert ok.status == "completed"
    rows = await _rows(app)
    assert [r.status for r in rows].count(400) == 6


async def test_without_mcp_tools_unchanged(
    gateway: tuple[SluiceApp, SessionRunner, openai.AsyncOpenAI],
) -> None:
    app, _runner, client = gateway
    response = await client.responses.create(
        model="mock-gpt",
        input="Weather?",
        tools=[{"type": "function", "name": "weather", "parameters": {"type": "object"}}],
    )
    assert [item.type for item in response.output] == ["function_call"]
    [row] = await _rows(app)
    assert "." not in row.request_id
