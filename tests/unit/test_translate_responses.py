"""Responses → OpenAI chat: custom, namespace and built-in tools; reasoning and custom tool
call items; the way back to output items (answers and streams)."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects.responses_stream import ResponsesStreamWriter
from sluice.pipeline.dialects.responses_tools import (
    CUSTOM_PARAMETERS,
    chat_tool_choice,
    chat_tools,
)

CODEX_TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "shell", "parameters": {"type": "object"}},
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Apply a patch.",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
    },
    {
        "type": "namespace",
        "name": "mcp__docs",
        "description": "Docs server",
        "tools": [
            {"type": "function", "name": "search", "parameters": {"type": "object"}},
            {"type": "function", "name": "shell", "parameters": {"type": "object"}},
        ],
    },
    {"type": "web_search", "external_web_access": False},
    {"type": "local_shell"},
]


def test_codex_tools_on_chat() -> None:
    tools = chat_tools(CODEX_TOOLS)
    names = [t["function"]["name"] for t in tools.tools]
    assert names == ["shell", "apply_patch", "search", "mcp__docs__shell", "local_shell"]
    assert tools.local_shell
    patch = tools.tools[1]["function"]
    assert patch["parameters"] == CUSTOM_PARAMETERS
    assert patch["description"].startswith("Apply a patch.\n\nInput grammar (lark):")
    assert tools.custom == {"apply_patch"}
    assert tools.namespaces == {
        "search": ("mcp__docs", "search"),
        "mcp__docs__shell": ("mcp__docs", "shell"),
    }
    assert tools.dropped == ["tool web_search"]
    assert chat_tool_choice({"type": "custom", "name": "apply_patch"}, tools) == {
        "type": "function",
        "function": {"name": "apply_patch"},
    }
    assert chat_tool_choice({"type": "web_search"}, tools) == "auto"
    assert tools.dropped[-1] == "tool_choice web_search"


def test_codex_items_on_chat() -> None:
    tools = chat_tools(CODEX_TOOLS)
    dropped: list[str] = []
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "d"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix"}]},
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
        {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** x"},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "shell",
            "namespace": "mcp__docs",
            "arguments": "{}",
        },
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "Done"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "ok"}],
        },
        {"type": "web_search_call", "id": "ws", "status": "completed"},
    ]
    chat = rf.input_messages(items, tools=tools, dropped=dropped)
    assert [m["role"] for m in chat] == ["system", "user", "assistant", "tool", "tool"]
    calls = chat[2]["tool_calls"]
    assert calls[0]["function"] == {"name": "apply_patch", "arguments": '{"input":"*** x"}'}
    assert calls[1]["function"]["name"] == "mcp__docs__shell"
    assert (chat[3]["content"], chat[4]["content"]) == ("Done", "ok")
    assert dropped == ["web_search_call"]  # reasoning is left out without a warning


def _completion(name: str, arguments: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {
        "choices": [
            {"message": {"content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}
        ]
    }


def test_calls_come_back_as_their_item_types() -> None:
    tools = chat_tools(CODEX_TOOLS)
    [custom], _ = rf.output_from_chat(_completion("apply_patch", '{"input":"*** y"}'), tools)
    assert (custom["type"], custom["input"], custom["call_id"]) == (
        "custom_tool_call",
        "*** y",
        "call_1",
    )
    [spaced], _ = rf.output_from_chat(_completion("mcp__docs__shell", "{}"), tools)
    assert (spaced["type"], spaced["namespace"], spaced["name"]) == (
        "function_call",
        "mcp__docs",
        "shell",
    )
    history = rf.output_messages([custom, spaced], tools)
    assert [c["function"]["name"] for c in history[0]["tool_calls"]] == [
        "apply_patch",
        "mcp__docs__shell",
    ]
    assert rf.custom_input("not json") == "not json"


def _events(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")]


def test_a_streamed_custom_call_is_a_custom_tool_call_item() -> None:
    tools = chat_tools(CODEX_TOOLS)
    writer = ResponsesStreamWriter({"id": "r"}, tools)
    out = writer.start()
    for piece in ('{"inp', 'ut":"*** z"}'):
        delta = {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_9",
                    "function": {"name": "apply_patch", "arguments": piece},
                }
            ]
        }
        out += writer.chunk({"choices": [{"delta": delta}]})
    out += writer.close_items()
    events = _events(out)
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["type"] == "custom_tool_call"
    done = next(e for e in events if e["type"] == "response.custom_tool_call_input.done")
    assert done["input"] == "*** z"
    item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert (item["type"], item["input"], item["status"]) == (
        "custom_tool_call",
        "*** z",
        "completed",
    )


def test_reasoning_effort() -> None:
    assert rf.reasoning_effort({"effort": "medium", "summary": "auto"}) == "medium"
    assert rf.reasoning_effort({"effort": "xhigh"}) == "high"
    assert rf.reasoning_effort({"effort": "none"}) is None
    assert rf.reasoning_effort(None) is None


def test_the_warning_header_is_bounded_and_plain() -> None:
    from sluice.pipeline.relay import WARNING_MAX_BYTES, warning_value

    assert warning_value(("tool web_search", "item local_shell_call")) == (
        b"dropped: tool web_search, item local_shell_call"
    )
    assert warning_value(("tool a\r\nx-evil: 1",)) == b"dropped: tool a??x-evil: 1"
    assert len(warning_value(tuple(f"tool t{i}" for i in range(500)))) == WARNING_MAX_BYTES


def test_compaction_transcript() -> None:
    from sluice.pipeline.dialects.responses_compact import transcript

    text = transcript(
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
            {"type": "reasoning", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"a":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "message", "role": "assistant", "content": "done"},
        ]
    )
    assert text == (
        '[user]\ngo\n\n[assistant called shell (c1)]\n{"a":1}\n\n'
        "[tool result c1]\nok\n\n[assistant]\ndone"
    )


def test_local_shell_calls_both_ways() -> None:
    tools = chat_tools(CODEX_TOOLS)
    args = '{"command":["ls","-la"],"working_directory":"/w","timeout_ms":1000}'
    [item], _ = rf.output_from_chat(_completion("local_shell", args), tools)
    assert item["type"] == "local_shell_call" and item["call_id"] == "call_1"
    assert item["action"] == {
        "type": "exec",
        "command": ["ls", "-la"],
        "env": {},
        "timeout_ms": 1000,
        "working_directory": "/w",
        "user": None,
    }
    chat = rf.input_messages(
        [item, {"type": "local_shell_call_output", "id": "call_1", "output": "total 0"}],
        tools=tools,
        dropped=[],
    )
    call = chat[0]["tool_calls"][0]
    assert call["function"]["name"] == "local_shell" and call["id"] == "call_1"
    assert chat[1] == {"role": "tool", "tool_call_id": "call_1", "content": "total 0"}
    assert chat_tool_choice({"type": "local_shell"}, tools) == {
        "type": "function",
        "function": {"name": "local_shell"},
    }
    writer = ResponsesStreamWriter({"id": "r"}, tools)
    delta = {
        "tool_calls": [
            {"index": 0, "id": "c", "function": {"name": "local_shell", "arguments": args}}
        ]
    }
    out = writer.chunk({"choices": [{"delta": delta}]}) + writer.close_items()
    events = _events(out)
    assert "response.function_call_arguments.delta" not in [e["type"] for e in events]
    done = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert done["type"] == "local_shell_call" and done["action"]["command"] == ["ls", "-la"]
