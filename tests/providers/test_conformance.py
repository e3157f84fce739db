"""One conformance suite over every adapter, each talking to the mock upstream in its own
provider's wire format: the same scripts, the same OpenAI-shaped results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from sluice.config.providers import validate_provider
from sluice.errors import ErrorKind, GatewayError, kind_for_upstream_status
from sluice.providers.base import UpstreamStream
from sluice.providers.build import build_provider
from sluice.types import Endpoint, ProviderRequest
from tests.providers.conftest import UNSET, Harness, chat_request, sse_objects

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say something about sluices."},
]
_WORDS = (
    "Sluice relays this mock answer so that demos tests and benchmarks run without a network "
    "connection while every byte of accounting stays exact and every stream ends honestly"
).split()
WEATHER = {
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


def mock_text(words: int = 64) -> str:
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(words))


async def drain(stream: UpstreamStream) -> bytes:
    try:
        return b"".join([piece async for piece in stream])
    finally:
        await stream.aclose()


async def test_chat(harness: Harness) -> None:
    resp = await harness.provider.send(chat_request({"messages": MESSAGES}), harness.call("chat"))
    body = orjson.loads(resp.body)
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": mock_text()}
    assert choice["finish_reason"] == "stop"
    assert resp.usage is not None and not resp.usage.estimated
    assert resp.usage.completion_tokens == 64
    assert resp.usage.prompt_tokens > 0
    assert body["usage"]["prompt_tokens"] == resp.usage.prompt_tokens
    assert body["usage"]["total_tokens"] == resp.usage.prompt_tokens + 64


async def test_chat_exact_usage_and_length(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES, "max_tokens": 5})
    resp = await harness.provider.send(req, harness.call("chat?prompt_tokens=31"))
    body = orjson.loads(resp.body)
    assert body["choices"][0]["message"]["content"] == mock_text(5)
    assert body["choices"][0]["finish_reason"] == "length"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (31, 5)


async def test_chat_without_usage_leaves_it_to_the_gateway(harness: Harness) -> None:
    resp = await harness.provider.send(
        chat_request({"messages": MESSAGES}), harness.call("chat?usage=0")
    )
    assert resp.usage is None
    assert resp.completion_chars == len(mock_text())


async def test_stream(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES}, stream=True)
    stream = await harness.provider.open_stream(req, harness.call("chat?chunks=7"))
    raw = await drain(stream)
    assert b"[DONE]" not in raw
    chunks = sse_objects(raw)
    assert all(c["object"] == "chat.completion.chunk" and c["choices"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == mock_text()
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) == 7
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)
    assert stream.usage is not None and stream.usage.completion_tokens == 64
    assert stream.completion_chars == len(mock_text())


async def test_stream_include_usage(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES}, stream=True, include_usage=True)
    stream = await harness.provider.open_stream(req, harness.call("chat?prompt_tokens=12"))
    chunks = sse_objects(await drain(stream))
    final = chunks[-1]
    assert final["choices"] == []
    assert final["usage"]["prompt_tokens"] == 12
    assert final["usage"]["completion_tokens"] == 64
    assert final["usage"]["total_tokens"] == 76
    assert stream.usage is not None
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (12, 64)


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    calls = message.get("tool_calls")
    assert isinstance(calls, list) and len(calls) == 1
    return calls


async def test_tool_call_round_trip(harness: Harness) -> None:
    first = chat_request({"messages": MESSAGES, "tools": [WEATHER]})
    resp = await harness.provider.send(first, harness.call("chat"))
    choice = orjson.loads(resp.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = _tool_calls(choice["message"])
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "mock", "days": 1}
    assert call["id"]
    # The tool's answer goes back; the mock checks it matches the call (ids, names, and
    # Gemini's thought signature) and answers 400 in its own format when it does not.
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temp_c": 21}'},
    ]
    # Like a model, the mock answers the tool result with text (no tool call loop).
    second = chat_request({"messages": history, "tools": [WEATHER]})
    resp = await harness.provider.send(second, harness.call("chat"))
    choice = orjson.loads(resp.body)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert not choice["message"].get("tool_calls")
    assert choice["message"]["content"].startswith("The tool returned:")
    assert "21" in choice["message"]["content"]
    streamed = await harness.provider.open_stream(
        chat_request({"messages": history, "tools": [WEATHER]}, stream=True), harness.call("chat")
    )
    chunks = sse_objects(await drain(streamed))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert "21" in text and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    if harness.case.tool_choice_none:
        none = chat_request({"messages": history, "tools": [WEATHER], "tool_choice": "none"})
        resp = await harness.provider.send(none, harness.call("chat?completion_tokens=3"))
        choice = orjson.loads(resp.body)["choices"][0]
        assert choice["finish_reason"] == "stop" and "21" in choice["message"]["content"]
    # A required tool is called again, as a model must.
    forced = chat_request({"messages": history, "tools": [WEATHER], "tool_choice": "required"})
    resp = await harness.provider.send(forced, harness.call("chat"))
    assert orjson.loads(resp.body)["choices"][0]["finish_reason"] == "tool_calls"


async def test_tool_result_for_an_unknown_call_is_refused(harness: Harness) -> None:
    if harness.case.name == "openai":
        pytest.skip("the OpenAI-format mock does not check the tool history")
    call = {
        "id": "call_unknown",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    history = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_other", "content": "{}"},
    ]
    with pytest.raises(GatewayError) as info:
        await harness.provider.send(
            chat_request({"messages": history, "tools": [WEATHER]}), harness.call("chat")
        )
    assert info.value.kind in (ErrorKind.PROVIDER_BAD_REQUEST, ErrorKind.CALLER_BAD_REQUEST)
    assert info.value.status == 400


async def test_streamed_tool_call(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES, "tools": [WEATHER]}, stream=True)
    stream = await harness.provider.open_stream(req, harness.call("chat"))
    chunks = sse_objects(await drain(stream))
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta_call in chunk["choices"][0]["delta"].get("tool_calls") or ():
            slot = calls.setdefault(delta_call["index"], {"id": "", "name": "", "arguments": ""})
            slot["id"] = delta_call.get("id") or slot["id"]
            fn = delta_call.get("function") or {}
            slot["name"] += fn.get("name") or ""
            slot["arguments"] += fn.get("arguments") or ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert orjson.loads(calls[0]["arguments"]) == {"city": "mock", "days": 1}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503, 529])
async def test_error_status(harness: Harness, status: int) -> None:
    script = f"chat?status={status}&retry_after_s=2"
    with pytest.raises(GatewayError) as info:
        await harness.provider.send(chat_request({"messages": MESSAGES}), harness.call(script))
    err = info.value
    assert err.kind is kind_for_upstream_status(status)
    assert err.upstream_status == status
    if status in (401, 403):  # our credential was refused: 502, the provider's text kept back
        assert err.kind is ErrorKind.PROVIDER_AUTH and err.status == 502
        assert "scripted error" not in err.message and "scripted error" in (err.detail or "")
        return
    assert err.status == (status if status < 500 else err.kind.info.status)
    assert "scripted error" in err.message  # the provider's own message, from its envelope
    if status == 429:
        assert err.retry_after_s == 2.0
        assert err.retriable
    if status >= 500:  # an upstream failure is a bad gateway, never a 500 (a Sluice bug)
        assert err.status == 502
    if status == 529:
        assert err.kind is ErrorKind.PROVIDER_UNAVAILABLE


@pytest.mark.parametrize("status", [429, 503])
async def test_stream_error_status_raises_before_the_stream(harness: Harness, status: int) -> None:
    req = chat_request({"messages": MESSAGES}, stream=True)
    with pytest.raises(GatewayError) as info:
        await harness.provider.open_stream(req, harness.call(f"chat?status={status}"))
    assert info.value.kind is kind_for_upstream_status(status)


async def test_cut_stream_is_interrupted(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES}, stream=True)
    stream = await harness.provider.open_stream(req, harness.call("chat?cut=3&chunk_delay_ms=5"))
    pieces = []
    with pytest.raises(GatewayError) as info:
        async for piece in stream:
            pieces.append(piece)
    await stream.aclose()
    assert info.value.kind is ErrorKind.PROVIDER_STREAM_INTERRUPTED
    assert pieces  # content went out before the cut


async def test_malformed_stream_event(harness: Harness) -> None:
    req = chat_request({"messages": MESSAGES}, stream=True)
    stream = await harness.provider.open_stream(req, harness.call("chat?malformed=2"))
    with pytest.raises(GatewayError) as info:
        await drain(stream)
    assert info.value.kind is ErrorKind.PROVIDER_BAD_RESPONSE


async def test_stalled_stream_times_out(harness: Harness) -> None:
    harness.with_timeouts(idle_s=0.3)
    req = chat_request({"messages": MESSAGES}, stream=True)
    stream = await harness.provider.open_stream(req, harness.call("chat?stall=2"))
    with pytest.raises(GatewayError) as info:
        await drain(stream)
    assert info.value.kind is ErrorKind.PROVIDER_TIMEOUT


async def test_slow_upstream_hits_the_ttfb_deadline(harness: Harness) -> None:
    harness.with_timeouts(ttfb_s=0.2)
    with pytest.raises(GatewayError) as info:
        await harness.provider.send(
            chat_request({"messages": MESSAGES}), harness.call("chat?latency_ms=2000")
        )
    assert info.value.kind is ErrorKind.PROVIDER_TIMEOUT


async def test_embeddings(harness: Harness) -> None:
    if harness.case.embeddings is None:
        pytest.skip("no embedding model behind this case")
    assert Endpoint.EMBEDDINGS in harness.provider.capabilities
    body = {"model": "emb", "input": ["first text", "second text"], "dimensions": 16}
    req = ProviderRequest(Endpoint.EMBEDDINGS, body, orjson.dumps(body), "emb")
    resp = await harness.provider.send(req, harness.call(harness.case.embeddings + "?dim=16"))
    out = orjson.loads(resp.body)
    assert out["object"] == "list"
    assert [d["index"] for d in out["data"]] == [0, 1]
    vectors = [d["embedding"] for d in out["data"]]
    assert all(len(v) == 16 for v in vectors)
    assert vectors[0] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-3
    if resp.usage is not None:
        assert resp.usage.prompt_tokens == out["usage"]["prompt_tokens"] > 0
    else:
        assert harness.case.name == "gemini"  # AI Studio reports no embedding token counts


async def test_unset_credential_fails_before_any_call(
    harness: Harness, upstream: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    config = {**harness.case.config(upstream, tmp_path), **harness.case.unset_credential}
    provider = build_provider("p", validate_provider(config))
    call = harness.call("chat", config=config)
    with pytest.raises(GatewayError) as info:
        await provider.send(chat_request({"messages": MESSAGES}), call)
    assert info.value.kind is ErrorKind.GATEWAY_UNAVAILABLE
    assert UNSET in info.value.message
