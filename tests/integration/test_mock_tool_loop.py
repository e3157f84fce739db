"""An agent's tool loop ends against the mock: a tool result is answered with text, as a
model answers it. Driven by the official openai and anthropic SDKs, against the in-process
mock (``type: mock``, behind the gateway) and ``sluice mock-upstream`` (directly, over
loopback), for chat completions, Messages and Responses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from tests.integration.conftest import MASTER, make_settings, running
from tests.mock_upstream import mock_upstream

TURNS = 4
"""An agent that has not finished after this many model calls is looping."""
FUNCTION = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
RESULT = '{"temp_c": 21}'


@pytest.fixture(params=["in-process", "mock-upstream"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """``base_url`` (without ``/v1``), ``key``, ``model`` and the HTTP client for the SDKs."""
    if request.param == "in-process":
        async with running(make_settings(tmp_path)) as (app, _):
            http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app))
            try:
                yield {"base": "http://gw", "key": MASTER, "model": "mock-gpt", "http": http}
            finally:
                await http.aclose()
        return
    async with mock_upstream() as base, httpx2.AsyncClient() as http:
        yield {"base": base, "key": "sk-mock", "model": "chat", "http": http}


def _openai(target: dict[str, Any]) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=target["key"],
        base_url=target["base"] + "/v1",
        http_client=target["http"],
        max_retries=0,
    )


async def test_chat_completions_tool_loop_ends(target: dict[str, Any]) -> None:
    client = _openai(target)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    tools: Any = [{"type": "function", "function": FUNCTION}]
    calls = 0
    for _ in range(TURNS):
        answer = await client.chat.completions.create(
            model=target["model"], messages=messages, tools=tools
        )
        choice = answer.choices[0]
        if not choice.message.tool_calls:
            break
        calls += 1
        messages.append(choice.message.model_dump(exclude_none=True))
        for call in choice.message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": RESULT})
    assert calls == 1
    assert choice.finish_reason == "stop"
    assert choice.message.content and "temp_c" in choice.message.content


async def test_messages_tool_loop_ends(target: dict[str, Any]) -> None:
    sdk = anthropic.AsyncAnthropic(
        api_key=target["key"],
        base_url=target["base"],
        http_client=target["http"],
        max_retries=0,
        default_headers={"x-api-key": target["key"]},  # the mock checks the native header
    )
    tools: Any = [
        {"name": FUNCTION["name"], "description": "", "input_schema": FUNCTION["parameters"]}
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    calls = 0
    for turn in range(TURNS):
        if turn % 2:
            async with sdk.messages.stream(
                model=target["model"], max_tokens=256, messages=messages, tools=tools
            ) as stream:
                message = await stream.get_final_message()
        else:
            message = await sdk.messages.create(
                model=target["model"], max_tokens=256, messages=messages, tools=tools
            )
        uses = [b for b in message.content if b.type == "tool_use"]
        if not uses:
            break
        calls += 1
        messages.append({"role": "assistant", "content": [b.model_dump() for b in message.content]})
        # Agents send the tool result with extra text blocks in the same user turn.
        results: list[Any] = [
            {"type": "tool_result", "tool_use_id": u.id, "content": RESULT} for u in uses
        ]
        messages.append({"role": "user", "content": [*results, {"type": "text", "text": "ok"}]})
    assert calls == 1
    assert message.stop_reason == "end_turn"
    text = "".join(b.text for b in message.content if b.type == "text")
    assert "temp_c" in text


async def test_responses_tool_loop_ends(target: dict[str, Any]) -> None:
    client = _openai(target)
    tools: Any = [{"type": "function", **FUNCTION}]
    items: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    calls = 0
    for _ in range(TURNS):
        response = await client.responses.create(
            model=target["model"], input=items, tools=tools, store=False
        )
        function_calls = [o for o in response.output if o.type == "function_call"]
        if not function_calls:
            break
        calls += 1
        for call in function_calls:
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                }
            )
            items.append(
                {"type": "function_call_output", "call_id": call.call_id, "output": RESULT}
            )
    assert calls == 1
    assert "temp_c" in response.output_text
    assert json.loads(RESULT)["temp_c"] == 21
