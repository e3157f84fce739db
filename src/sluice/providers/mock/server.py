"""``sluice mock-upstream``: the mock's scripted behaviours as an OpenAI-compatible HTTP server.

A raw ASGI app (served by uvicorn) so that it costs little next to the gateway it feeds in
benchmarks. Scripts come from the request's model name and ``x-mock-<param>`` headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from sluice.providers.mock import script as s

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_HOLD_S = 3600.0


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        msg = await receive()
        parts.append(msg.get("body", b""))
        if not msg.get("more_body"):
            return b"".join(parts)


async def _json(
    send: Send, status: int, obj: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(obj)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _overrides(scope: Scope) -> dict[str, str]:
    out = {}
    for name, value in scope["headers"]:
        if name.startswith(b"x-mock-"):
            out[name[7:].decode().replace("-", "_")] = value.decode()
    return out


class MockUpstream:
    """The ASGI app. One instance keeps the ``flaky`` counters and a request counter."""

    def __init__(self) -> None:
        self.flaky = s.FlakyCounter()
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                await send({"type": msg["type"] + ".complete"})
                if msg["type"] == "lifespan.shutdown":
                    return
        if scope["type"] != "http":
            return
        path: str = scope["path"].removeprefix("/v1")
        method: str = scope["method"]
        if method == "GET":
            if path in ("/health", "/"):
                await _json(send, 200, {"status": "ok", "requests": self.requests})
            elif path == "/models":
                await _json(
                    send,
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": "mock",
                                "object": "model",
                                "created": 0,
                                "owned_by": "sluice-mock",
                            }
                        ],
                    },
                )
            else:
                await _json(send, 404, s.error_body(404))
            return
        handler = {"/chat/completions": True, "/completions": False}.get(path)
        if method != "POST" or (handler is None and path != "/embeddings"):
            await _json(send, 404, s.error_body(404))
            return
        self.requests += 1
        try:
            body = orjson.loads(await _read_body(receive))
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            script = s.MockScript.parse(str(body.get("model", "chat")), _overrides(scope))
        except (ValueError, orjson.JSONDecodeError) as exc:
            await _json(
                send,
                400,
                {
                    "error": {
                        "message": str(exc),
                        "type": "invalid_request_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
            return
        status = self.flaky.fails(str(body.get("model")), script)
        if script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        if status is not None:
            extra = []
            if script.retry_after_s is not None:
                extra.append((b"retry-after", str(script.retry_after_s).encode()))
            await _json(send, status, s.error_body(status), extra)
            return
        rid = f"{self.requests:x}"
        created = int(time.time())
        if path == "/embeddings":
            await _json(send, 200, s.embeddings(script, body))
        elif body.get("stream"):
            await self._stream(send, script, body, rid=rid, created=created, chat=bool(handler))
        elif handler:
            await _json(send, 200, s.chat_completion(script, body, rid=rid, created=created))
        else:
            await _json(send, 200, s.text_completion(script, body, rid=rid, created=created))

    async def _stream(
        self,
        send: Send,
        script: s.MockScript,
        body: dict[str, Any],
        *,
        rid: str,
        created: int,
        chat: bool,
    ) -> None:
        chunks, usage = s.stream_chunks(script, body, rid=rid, created=created, chat=chat)
        options = body.get("stream_options")
        want_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        delay = script.chunk_delay_ms / 1000
        content = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            if i and delay:
                await asyncio.sleep(delay)
            if script.cut is not None and i >= script.cut and i < content:
                raise ConnectionAbortedError("mock: cut stream")  # uvicorn drops the connection
            if script.stall is not None and i >= script.stall and i < content:
                await asyncio.sleep(_HOLD_S)
            payload = b"{not json" if script.malformed == i else orjson.dumps(chunk)
            await send(
                {
                    "type": "http.response.body",
                    "body": b"data: " + payload + b"\n\n",
                    "more_body": True,
                }
            )
        tail = b"data: [DONE]\n\n"
        if usage is not None and want_usage:
            tail = b"data: " + orjson.dumps(usage) + b"\n\n" + tail
        await send({"type": "http.response.body", "body": tail})


def serve(host: str, port: int) -> None:
    """Run the mock upstream until interrupted."""
    import logging

    import uvicorn

    class _QuietCut(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "mock: cut stream" not in record.getMessage() and not (
                record.exc_info and "mock: cut stream" in str(record.exc_info[1])
            )

    logging.getLogger("uvicorn.error").addFilter(_QuietCut())
    uvicorn.run(
        MockUpstream(),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
    )
