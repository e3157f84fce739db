"""Translated paths through the gateway, each provider family served in its own wire format
by the mock upstream: structured output both ways, a Claude-Code-shaped conversation on
non-Anthropic models, a Codex-shaped Responses request on non-OpenAI models, and the
Responses side routes (compact, input_items, input_tokens, cancel)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sluice.app import SluiceApp
from tests.integration.conftest import make_settings, running
from tests.mock_upstream import mock_upstream

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
    "additionalProperties": False,
}
NON_ANTHROPIC = ("mock-chat", "gpt-native", "gem", "coh", "bed")
NON_OPENAI = ("claude", "gem", "mock-chat")


@pytest.fixture
async def gw(
    tmp_path: Path,
) -> AsyncIterator[tuple[SluiceApp, httpx.AsyncClient]]:
    async with mock_upstream() as root:
        config = _config(root)
        async with running(make_settings(tmp_path), config) as pair:
            yield pair


def _config(root: str) -> str:
    return f"""
providers:
  anth: {{type: anthropic, base_url: "{root}", api_key: sk-ant}}
  gemini: {{type: gemini, base_url: "{root}", api_key: gm-key}}
  cohere: {{type: cohere, base_url: "{root}", api_key: co-key}}
  bedrock:
    {{type: bedrock, base_url: "{root}", region: eu-central-1, access_key_id: AKIDEXAMPLE,
      secret_access_key: secret}}
  oa: {{type: openai, base_url: "{root}/v1", api_key: sk-up}}
  mock: {{type: mock}}
models:
  - {{name: gpt-native, deployments: [{{provider: oa, model: chat}}]}}
  - {{name: claude, deployments: [{{provider: anth, model: chat}}]}}
  - {{name: gem, deployments: [{{provider: gemini, model: chat}}]}}
  - {{name: coh, deployments: [{{provider: cohere, model: chat}}]}}
  - {{name: bed, deployments: [{{provider: bedrock, model: chat}}]}}
  - {{name: mock-chat, deployments: [{{provider: mock, model: chat}}]}}
"""


def _matches_schema(text: str) -> None:
    value = orjson.loads(text)
    assert set(value) == {"city", "days"}
    assert isinstance(value["city"], str) and isinstance(value["days"], int)


@pytest.mark.parametrize("model", ["mock-chat", "gpt-native", "gem", "coh", "bed"])
async def test_output_config_format_to_non_anthropic_models(
    gw: tuple[SluiceApp, httpx.AsyncClient], model: str
) -> None:
    _, client = gw
    resp = await client.post(
        "/v1/messages",
        json={
            "model": model,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "Weather in Oslo for 3 days?"}],
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        },
    )
    assert resp.status_code == 200, resp.text
    [block] = resp.json()["content"]
    _matches_schema(block["text"])


async def test_response_format_to_an_anthropic_deployment(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
    body = {
        "model": "claude",
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "response_format": fmt,
    }
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    _matches_schema(resp.json()["choices"][0]["message"]["content"])
    loose = await client.post(
        "/v1/chat/completions", json={**body, "response_format": {"type": "json_object"}}
    )
    assert loose.status_code == 200, loose.text
    thinking = {
        "model": "claude",
        "reasoning_effort": "high",
        "temperature": 0.3,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "Why?"},
        ],
    }
    for stream in (False, True):
        answer = await client.post("/v1/chat/completions", json={**thinking, "stream": stream})
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("model", ["claude", "gem", "mock-chat"])
async def test_responses_text_format_on_chat_served_models(
    gw: tuple[SluiceApp, httpx.AsyncClient], model: str
) -> None:
    _, client = gw
    fmt = {"type": "json_schema", "name": "weather", "schema": SCHEMA, "strict": True}
    resp = await client.post(
        "/v1/responses", json={"model": model, "input": "Oslo?", "text": {"format": fmt}}
    )
    assert resp.status_code == 200, resp.text
    [item] = resp.json()["output"]
    _matches_schema(item["content"][0]["text"])


async def test_structured_output_to_bedrock_streams_through_the_answer_tool(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    """Bedrock answers through a forced tool; the stream carries its input as the text."""
    _, client = gw
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
    body = {
        "model": "bed",
        "stream": True,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "response_format": fmt,
    }
    resp = await client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    chunks = [
        orjson.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: {")
    ]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert not any("tool_calls" in d for d in deltas)
    _matches_schema("".join(d.get("content") or "" for d in deltas))
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop"


def _claude_code(model: str, *, stream: bool) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "user_abc"},
        "tools": [
            {
                "name": "Bash",
                "description": "Run a command",
                "input_schema": {
                    "type": "object",
                    "properties": {"command": {"type": "string"}},
                    "required": ["command"],
                },
            }
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is in this folder?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "List it.", "signature": "c2ln"},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "README.md"},
                ],
            },
            {"role": "system", "content": "The user's shell is bash."},
            {"role": "user", "content": "Summarise it."},
        ],
    }


@pytest.mark.parametrize("model", NON_ANTHROPIC)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("thinking", ["adaptive", "enabled"])
async def test_a_claude_code_conversation_on_non_anthropic_models(
    gw: tuple[SluiceApp, httpx.AsyncClient], model: str, stream: bool, thinking: str
) -> None:
    _, client = gw
    body = _claude_code(model, stream=stream)
    if thinking == "enabled":
        body["thinking"] = {"type": "enabled", "budget_tokens": 31999}
    resp = await client.post(
        "/v1/messages",
        json=body,
        headers={
            "anthropic-beta": "interleaved-thinking-2025-05-14",
            "anthropic-version": "2023-06-01",
        },
    )
    assert resp.status_code == 200, resp.text
    if stream:
        assert b"event: message_stop" in resp.content
    else:
        assert resp.json()["stop_reason"] in ("end_turn", "tool_use")


def _codex(model: str, *, stream: bool, custom_first: bool = False) -> dict[str, Any]:
    custom = {
        "type": "custom",
        "name": "apply_patch",
        "description": "Patch files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
    }
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": "shell",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
        custom,
        {
            "type": "namespace",
            "name": "mcp__docs",
            "description": "Docs",
            "tools": [{"type": "function", "name": "search", "parameters": {"type": "object"}}],
        },
        {"type": "web_search", "external_web_access": False},
    ]
    if custom_first:
        tools = [custom]
    return {
        "model": model,
        "instructions": "You are Codex.",
        "stream": stream,
        "store": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "tools": tools,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "sandbox"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "fix it"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
            {
                "type": "custom_tool_call",
                "call_id": "call_1",
                "name": "apply_patch",
                "input": "*** Begin",
            },
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done!"},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "thanks"}],
            },
        ],
    }


@pytest.mark.parametrize("model", NON_OPENAI)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_codex_request_on_non_openai_models(
    gw: tuple[SluiceApp, httpx.AsyncClient], model: str, stream: bool
) -> None:
    _, client = gw
    resp = await client.post("/v1/responses", json=_codex(model, stream=stream))
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-sluice-warning"] == "dropped: tool web_search"
    if stream:
        assert b"event: response.completed" in resp.content
    else:
        assert resp.json()["status"] == "completed"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_custom_tool_call_comes_back_as_such(
    gw: tuple[SluiceApp, httpx.AsyncClient], stream: bool
) -> None:
    _, client = gw
    body = _codex("claude", stream=stream, custom_first=True)
    body["input"] = body["input"][:2]
    resp = await client.post("/v1/responses", json=body)
    assert resp.status_code == 200, resp.text
    assert "x-sluice-warning" not in resp.headers
    if stream:
        events = [
            orjson.loads(line[6:])
            for line in resp.content.split(b"\n")
            if line.startswith(b"data: ")
        ]
        final = next(e for e in events if e["type"] == "response.completed")["response"]
    else:
        final = resp.json()
    [item] = final["output"]
    assert (item["type"], item["name"]) == ("custom_tool_call", "apply_patch")
    assert isinstance(item["input"], str)


async def test_compact(gw: tuple[SluiceApp, httpx.AsyncClient]) -> None:
    app, client = gw
    codex = _codex("claude", stream=False)
    resp = await client.post(
        "/v1/responses/compact",
        json={"model": "gem", "input": codex["input"], "instructions": "You are Codex."},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "response.compaction"
    *users, summary = body["output"]
    assert [u["content"][0]["text"] for u in users] == ["fix it", "thanks"]
    assert summary["role"] == "user"
    assert summary["content"][0]["text"].startswith("Summary of the conversation so far")
    assert len(summary["content"][0]["text"]) > 60
    rt = app.runtime
    assert rt is not None
    await rt.usage.flush()
    [row] = await rt.storage.usage.recent()
    assert (row.endpoint, row.status) == ("responses", 200)
    bad = await client.post("/v1/responses/compact", json={"model": "gem", "input": []})
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "input")


async def test_compact_on_a_native_responses_deployment(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    resp = await client.post(
        "/v1/responses/compact",
        json={"model": "gpt-native", "input": "a long conversation", "instructions": "Be Codex."},
    )
    assert resp.status_code == 200, resp.text
    *users, summary = resp.json()["output"]
    assert [u["content"] for u in users] == ["a long conversation"]
    assert summary["content"][0]["text"].startswith("Summary of the conversation so far")
    native = (
        await client.post("/v1/responses", json={"model": "gpt-native", "input": "hi"})
    ).json()
    items = await client.get(f"/v1/responses/{native['id']}/input_items")
    assert items.status_code == 404
    assert "kept by the provider" in items.json()["error"]["message"]


async def test_input_items_input_tokens_and_cancel(
    gw: tuple[SluiceApp, httpx.AsyncClient],
) -> None:
    _, client = gw
    body = _codex("gem", stream=False)
    body["store"] = True
    first = (await client.post("/v1/responses", json=body)).json()
    listed = await client.get(f"/v1/responses/{first['id']}/input_items", params={"order": "asc"})
    assert listed.status_code == 200, listed.text
    page = listed.json()
    kinds = [(i["type"], i.get("role")) for i in page["data"]]
    assert kinds == [
        ("message", "system"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "user"),
    ]
    assert page["first_id"] == page["data"][0]["id"] and not page["has_more"]
    newest = await client.get(f"/v1/responses/{first['id']}/input_items", params={"limit": 2})
    assert [i["id"] for i in newest.json()["data"]] == [i["id"] for i in page["data"][:-3:-1]]
    assert newest.json()["has_more"]
    missing = await client.get("/v1/responses/resp_nope/input_items")
    assert missing.status_code == 404

    counted = await client.post("/v1/responses/input_tokens", json=body)
    assert counted.status_code == 200, counted.text
    assert counted.json()["object"] == "response.input_tokens"
    small = await client.post("/v1/responses/input_tokens", json={"model": "gem", "input": "hi"})
    assert 0 < small.json()["input_tokens"] < counted.json()["input_tokens"]
    unknown = await client.post("/v1/responses/input_tokens", json={"model": "nope", "input": "x"})
    assert unknown.status_code == 404

    cancel = await client.post(f"/v1/responses/{first['id']}/cancel")
    assert cancel.status_code == 400
    assert "background=true" in cancel.json()["error"]["message"]
    assert (await client.post("/v1/responses/resp_nope/cancel")).status_code == 404
    assert (await client.get(f"/v1/responses/{first['id']}")).status_code == 200
