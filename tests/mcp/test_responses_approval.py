"""``require_approval`` on ``/v1/responses`` ``mcp`` tools: the answer ends with
``mcp_approval_request`` items instead of running the call; the client continues with
``previous_response_id`` and ``mcp_approval_response`` items. Real ToolRunner, real
server-everything, the OpenAI SDK; the mock model calls the first tool offered, then quotes
the tool's result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.mcp.test_responses_runner import OpenGateway, _rows, open_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> OpenGateway:
    return lambda allow_external=False: open_gateway(tmp_path, allow_external=allow_external)


def _tool(approval: Any, allowed: list[str] | None = None) -> Any:
    return {
        "type": "mcp",
        "server_label": "everything",
        "allowed_tools": allowed or ["echo"],
        "require_approval": approval,
    }


async def _ask(client: openai.AsyncOpenAI, approval: Any, **extra: Any) -> Any:
    return await client.responses.create(
        model="mock-gpt", input="Echo something", tools=[_tool(approval)], **extra
    )


async def test_approve_then_run(gateway: OpenGateway) -> None:
    async with gateway() as (app, client):
        first = await _ask(client, "always")
        assert first.status == "completed"
        listed, request = first.output
        assert listed.type == "mcp_list_tools"
        assert request.type == "mcp_approval_request"
        assert (request.server_label, request.name, request.arguments) == (
            "everything",
            "echo",
            '{"message":"mock"}',
        )
        assert [r for r in await _rows(app) if r.endpoint == "mcp.tool"] == []  # nothing ran
        stored = await client.responses.retrieve(first.id)
        assert [i.type for i in stored.output] == ["mcp_list_tools", "mcp_approval_request"]
        second = await client.responses.create(
            model="mock-gpt",
            previous_response_id=first.id,
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": request.id,
                    "approve": True,
                }
            ],
            tools=[_tool("always")],
        )
        assert second.status == "completed"
        assert [i.type for i in second.output] == ["mcp_list_tools", "mcp_call", "message"]
        call = second.output[1]
        assert (call.name, call.output, call.error) == ("echo", "Echo: mock", None)  # type: ignore[union-attr]
        assert second.output_text == "The tool returned: Echo: mock"
        rows = await _rows(app)
        assert [(r.mcp_tool, r.status) for r in rows if r.endpoint == "mcp.tool"] == [("echo", 200)]
        # One row per model round: the round that asked, then the continuation's.
        assert len([r for r in rows if r.endpoint == "responses"]) == 2


async def test_deny(gateway: OpenGateway) -> None:
    async with gateway() as (app, client):
        first = await _ask(client, {"never": {"tool_names": ["get-sum"]}})
        request = first.output[1]
        assert request.type == "mcp_approval_request"
        second = await client.responses.create(
            model="mock-gpt",
            previous_response_id=first.id,
            input=[
                {
                    "type": "mcp_approval_response",
                    "approval_request_id": request.id,
                    "approve": False,
                }
            ],
            tools=[_tool("always")],
        )
        assert [i.type for i in second.output] == ["mcp_list_tools", "message"]
        assert second.output_text == "The tool returned: error: the user denied this tool call"
        assert [r for r in await _rows(app) if r.endpoint == "mcp.tool"] == []


async def test_filters_decide(gateway: OpenGateway) -> None:
    async with gateway() as (app, client):
        never = await _ask(client, {"never": {"tool_names": ["echo"]}})
        assert [i.type for i in never.output] == ["mcp_list_tools", "mcp_call", "message"]
        # A tool both filters name needs approval.
        both = await _ask(
            client, {"always": {"tool_names": ["echo"]}, "never": {"tool_names": ["echo"]}}
        )
        assert both.output[1].type == "mcp_approval_request"
        streamed = await client.responses.create(
            model="mock-gpt",
            input="Echo something",
            tools=[_tool("always")],
            stream=True,
        )
        events = [e async for e in streamed]
        assert events[-1].type == "response.completed"
        done = [e.item.type for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
        assert done == ["mcp_list_tools", "mcp_approval_request"]
        assert len([r for r in await _rows(app) if r.endpoint == "mcp.tool"]) == 1


async def test_bad_approvals_refused(gateway: OpenGateway) -> None:
    async with gateway() as (_app, client):
        first = await _ask(client, "always")
        request_id = first.output[1].id

        async def refused(item: dict[str, Any], tools: list[Any]) -> str | None:
            with pytest.raises(openai.BadRequestError) as info:
                await client.responses.create(
                    model="mock-gpt", previous_response_id=first.id, input=[item], tools=tools
                )
            return info.value.param

        answer = {"type": "mcp_approval_response", "approval_request_id": request_id}
        assert await refused({**answer, "approve": "yes"}, [_tool("always")]) == "input[0].approve"
        assert await refused(
            {**answer, "approval_request_id": "mcpr_nope", "approve": True}, [_tool("always")]
        ) == ("input[0].approval_request_id")
        # The tool is no longer offered by the continuation's mcp tools.
        assert await refused({**answer, "approve": True}, [_tool("always", ["get-sum"])]) == (
            "input[0].approval_request_id"
        )
        assert await refused({**answer, "approve": True}, [_tool("sometimes")]) == (
            "tools[0].require_approval"
        )
        assert await refused(
            {**answer, "approve": True}, [_tool({"always": {"tool_names": "echo"}})]
        ) == ("tools[0].require_approval.always.tool_names")
