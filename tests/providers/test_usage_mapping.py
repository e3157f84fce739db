"""Usage mapping, cache tokens included, from answers shaped like each provider's documented
examples, served by a local handler (the mock upstream reports no cache activity)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from sluice.config.providers import Timeouts, validate_provider
from sluice.providers.base import UpstreamCall
from sluice.providers.build import build_provider
from sluice.providers.mock.wire_bedrock import frame
from sluice.types import Usage
from tests.providers.conftest import chat_request, free_port, sse_objects


@dataclass(frozen=True)
class Fixture:
    type: str
    body: dict[str, Any]
    stream: bytes
    content_type: str
    usage: Usage


def _sse(*events: tuple[str | None, dict[str, Any]]) -> bytes:
    out = b""
    for name, data in events:
        if name:
            out += b"event: " + name.encode() + b"\n"
        out += b"data: " + orjson.dumps(data) + b"\n\n"
    return out


_ANTHROPIC_USAGE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 1000,
    "cache_read_input_tokens": 2000,
    "output_tokens": 30,
}
_GEMINI_USAGE = {
    "promptTokenCount": 3000,
    "cachedContentTokenCount": 2048,
    "candidatesTokenCount": 40,
    "thoughtsTokenCount": 60,
    "totalTokenCount": 3100,
}
_BEDROCK_USAGE = {
    "inputTokens": 50,
    "outputTokens": 30,
    "totalTokens": 3080,
    "cacheReadInputTokens": 2000,
    "cacheWriteInputTokens": 1000,
}
_COHERE_USAGE = {
    "billed_units": {"input_tokens": 120, "output_tokens": 30},
    "tokens": {"input_tokens": 190, "output_tokens": 30},
    "cached_tokens": 64,
}
_OPENAI_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920},
}


def _bedrock_event(kind: str, data: dict[str, Any]) -> bytes:
    return frame(kind, orjson.dumps(data))


FIXTURES = {
    "openai": Fixture(
        "openai_compatible",
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": _OPENAI_USAGE,
        },
        _sse(
            (
                None,
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}],
                },
            ),
            (
                None,
                {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "choices": [],
                    "usage": _OPENAI_USAGE,
                },
            ),
        )
        + b"data: [DONE]\n\n",
        "text/event-stream",
        Usage(2006, 300, 1920),
    ),
    "anthropic": Fixture(
        "anthropic",
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": _ANTHROPIC_USAGE,
        },
        _sse(
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_01",
                        "model": "claude-sonnet-4-5",
                        "usage": {**_ANTHROPIC_USAGE, "output_tokens": 1},
                    },
                },
            ),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hi"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 30},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ),
        "text/event-stream",
        Usage(3050, 30, 2000, 1000),
    ),
    "gemini": Fixture(
        "gemini",
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Hi"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": _GEMINI_USAGE,
            "modelVersion": "gemini-2.5-pro",
        },
        _sse(
            (
                None,
                {
                    "candidates": [
                        {"content": {"role": "model", "parts": [{"text": "Hi"}]}, "index": 0}
                    ],
                    "usageMetadata": {"promptTokenCount": 3000},
                },
            ),
            (
                None,
                {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": [{"text": ""}]},
                            "finishReason": "STOP",
                            "index": 0,
                        }
                    ],
                    "usageMetadata": _GEMINI_USAGE,
                },
            ),
        ),
        "text/event-stream",
        Usage(3000, 100, 2048),
    ),
    "bedrock": Fixture(
        "bedrock",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}},
            "stopReason": "end_turn",
            "usage": _BEDROCK_USAGE,
            "metrics": {"latencyMs": 120},
        },
        _bedrock_event("messageStart", {"role": "assistant"})
        + _bedrock_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}})
        + _bedrock_event("contentBlockStop", {"contentBlockIndex": 0})
        + _bedrock_event("messageStop", {"stopReason": "end_turn"})
        + _bedrock_event("metadata", {"usage": _BEDROCK_USAGE, "metrics": {"latencyMs": 120}}),
        "application/vnd.amazon.eventstream",
        Usage(3050, 30, 2000, 1000),
    ),
    "cohere": Fixture(
        "cohere",
        {
            "id": "c-1",
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
            "usage": _COHERE_USAGE,
        },
        _sse(
            (
                "message-start",
                {"type": "message-start", "id": "c-1", "delta": {"message": {"role": "assistant"}}},
            ),
            (
                "content-delta",
                {
                    "type": "content-delta",
                    "index": 0,
                    "delta": {"message": {"content": {"text": "Hi"}}},
                },
            ),
            (
                "message-end",
                {
                    "type": "message-end",
                    "delta": {"finish_reason": "COMPLETE", "usage": _COHERE_USAGE},
                },
            ),
        ),
        "text/event-stream",
        Usage(120, 30, 64),
    ),
}


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, dict[str, Fixture]]]:
    """A handler answering every POST with the current fixture (JSON or its stream)."""
    current: dict[str, Fixture] = {}

    async def handle(request: web.Request) -> web.StreamResponse:
        fixture = current["fixture"]
        body = await request.json()
        if body.get("stream") or "stream" in request.path.lower():
            return web.Response(
                body=fixture.stream, content_type=fixture.content_type.split(";")[0]
            )
        return web.json_response(fixture.body)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", current
    finally:
        await runner.cleanup()


def _config(kind: str, root: str) -> dict[str, Any]:
    base = root + "/v1" if kind == "openai_compatible" else root
    config: dict[str, Any] = {"type": kind, "base_url": base, "api_key": "k"}
    if kind == "bedrock":
        config.update(region="us-east-1", access_key_id="AKID", secret_access_key="s")
        del config["api_key"]
    return config


@pytest.mark.parametrize("name", list(FIXTURES))
async def test_usage_with_cache_tokens(name: str, served: tuple[str, dict[str, Fixture]]) -> None:
    root, current = served
    fixture = current["fixture"] = FIXTURES[name]
    provider = build_provider(name, validate_provider(_config(fixture.type, root)))
    async with aiohttp.ClientSession() as session:
        credential = _config(fixture.type, root).get("api_key")
        call = UpstreamCall("m", "dep", "req", session, Timeouts(), credential=credential)
        resp = await provider.send(
            chat_request({"messages": [{"role": "user", "content": "x"}]}), call
        )
        assert resp.usage == fixture.usage
        usage = orjson.loads(resp.body)["usage"]
        assert usage["prompt_tokens"] == fixture.usage.prompt_tokens
        assert usage["prompt_tokens_details"]["cached_tokens"] == fixture.usage.cached_tokens

        req = chat_request(
            {"messages": [{"role": "user", "content": "x"}]}, stream=True, include_usage=True
        )
        stream = await provider.open_stream(req, call)
        try:
            raw = b"".join([piece async for piece in stream])
        finally:
            await stream.aclose()
        assert stream.usage == fixture.usage
        final = sse_objects(raw)[-1]
        assert final["usage"]["prompt_tokens"] == fixture.usage.prompt_tokens
        assert final["usage"]["completion_tokens"] == fixture.usage.completion_tokens
