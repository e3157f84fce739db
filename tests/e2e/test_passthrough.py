"""What exactly reaches the upstream: a recording upstream on the reserved ``echo`` port.

The mock upstream cannot show what it received, so this test listens on the port the
``echo`` provider points at and records every request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import openai
import pytest

from tests.e2e.support import Gateway

pytestmark = pytest.mark.e2e


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, object]


def _completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-echo",
            "object": "chat.completion",
            "created": 0,
            "model": "echo-upstream",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "echoed"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()


def _stream(with_usage: bool) -> bytes:
    def chunk(choices: list[object], **extra: object) -> bytes:
        obj = {
            "id": "chatcmpl-echo",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "echo-upstream",
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    out = chunk([{"index": 0, "delta": {"role": "assistant", "content": "echo"}}])
    out += chunk([{"index": 0, "delta": {"content": "ed"}, "finish_reason": "stop"}])
    if with_usage:
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        out += chunk([], usage=usage)
    return out + b"data: [DONE]\n\n"


@asynccontextmanager
async def recording_upstream(sock: socket.socket) -> AsyncIterator[list[Seen]]:
    seen: list[Seen] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            first, *lines = head.split("\r\n")
            method, path, _ = first.split(" ", 2)
            headers = {}
            for line in lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            body = json.loads(raw)
            seen.append(Seen(method, path, headers, body))
            if body.get("stream"):
                options = body.get("stream_options") or {}
                payload, ctype = _stream(bool(options.get("include_usage"))), "text/event-stream"
            else:
                payload, ctype = _completion(), "application/json"
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (ctype.encode(), len(payload), payload)
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, sock=sock)
    try:
        yield seen
    finally:
        server.close()
        await server.wait_closed()


async def test_what_reaches_the_upstream(
    gateway: Gateway, aclient: openai.AsyncOpenAI, echo_sock: socket.socket
) -> None:
    async with recording_upstream(echo_sock) as seen:
        # 1. A non-streaming call with every kind of field the gateway does not read.
        raw = await aclient.chat.completions.with_raw_response.create(
            model="m-echo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            ],
            n=2,
            stop=["END", "\n\n"],
            seed=42,
            user="u-echo",
            temperature=0.3,
            top_p=0.9,
            logit_bias={"50256": -100},
            max_tokens=17,
            tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
            extra_body={"x_vendor_field": {"nested": [1, 2, {"deep": None}]}},
        )
        assert raw.parse().choices[0].message.content == "echoed"
        sent = json.loads(raw.http_request.content)

        # 2. A stream without include_usage: the gateway asks for usage, the client sees none.
        stream = await aclient.chat.completions.create(
            model="m-echo", messages=[{"role": "user", "content": "s"}], stream=True
        )
        chunks = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echoed"
        assert all(c.usage is None for c in chunks)

        # 3. A stream with include_usage and other stream_options kept.
        stream = await aclient.chat.completions.create(
            model="m-echo",
            messages=[{"role": "user", "content": "s"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 2

    assert len(seen) == 3
    first, second, third = seen
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    # Untouched except for the model name.
    assert first.body == {**sent, "model": "echo-upstream"}
    assert first.body["n"] == 2
    assert first.body["stop"] == ["END", "\n\n"]
    assert first.body["seed"] == 42
    assert first.body["user"] == "u-echo"
    assert first.body["x_vendor_field"] == {"nested": [1, 2, {"deep": None}]}

    # The provider's credential goes up; the caller's gateway key never does.
    for s in seen:
        assert s.headers["authorization"] == "Bearer sk-upstream-echo"
        assert gateway.key not in json.dumps(s.headers)
        assert gateway.key not in json.dumps(s.body)
        assert gateway.master_key not in json.dumps(s.headers)

    assert second.body["stream"] is True
    assert second.body["stream_options"] == {"include_usage": True}
    assert third.body["stream_options"] == {"include_usage": True}
    assert second.body["model"] == third.body["model"] == "echo-upstream"
