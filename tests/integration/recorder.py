"""A recording upstream for pass-through tests: it keeps every request it gets (path,
headers, body bytes) and answers in the provider's own format (Anthropic Messages or the
OpenAI Responses API, JSON or SSE) under its own model name, so a test can check what the
gateway forwarded and what the client was told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

UPSTREAM_MODEL = "upstream-snapshot-2026-01-01"
"""The model name every answer of the recorder carries."""


@dataclass(slots=True)
class Seen:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        data = orjson.loads(self.raw)
        assert isinstance(data, dict)
        return data


@dataclass(slots=True)
class Recorder:
    url: str
    seen: list[Seen] = field(default_factory=list)


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _message() -> dict[str, Any]:
    return {
        "id": "msg_rec",
        "type": "message",
        "role": "assistant",
        "model": UPSTREAM_MODEL,
        "content": [{"type": "text", "text": "recorded"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 2},
    }


def _message_events() -> list[bytes]:
    start = {**_message(), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 7, "output_tokens": 1}
    return [
        _sse("message_start", {"message": start}),
        _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "rec"}}),
        _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "orded"}}),
        _sse("content_block_stop", {"index": 0}),
        _sse(
            "message_delta",
            {
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 2},
            },
        ),
        _sse("message_stop", {}),
    ]


def _response(status: str) -> dict[str, Any]:
    done = status == "completed"
    return {
        "id": "resp_rec",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": UPSTREAM_MODEL,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "recorded", "annotations": []}],
            }
        ]
        if done
        else [],
        "usage": {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9} if done else None,
        "metadata": {"model": "caller-written"},
    }


def _response_events() -> list[bytes]:
    return [
        _sse("response.created", {"sequence_number": 0, "response": _response("in_progress")}),
        _sse(
            "response.output_text.delta",
            {"sequence_number": 1, "item_id": "msg_1", "output_index": 0, "delta": "recorded"},
        ),
        _sse("response.completed", {"sequence_number": 2, "response": _response("completed")}),
    ]


def _chat_completion(body: dict[str, Any]) -> web.Response:
    """An OpenAI chat answer (not streamed); a model named ``fail...`` answers 503."""
    if str(body.get("model", "")).startswith("fail"):
        error = {"error": {"message": "overloaded", "type": "server_error"}}
        return web.json_response(error, status=503)
    return web.json_response(
        {
            "id": "chatcmpl-rec",
            "object": "chat.completion",
            "created": 1,
            "model": UPSTREAM_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "recorded"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        }
    )


async def _handle(recorder: Recorder, request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    recorder.seen.append(
        Seen(request.path, {k.lower(): v for k, v in request.headers.items()}, raw)
    )
    body = orjson.loads(raw)
    if request.path.endswith("/chat/completions"):
        return _chat_completion(body)
    stream = bool(body.get("stream"))
    messages = request.path.endswith("/messages")
    if not stream:
        return web.json_response(_message() if messages else _response("completed"))
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for event in _message_events() if messages else _response_events():
        await resp.write(event)
    await resp.write_eof()
    return resp


@asynccontextmanager
async def recording_upstream() -> AsyncIterator[Recorder]:
    """An upstream on a free loopback port serving ``/v1/messages``, ``/v1/responses`` and
    ``/v1/chat/completions``."""
    app = web.Application()
    runner = web.AppRunner(app)
    recorder = Recorder("")

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _handle(recorder, request)

    app.router.add_post("/v1/messages", handle)
    app.router.add_post("/v1/responses", handle)
    app.router.add_post("/v1/chat/completions", handle)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder.url = f"http://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        await runner.cleanup()
