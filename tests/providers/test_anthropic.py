"""Anthropic: the pure translation both ways, the stream translator and relay, and the native
``/v1/messages`` pass-through against the mock upstream."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from sluice.config.providers import Timeouts, validate_provider
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.providers.anthropic.stream import ChatTranslator, MessagesRelay
from sluice.providers.anthropic.transform import JSON_INSTRUCTION, chat_request, chat_response
from sluice.providers.base import UpstreamCall
from sluice.providers.build import build_provider
from sluice.types import Endpoint, ProviderRequest, Usage
from tests.providers.conftest import sse_objects

PNG = "iVBORw0KGgo="
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}


def test_system_messages_become_the_system_prompt() -> None:
    out = chat_request(
        {
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Use SI units."}]},
                {"role": "user", "content": "Hi"},
            ]
        },
        model="claude-x",
        stream=False,
    )
    assert out["model"] == "claude-x"
    assert out["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "Use SI units."},
    ]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["max_tokens"] == 4096
    assert "stream" not in out


def test_parameters_images_and_tools() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                ],
            }
        ],
        "max_completion_tokens": 100,
        "max_tokens": 5,
        "stop": "END",
        "temperature": 1.7,
        "top_p": 0.9,
        "user": "alice",
        "tools": [TOOL],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "parallel_tool_calls": False,
    }
    out = chat_request(body, model="m", stream=True)
    assert out["max_tokens"] == 100
    assert out["stop_sequences"] == ["END"]
    assert out["temperature"] == 1.0
    assert out["top_p"] == 0.9
    assert out["metadata"] == {"user_id": "alice"}
    assert out["stream"] is True
    content = out["messages"][0]["content"]
    assert content[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert content[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/a.jpg"},
    }
    assert out["tools"] == [
        {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert out["tool_choice"] == {
        "type": "tool",
        "name": "lookup",
        "disable_parallel_tool_use": True,
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("auto", {"type": "auto"}), ("required", {"type": "any"}), ("none", {"type": "none"})],
)
def test_tool_choice(choice: str, expected: dict[str, Any]) -> None:
    out = chat_request(
        {"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": choice},
        model="m",
        stream=False,
    )
    assert out["tool_choice"] == expected


def test_tool_calls_and_results_round_trip_into_blocks() -> None:
    call = {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": 1}'},
    }
    call2 = {"id": "toolu_2", "type": "function", "function": {"name": "lookup", "arguments": ""}}
    out = chat_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "content": "Looking.", "tool_calls": [call, call2]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "one"},
                {
                    "role": "tool",
                    "tool_call_id": "toolu_2",
                    "content": [{"type": "text", "text": "two"}],
                },
                {"role": "user", "content": "thanks"},
            ]
        },
        model="m",
        stream=False,
    )
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": 1}},
        {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {}},
    ]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"},
        {"type": "text", "text": "thanks"},
    ]


def test_response_format_is_native_structured_output_or_an_instruction() -> None:
    base = {"messages": [{"role": "user", "content": "x"}]}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}
    out = chat_request({**base, "response_format": fmt}, model="m", stream=False)
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "system" not in out
    loose = chat_request(
        {**base, "response_format": {"type": "json_object"}}, model="m", stream=False
    )
    assert "output_config" not in loose
    assert loose["system"] == [{"type": "text", "text": JSON_INSTRUCTION}]


def test_reasoning_effort_becomes_thinking_where_anthropic_accepts_it() -> None:
    base: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 10000,
        "temperature": 0.2,
        "reasoning_effort": "medium",
    }
    out = chat_request(base, model="m", stream=False)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert "temperature" not in out
    capped = chat_request({**base, "reasoning_effort": "high"}, model="m", stream=False)
    assert capped["thinking"]["budget_tokens"] == 5000  # half of max_tokens
    unsized = {k: v for k, v in base.items() if k != "max_tokens"}
    grown = chat_request({**unsized, "reasoning_effort": "high"}, model="m", stream=False)
    assert grown["thinking"]["budget_tokens"] == 16384
    assert grown["max_tokens"] == 4096 + 16384  # the answer keeps its default room
    for dropped in (
        {**base, "reasoning_effort": "minimal"},
        {**base, "max_tokens": 2000},
        {**base, "tools": [TOOL], "tool_choice": "required"},
        {
            **base,
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
            ],
        },
    ):
        assert "thinking" not in chat_request(dropped, model="m", stream=False)


def test_mid_conversation_system_messages_merge_in_order() -> None:
    out = chat_request(
        {
            "messages": [
                {"role": "system", "content": "first"},
                {"role": "user", "content": "a"},
                {"role": "system", "content": "second"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ]
        },
        model="m",
        stream=False,
    )
    assert [b["text"] for b in out["system"]] == ["first", "second"]
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]


def test_refusals_name_the_field() -> None:
    base = {"messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(GatewayError) as info:
        chat_request({**base, "n": 2}, model="m", stream=False)
    assert (info.value.kind, info.value.param) == (ErrorKind.CALLER_UNSUPPORTED, "n")
    bad = {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(BadRequest) as bad_info:
        chat_request(
            {"messages": [{"role": "assistant", "tool_calls": [bad]}]}, model="m", stream=False
        )
    assert bad_info.value.param == "messages[0].tool_calls[0].function.arguments"
    with pytest.raises(BadRequest):
        chat_request({"messages": [{"role": "system", "content": "only"}]}, model="m", stream=False)


def test_response_with_tool_use_and_cache_usage() -> None:
    choice, usage = chat_response(
        {
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "a"}},
            ],
            "stop_reason": "tool_use",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 7,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
        }
    )
    assert choice.text == "Let me check."
    assert [(c.id, c.name, orjson.loads(c.arguments)) for c in choice.tool_calls] == [
        ("toolu_9", "lookup", {"q": "a"})
    ]
    assert choice.finish_reason == "tool_calls"
    assert usage == Usage(130, 7, 100, 20)
    assert chat_response({"content": [], "stop_reason": "max_tokens"})[0].finish_reason == "length"
    assert (
        chat_response({"content": [], "stop_reason": "refusal"})[0].finish_reason
        == "content_filter"
    )


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\r\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\r\n\r\n"


TOOL_STREAM = b"".join(
    [
        _event(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "model": "claude",
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                }
            },
        ),
        _event("ping", {}),
        _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Checking"}}
        ),
        _event("content_block_stop", {"index": 0}),
        _event(
            "content_block_start",
            {
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "lookup",
                    "input": {},
                },
            },
        ),
        _event(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q": '}},
        ),
        _event(
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"a"}'}},
        ),
        _event("content_block_stop", {"index": 1}),
        _event(
            "message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 15}}
        ),
        _event("message_stop", {}),
    ]
)


def _feed_bytewise(translator: ChatTranslator | MessagesRelay, raw: bytes) -> bytes:
    return b"".join(translator.feed(raw[i : i + 7]) for i in range(0, len(raw), 7))


def test_stream_translation_with_tool_use() -> None:
    translator = ChatTranslator(include_usage=True)
    out = _feed_bytewise(translator, TOOL_STREAM)
    assert translator.done
    out += translator.close()
    chunks = sse_objects(out)
    assert chunks[0]["id"] == "msg_1"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Checking"
    calls = [tc for d in deltas for tc in d.get("tool_calls") or ()]
    assert calls[0]["id"] == "toolu_1" and calls[0]["function"]["name"] == "lookup"
    assert all(tc["index"] == 0 for tc in calls)
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"q": "a"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 15
    assert translator.usage == Usage(9, 15)


def test_stream_error_event_and_early_end() -> None:
    translator = ChatTranslator(include_usage=False)
    with pytest.raises(GatewayError) as info:
        translator.feed(
            _event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    assert info.value.kind is ErrorKind.PROVIDER_UNAVAILABLE
    assert info.value.message == "Overloaded"
    early = ChatTranslator(include_usage=False)
    early.feed(TOOL_STREAM[: TOOL_STREAM.index(b"event: message_delta")])
    with pytest.raises(GatewayError) as info:
        early.close()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED
    with pytest.raises(GatewayError) as info:
        ChatTranslator(include_usage=False).feed(b"event: ping\ndata: {nope\n\n")
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE


def test_relay_passes_events_unchanged_and_reads_usage() -> None:
    relay = MessagesRelay()
    out = _feed_bytewise(relay, TOOL_STREAM)
    assert out == TOOL_STREAM.replace(b"\r\n", b"\n")
    assert relay.close() == b""
    assert relay.usage == Usage(9, 15)
    assert relay.completion_chars == len("Checking") + len('{"q": "a"}')


async def test_messages_pass_through(upstream: str) -> None:
    provider = build_provider(
        "a",
        validate_provider({"type": "anthropic", "base_url": upstream, "api_key": "k"}),
    )
    assert Endpoint.MESSAGES in provider.capabilities
    body = {
        "model": "claude-public",
        "max_tokens": 10,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    async with aiohttp.ClientSession() as session:
        call = UpstreamCall(
            "chat?prompt_tokens=21", "a/chat", "req", session, Timeouts(), credential="k"
        )
        req = ProviderRequest(Endpoint.MESSAGES, body, orjson.dumps(body), "claude-public")
        resp = await provider.send(req, call)
        message = orjson.loads(resp.body)
        assert message["type"] == "message"
        assert message["model"] == "chat?prompt_tokens=21"  # renamed upstream, answered as is
        assert message["content"][0]["type"] == "text"
        assert message["stop_reason"] == "max_tokens"
        assert resp.usage == Usage(21, 10)

        streaming = {**body, "stream": True}
        req = ProviderRequest(Endpoint.MESSAGES, streaming, orjson.dumps(streaming), "x", True)
        stream = await provider.open_stream(req, call)
        try:
            raw = b"".join([piece async for piece in stream])
        finally:
            await stream.aclose()
    names = [line[7:] for line in raw.split(b"\n") if line.startswith(b"event: ")]
    assert names[:3] == [b"message_start", b"content_block_start", b"ping"]
    assert names[-3:] == [b"content_block_stop", b"message_delta", b"message_stop"]
    assert b"chat.completion" not in raw
    assert stream.usage == Usage(21, 10)
