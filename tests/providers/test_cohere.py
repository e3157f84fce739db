"""Cohere v2: chat and embed translation, and the stream translator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sluice.errors import ErrorKind, GatewayError
from sluice.providers.cohere.stream import CohereTranslator
from sluice.providers.cohere.transform import (
    chat_request,
    chat_response,
    embed_request,
    embed_response,
)
from sluice.types import Usage
from tests.providers.conftest import sse_objects


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def test_chat_request() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}}
    out = chat_request(
        {
            "messages": [
                {"role": "developer", "content": "Be terse."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                    ],
                },
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
            ],
            "top_p": 0.8,
            "stop": "END",
            "max_tokens": 9,
            "seed": 1,
            "tools": [_tool("a"), _tool("b")],
            "tool_choice": {"type": "function", "function": {"name": "b"}},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"schema": {"type": "object"}},
            },
        },
        model="command-a",
        stream=True,
    )
    assert out["model"] == "command-a" and out["stream"] is True
    assert out["messages"][0] == {"role": "system", "content": "Be terse."}
    assert out["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png"},
    }
    assert out["messages"][2]["tool_calls"][0]["function"] == {"name": "a", "arguments": '{"x":1}'}
    assert out["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "done"}
    assert (out["p"], out["stop_sequences"], out["max_tokens"], out["seed"]) == (0.8, ["END"], 9, 1)
    assert [t["function"]["name"] for t in out["tools"]] == ["b"]  # the named tool only
    assert out["tool_choice"] == "REQUIRED"
    assert out["response_format"] == {"type": "json_object", "json_schema": {"type": "object"}}
    none = chat_request(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [_tool("a")],
            "tool_choice": "none",
        },
        model="m",
        stream=False,
    )
    assert none["tool_choice"] == "NONE" and "stream" not in none


def test_chat_response() -> None:
    choice, usage = chat_response(
        {
            "id": "r",
            "finish_reason": "TOOL_CALL",
            "message": {
                "role": "assistant",
                "tool_plan": "I will call a.",
                "tool_calls": [
                    {"id": "c9", "type": "function", "function": {"name": "a", "arguments": "{}"}}
                ],
            },
            "usage": {
                "billed_units": {"input_tokens": 10, "output_tokens": 3},
                "tokens": {"input_tokens": 70, "output_tokens": 3},
                "cached_tokens": 4,
            },
        }
    )
    assert choice.text is None and choice.finish_reason == "tool_calls"
    assert (choice.tool_calls[0].id, choice.tool_calls[0].name) == ("c9", "a")
    assert usage == Usage(10, 3, 4)
    text, _ = chat_response(
        {
            "finish_reason": "MAX_TOKENS",
            "message": {"content": [{"type": "text", "text": "Hi"}]},
            "usage": {"tokens": {"input_tokens": 5, "output_tokens": 1}},
        }
    )
    assert (text.text, text.finish_reason) == ("Hi", "length")
    with pytest.raises(GatewayError) as info:
        chat_response({"finish_reason": "ERROR", "message": {}})
    assert info.value.kind is ErrorKind.PROVIDER_ERROR


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _msg(**fields: Any) -> dict[str, Any]:
    return {"delta": {"message": fields}}


def test_stream_with_tool_call() -> None:
    raw = b"".join(
        [
            _event("message-start", {"id": "s1", **_msg(role="assistant")}),
            _event("tool-plan-delta", _msg(tool_plan="I will")),
            _event(
                "tool-call-start",
                {
                    "index": 0,
                    **_msg(
                        tool_calls={
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "a", "arguments": ""},
                        }
                    ),
                },
            ),
            _event(
                "tool-call-delta",
                {"index": 0, **_msg(tool_calls={"function": {"arguments": '{"x"'}})},
            ),
            _event(
                "tool-call-delta",
                {"index": 0, **_msg(tool_calls={"function": {"arguments": ":1}"}})},
            ),
            _event("tool-call-end", {"index": 0}),
            _event(
                "message-end",
                {
                    "delta": {
                        "finish_reason": "TOOL_CALL",
                        "usage": {"billed_units": {"input_tokens": 8, "output_tokens": 6}},
                    }
                },
            ),
        ]
    )
    translator = CohereTranslator(include_usage=True, model="command-a")
    out = b"".join(translator.feed(raw[i : i + 9]) for i in range(0, len(raw), 9))
    assert translator.done
    chunks = sse_objects(out + translator.close())
    assert chunks[0]["id"] == "s1"
    calls = [
        tc
        for c in chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert calls[0]["id"] == "c1"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"x":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": 6,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_stream_without_message_end_is_interrupted() -> None:
    translator = CohereTranslator(include_usage=False, model="m")
    translator.feed(_event("message-start", {"id": "s1", **_msg(role="assistant")}))
    with pytest.raises(GatewayError) as info:
        translator.close()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED


def test_embed() -> None:
    assert embed_request({"input": ["a", "b"], "dimensions": 256}, model="embed-v4.0") == {
        "model": "embed-v4.0",
        "texts": ["a", "b"],
        "input_type": "search_document",
        "embedding_types": ["float"],
        "output_dimension": 256,
    }
    assert embed_request({"input": "q", "input_type": "search_query"}, model="m")["input_type"] == (
        "search_query"
    )
    vectors, usage = embed_response(
        {"embeddings": {"float": [[1, 0], [0, 1]]}, "meta": {"billed_units": {"input_tokens": 4}}}
    )
    assert vectors == [[1.0, 0.0], [0.0, 1.0]] and usage == Usage(4)
