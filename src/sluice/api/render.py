"""Writing answers over ASGI: JSON, errors in the OpenAI envelope, SSE."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from sluice.errors import GatewayError, retry_after_value
from sluice.pipeline.sink import Cut, Headers
from sluice.storage.availability import as_dependency_unavailable

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_CT = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_json(send: Send, status: int, body: bytes, headers: Headers) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_headers(exc: GatewayError, base: Headers) -> Headers:
    headers = [*base, JSON_CT]
    retry_after = retry_after_value(exc)
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    for name, value in exc.headers.items():
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1", "replace")))
    return headers


async def answer_json(send: Send, base: Headers, produce: Callable[[], Awaitable[object]]) -> None:
    """Send what ``produce`` returns as a 200 JSON answer, or its error: a
    :class:`GatewayError` as itself, the database being away as 503
    ``dependency_unavailable``; any other exception is a bug and propagates."""
    try:
        body = await produce()
    except GatewayError as exc:
        await send_error(send, exc, base)
        return
    except Exception as exc:
        unavailable = as_dependency_unavailable(exc)
        if unavailable is None:
            raise
        await send_error(send, unavailable, base)
        return
    await send_json(send, 200, orjson.dumps(body), [*base, JSON_CT])


async def send_error(
    send: Send, exc: GatewayError, base: Headers, body: bytes | None = None
) -> None:
    """An error answer; ``body`` in the client's format (the OpenAI envelope by default)."""
    payload = orjson.dumps(exc.to_openai()) if body is None else body
    await send_json(send, exc.status, payload, error_headers(exc, base))


class AsgiSink:
    """The pipeline's :class:`~sluice.pipeline.sink.ResponseSink` over an ASGI ``send``."""

    __slots__ = ("_send", "ended", "gone", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self.ended = False
        self.gone = False

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        self.started = True
        self.ended = True
        await send_json(self._send, status, body, headers)

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        self.started = True
        self.ended = True
        await send_error(self._send, exc, headers, body)

    async def start_stream(self, headers: Headers) -> None:
        self.started = True
        typed = any(name == b"content-type" for name, _ in headers)  # a binary stream
        await self._send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": headers + (SSE_HEADERS[1:] if typed else SSE_HEADERS),
            }
        )

    async def chunk(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        self.ended = True
        if type(data) is Cut:  # left unfinished: the server drops the connection
            return
        await self._send({"type": "http.response.body", "body": data})


async def read_body(receive: Receive, *, limit: int) -> bytes:
    """The whole request body; raises ``BodyTooLarge`` past ``limit`` bytes."""
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        if len(body) > limit:
            raise BodyTooLarge
        return body
    parts = [body]
    size = len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass
