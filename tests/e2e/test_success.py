"""The happy paths through the real gateway, driven by the official ``openai`` SDK."""

from __future__ import annotations

import json
import math

import httpx
import openai
import pytest

from tests.e2e.support import MODEL_NAMES, Gateway, content_of, sse_payloads, wait_row

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "Say something about sluices."}]
# The mock's deterministic answer: 64 words cycling through its word list.
_WORDS = (
    "Sluice relays this mock answer so that demos tests and benchmarks run without a network "
    "connection while every byte of accounting stays exact and every stream ends honestly"
).split()


def mock_text(words: int = 64) -> str:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(words))


async def test_chat_non_streaming(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(model="m-chat", messages=MESSAGES)
    assert raw.status_code == 200
    request_id = raw.headers["x-request-id"]
    assert request_id.startswith("req_")
    assert raw.headers["x-sluice-provider"] == "up"
    assert raw.headers["x-sluice-deployment"] == "up/chat"
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == mock_text()
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 64
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == 64 + completion.usage.prompt_tokens

    row = await wait_row(gateway.db_path, request_id=request_id)
    assert row["status"] == 200
    assert row["error_kind"] is None
    assert row["endpoint"] == "chat"
    assert row["key_id"] == gateway.key_id
    assert row["model"] == "m-chat"
    assert row["provider"] == "up"
    assert row["upstream_model"] == "chat"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == 64
    assert row["tokens_estimated"] == 0
    assert row["streamed"] == 0
    assert row["attempts"] == 1


async def test_alias_resolves_to_the_same_model(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(model="m-chat-alias", messages=MESSAGES)
    assert completion.choices[0].message.content == mock_text()


async def test_chat_streaming_matches_non_streaming(
    aclient: openai.AsyncOpenAI, gateway: Gateway
) -> None:
    whole = await aclient.chat.completions.create(model="m-chat", messages=MESSAGES)
    raw = await aclient.chat.completions.with_raw_response.create(
        model="m-chat", messages=MESSAGES, stream=True
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    request_id = raw.headers["x-request-id"]
    stream = raw.parse()
    chunks = [chunk async for chunk in stream]  # ends without raising: a clean end
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len(chunks) > 2
    assert chunks[-1].choices[0].finish_reason == "stop"
    # Without stream_options.include_usage no usage chunk reaches the client, although the
    # gateway asked the upstream for one to bill exactly.
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)

    row = await wait_row(gateway.db_path, request_id=request_id)
    assert row["status"] == 200
    assert row["streamed"] == 1
    assert row["completion_tokens"] == 64
    assert row["tokens_estimated"] == 0
    assert whole.usage is not None
    assert row["prompt_tokens"] == whole.usage.prompt_tokens
    assert row["ttft_ms"] is not None


async def test_raw_stream_ends_with_done(http: httpx.AsyncClient) -> None:
    body = {"model": "m-chat", "messages": MESSAGES, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        raw = "".join([part async for part in resp.aiter_text()])
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    assert payloads.count("[DONE]") == 1
    assert not any('"error"' in p for p in payloads)
    assert content_of(payloads) == mock_text()


async def test_stream_include_usage(aclient: openai.AsyncOpenAI) -> None:
    stream = await aclient.chat.completions.create(
        model="m-chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert final.usage.completion_tokens == 64
    assert final.usage.total_tokens == final.usage.prompt_tokens + 64
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mock_text()


async def test_stream_include_usage_estimated_when_upstream_has_none(
    aclient: openai.AsyncOpenAI, gateway: Gateway
) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(
        model="m-nousage",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in raw.parse()]
    final = chunks[-1]
    assert final.usage is not None, "the gateway must synthesise the usage chunk it promised"
    assert final.usage.completion_tokens > 0
    row = await wait_row(gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["status"] == 200
    assert row["tokens_estimated"] == 1
    assert row["completion_tokens"] == final.usage.completion_tokens


async def test_tools_round_trip(aclient: openai.AsyncOpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city"],
                },
            },
        }
    ]
    completion = await aclient.chat.completions.create(
        model="m-chat", messages=MESSAGES, tools=tools, tool_choice="auto"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "mock", "days": 1}

    # The tool result goes back in a second turn and the model answers in text.
    follow = await aclient.chat.completions.create(
        model="m-chat",
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp_c": 21}'},
        ],
        tools=tools,
    )
    assert follow.choices[0].finish_reason == "stop"
    assert follow.choices[0].message.content == 'The tool returned: {"temp_c": 21}'

    # Streamed tool calls reassemble to the same call.
    stream = await aclient.chat.completions.create(
        model="m-chat", messages=MESSAGES, tools=tools, stream=True
    )
    name, args = "", ""
    async for chunk in stream:
        for delta_call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if delta_call.function is not None:
                name += delta_call.function.name or ""
                args += delta_call.function.arguments or ""
    assert name == "get_weather"
    assert json.loads(args) == {"city": "mock", "days": 1}


async def test_response_format_json_schema(aclient: openai.AsyncOpenAI) -> None:
    completion = await aclient.chat.completions.create(
        model="m-chat",
        messages=MESSAGES,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {
                        "answer": {"type": "string"},
                        "score": {"type": "number"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                    "required": ["answer", "score", "tags"],
                    "additionalProperties": False,
                },
            },
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"answer": "mock", "score": 1, "tags": ["mock"]}


async def test_n_stop_seed_user_pass_through(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(
        model="m-chat",
        messages=MESSAGES,
        n=3,
        stop=["\n\n"],
        seed=1234,
        user="e2e-user-passthrough",
        max_tokens=5,
        temperature=0.2,
    )
    completion = raw.parse()
    # n and max_tokens reach the upstream untouched: three choices, each cut at five words.
    assert [c.index for c in completion.choices] == [0, 1, 2]
    for choice in completion.choices:
        assert choice.message.content == mock_text(5)
        assert choice.finish_reason == "length"
    row = await wait_row(gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["end_user"] == "e2e-user-passthrough"
    assert row["status"] == 200
    assert row["completion_tokens"] == 3 * 5  # every choice is billed


async def test_legacy_completions(aclient: openai.AsyncOpenAI, gateway: Gateway) -> None:
    raw = await aclient.completions.with_raw_response.create(
        model="m-chat", prompt="Once upon a time", max_tokens=7
    )
    completion = raw.parse()
    assert completion.object == "text_completion"
    assert completion.choices[0].text == mock_text(7)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    row = await wait_row(gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["endpoint"] == "completions"
    assert row["completion_tokens"] == 7

    stream = await aclient.completions.create(
        model="m-chat", prompt="Once upon a time", max_tokens=7, stream=True
    )
    text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == mock_text(7)


async def test_embeddings_base64_default_and_float(
    aclient: openai.AsyncOpenAI, gateway: Gateway
) -> None:
    inputs = ["the first sentence", "a second, different one"]
    # The SDK asks for base64 by default and decodes it to floats.
    raw = await aclient.embeddings.with_raw_response.create(model="m-embed", input=inputs)
    decoded = raw.parse()
    assert json.loads(raw.http_request.content)["encoding_format"] == "base64"
    assert [d.index for d in decoded.data] == [0, 1]
    assert all(len(d.embedding) == 16 for d in decoded.data)
    assert decoded.usage.prompt_tokens > 0

    floats = await aclient.embeddings.create(model="m-embed", input=inputs, encoding_format="float")
    assert all(len(d.embedding) == 16 for d in floats.data)
    for a, b in zip(decoded.data, floats.data, strict=True):
        assert a.embedding == pytest.approx(b.embedding, abs=1e-6)
        assert math.sqrt(sum(v * v for v in b.embedding)) == pytest.approx(1.0, abs=1e-4)
    assert decoded.data[0].embedding != pytest.approx(decoded.data[1].embedding, abs=1e-3)

    row = await wait_row(gateway.db_path, request_id=raw.headers["x-request-id"])
    assert row["endpoint"] == "embeddings"
    assert row["status"] == 200
    assert row["prompt_tokens"] == decoded.usage.prompt_tokens


async def test_in_process_mock_provider(aclient: openai.AsyncOpenAI) -> None:
    raw = await aclient.chat.completions.with_raw_response.create(
        model="m-local", messages=MESSAGES
    )
    assert raw.headers["x-sluice-provider"] == "local"
    assert raw.parse().choices[0].message.content == mock_text()
    stream = await aclient.chat.completions.create(
        model="m-local", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mock_text()
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 64


async def test_models_list_and_retrieve(aclient: openai.AsyncOpenAI) -> None:
    page = await aclient.models.list()
    ids = [m.id for m in page.data]
    assert sorted(ids) == sorted(MODEL_NAMES)
    assert all(m.object == "model" for m in page.data)

    model = await aclient.models.retrieve("m-chat")
    assert model.id == "m-chat"
    assert model.object == "model"
    alias = await aclient.models.retrieve("m-chat-alias")
    assert alias.id == "m-chat-alias"

    with pytest.raises(openai.NotFoundError) as info:
        await aclient.models.retrieve("no-such-model")
    assert info.value.status_code == 404
    assert info.value.code == "model_not_found"
