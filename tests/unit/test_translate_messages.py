"""Messages → OpenAI chat: mid-conversation system messages, thinking, structured output."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.pipeline.dialects.messages import (
    check_governed,
    check_translatable,
    from_chat,
    to_chat,
)
from sluice.pipeline.dialects.messages_thinking import reasoning_effort, response_format
from sluice.types import Usage

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _claude_code_body() -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "messages": [
            {"role": "user", "content": "list files"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"cmd": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a.txt"}],
            },
            {"role": "system", "content": "Reminder: be brief."},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
    }


def test_a_claude_code_conversation_translates() -> None:
    body = _claude_code_body()
    check_governed(body)
    check_translatable(body)
    chat = to_chat(body)
    assert [m["role"] for m in chat["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "system",
        "user",
    ]
    assert chat["messages"][4]["content"] == "Reminder: be brief."
    assistant = chat["messages"][2]
    assert assistant["content"] is None  # thinking blocks are dropped
    assert assistant["tool_calls"][0]["function"]["name"] == "Bash"
    assert "reasoning_effort" not in chat  # adaptive: the target's default
    assert "response_format" not in chat


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 8000}, "medium"),
        ({"type": "enabled", "budget_tokens": 31999}, "high"),
        ({"type": "enabled"}, "medium"),
        ({"type": "adaptive"}, None),
        ({"type": "disabled"}, None),
        (None, None),
    ],
)
def test_thinking_maps_to_reasoning_effort(thinking: Any, effort: str | None) -> None:
    assert reasoning_effort({"thinking": thinking}) == effort


def test_output_config_format_is_response_format() -> None:
    fmt = {"type": "json_schema", "schema": SCHEMA}
    assert response_format({"output_config": {"format": fmt}}) == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA},
    }
    assert response_format({"output_config": {"format": {"type": "json_schema"}}}) == {
        "type": "json_object"
    }
    assert response_format({"output_config": {"effort": "low"}}) is None
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"format": fmt},
    }
    assert to_chat(body)["response_format"]["json_schema"]["schema"] == SCHEMA


def test_json_text_comes_back_as_a_text_block() -> None:
    data = {"choices": [{"message": {"content": '{"city":"Oslo"}'}, "finish_reason": "stop"}]}
    out = from_chat(data, model="m", usage=Usage(3, 4))
    assert out["content"] == [{"type": "text", "text": '{"city":"Oslo"}'}]


def test_server_tools_are_dropped_and_named() -> None:
    from sluice.pipeline.dialects.messages import MessagesTranslation
    from sluice.types import Endpoint, ProviderRequest

    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [
            {"name": "Bash", "input_schema": {"type": "object"}},
            {"type": "custom", "name": "Edit", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        ],
    }
    req = ProviderRequest(Endpoint.MESSAGES, body, b"", "m")
    translation = MessagesTranslation(req)
    assert [t["function"]["name"] for t in translation.upstream.body["tools"]] == ["Bash", "Edit"]
    assert translation.warnings == ("tool web_search_20250305",)


def test_the_mock_anthropic_upstream_enforces_thinking_rules() -> None:
    from sluice.providers.mock import wire_anthropic
    from sluice.providers.mock.wire_common import WireError

    base: dict[str, Any] = {
        "model": "chat",
        "max_tokens": 5000,
        "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": 4096},
    }
    wire_anthropic.check("messages", base)
    for bad in (
        {**base, "temperature": 0.5},
        {**base, "max_tokens": 4096},
        {**base, "tool_choice": {"type": "any"}},
        {**base, "output_config": {"format": {"type": "json_object"}}},
        {
            **base,
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            ],
        },
    ):
        with pytest.raises(WireError):
            wire_anthropic.check("messages", bad)


def test_disable_parallel_tool_use() -> None:
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    chat = to_chat(body)
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("auto", False)
