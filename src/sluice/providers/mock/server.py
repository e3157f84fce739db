"""``sluice mock-upstream``: the mock's scripted behaviours as an OpenAI-compatible HTTP server.

A raw asyncio protocol with the httptools parser, not an ASGI app: in benchmarks it shares a
core with the load generator, so it must cost far less than the gateway it feeds. Scripts
come from the request's model name and ``x-mock-<param>`` headers (see ``script``).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httptools
import orjson

from sluice.providers.mock import caps, embed
from sluice.providers.mock import script as s
from sluice.providers.mock.batch_api import MockBatchApi
from sluice.providers.mock.media_server import ROUTES as MEDIA_ROUTES
from sluice.providers.mock.media_server import media_reply
from sluice.providers.mock.reply import HOLD_S as _HOLD_S
from sluice.providers.mock.reply import CutStream, Reply
from sluice.providers.mock.reply import json_reply as _json_reply
from sluice.providers.mock.wire import native_reply
from sluice.tasks import OwnedTasks

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


class MockApp:
    """Decides the reply for one request; keeps ``flaky`` counters and a request count."""

    def __init__(self) -> None:
        self.flaky = s.FlakyCounter()
        self.requests = 0
        self.batches = MockBatchApi(self)

    async def reply(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        full_path = path.split("?", 1)[0]
        batch = await self.batches.reply(method, full_path, headers, raw)
        if batch is not None:  # OpenAI Files and Batches, Anthropic Message Batches
            return batch
        path = full_path.removeprefix("/v1")
        if method == "GET":
            if path in ("/health", "/"):
                return _json_reply(200, {"status": "ok", "requests": self.requests})
            if path == "/models":
                return _json_reply(
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
            return _json_reply(404, s.error_body(404))
        if method != "POST":
            return _json_reply(404, s.error_body(404))
        if path in MEDIA_ROUTES:  # audio, images, rerank, moderations
            return await media_reply(self, path, headers, raw) or _json_reply(404, {})
        if path not in ("/chat/completions", "/completions", "/embeddings"):
            # Native wire formats (Anthropic, Gemini, Vertex AI, Bedrock, Cohere).
            native = await native_reply(self, full_path, headers, raw)
            return native or _json_reply(404, s.error_body(404))
        self.requests += 1
        overrides = {
            k[7:].replace("-", "_"): v for k, v in headers.items() if k.startswith("x-mock-")
        }
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            script = s.MockScript.parse(str(body.get("model", "chat")), overrides)
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _bad_request(str(exc))
        if script.hang:
            await asyncio.sleep(_HOLD_S)
        status = self.flaky.fails(str(body.get("model")), script)
        if script.reset and (status is not None or script.flaky == 0):
            return Reply(0, abort=True)
        stream = bool(body.get("stream")) and path != "/embeddings"
        if (status is not None or not stream) and script.first_delay_s:
            await asyncio.sleep(script.first_delay_s)
        if status is not None:
            extra = (
                (("retry-after", f"{script.retry_after_s:g}"),)
                if (script.retry_after_s is not None)
                else ()
            )
            return _json_reply(status, s.error_body(status, script.error_code), extra)
        rid = f"{self.requests:x}"
        created = int(time.time())
        chat = path == "/chat/completions"
        try:
            if path == "/embeddings":
                return _answer(script, embed.embeddings(script, body))
            if stream:
                planned = s.stream_chunks(script, body, rid=rid, created=created, chat=chat)
                return Reply(200, stream=_events(script, body, planned))
            make = s.chat_completion if chat else s.text_completion
            return _answer(script, make(script, body, rid=rid, created=created))
        except caps.MockRequestError as exc:
            return _bad_request(str(exc), param=exc.param)


def _bad_request(message: str, *, param: str | None = None) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return _json_reply(400, {"error": error})


def _answer(script: s.MockScript, obj: dict[str, Any]) -> Reply:
    """A 200 JSON answer, padded (``pad_bytes``) and sent chunked (``chunked``) on request."""
    if script.pad_bytes:
        obj["mock_padding"] = "x" * script.pad_bytes
    body = orjson.dumps(obj)
    if not script.chunked:
        return Reply(200, body)
    return Reply(200, stream=_pieces(body), content_type="application/json")


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    step = 1 << 20
    for i in range(0, len(body), step):
        yield body[i : i + step]


async def _events(
    script: s.MockScript,
    body: dict[str, Any],
    planned: tuple[list[dict[str, Any]], dict[str, Any] | None],
) -> AsyncIterator[bytes]:
    chunks, usage = planned
    options = body.get("stream_options")
    want_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    if script.first_delay_s:
        await asyncio.sleep(script.first_delay_s)
    if script.pad_bytes:
        chunks[0]["mock_padding"] = "x" * script.pad_bytes
    delay = script.chunk_delay_ms / 1000
    content = len(chunks) - 1
    held: list[bytes] = []  # one_write: everything goes out at the end, in one write
    for i, chunk in enumerate(chunks):
        if i and delay:
            await asyncio.sleep(delay)
        if script.cut is not None and script.cut <= i < content:
            if held:
                yield b"".join(held)
            raise CutStream
        if script.stall is not None and script.stall <= i < content:
            await asyncio.sleep(_HOLD_S)
        payload = b"{not json" if script.malformed == i else orjson.dumps(chunk)
        held.append(b"data: " + payload + b"\n\n")
        if not script.one_write:
            yield held.pop()
    if usage is not None and want_usage:
        held.append(b"data: " + orjson.dumps(usage) + b"\n\n")
    if not script.no_done:
        held.append(b"data: [DONE]\n\n")
    if held:
        yield b"".join(held)


class _Connection(asyncio.Protocol):
    """One client connection; requests are answered in order (no pipelining overlap)."""

    def __init__(self, app: MockApp, tasks: OwnedTasks) -> None:
        self._app = app
        self._tasks = tasks
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes, bool]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._head_bytes = 0
        self._body_bytes = 0
        self._in_head = False
        self._head_fed = 0
        self._refusal: int | None = None
        """431 or 413 once the request outgrew the caps; the connection is then closed."""
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._worker = self._tasks.spawn(self._serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._worker is not None:
            self._worker.cancel()

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        in_head = self._in_head
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse(400)
            return
        if in_head and self._in_head:
            # All of it was head: the parser buffers a header until it ends, so count it here
            # (the callbacks below only see whole headers).
            self._head_fed += len(data)
            if self._head_fed > caps.MAX_HEADER_BYTES:
                self._refusal = 431
        if self._refusal is not None:
            self._refuse(self._refusal)

    def _refuse(self, status: int) -> None:
        """Answer ``status`` and close: the request broke the protocol or the caps."""
        self._refusal = status
        if self._transport is not None:
            body = orjson.dumps(s.error_body(status))
            head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            self._transport.write(
                head.encode()
                + b"content-type: application/json\r\nconnection: close\r\n"
                + b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            self._transport.close()

    # httptools callbacks; past a cap they only count, so memory stays bounded.
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_fed = 0

    def on_headers_complete(self) -> None:
        self._in_head = False

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > caps.MAX_HEADER_BYTES:
            self._refusal = 431
            return
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > caps.MAX_HEADER_BYTES:
            self._refusal = 431
            return
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > caps.MAX_BODY_BYTES or self._refusal is not None:
            self._refusal = self._refusal or 413
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._refusal is not None:
            return
        method = self._parser.get_method().decode()
        keep = self._parser.should_keep_alive()
        self._queue.put_nowait(
            (method, self._url.decode("latin-1"), self._headers, b"".join(self._body), keep)
        )
        self._url, self._headers, self._body = b"", {}, []
        self._head_bytes = self._body_bytes = 0
        full = self._queue.qsize() >= caps.MAX_QUEUED_REQUESTS
        if full and not self._paused and self._transport is not None:
            self._transport.pause_reading()  # a pipelining client waits for its answers
            self._paused = True

    async def _serve(self) -> None:
        while True:
            method, url, headers, body, keep = await self._queue.get()
            if self._paused and self._queue.qsize() < caps.MAX_QUEUED_REQUESTS // 2:
                self._paused = False
                if self._transport is not None:
                    self._transport.resume_reading()
            reply = await self._app.reply(method, url, headers, body)
            if not await self._write(reply, keep):
                return

    async def _write(self, reply: Reply, keep: bool) -> bool:
        transport = self._transport
        if transport is None:
            return False
        head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Error')}"]
        head.extend(f"{k}: {v}" for k, v in reply.headers)
        if not keep:
            head.append("connection: close")
        if reply.abort:
            transport.abort()
            return False
        if reply.stream is None:
            head.append(f"content-type: {reply.content_type or 'application/json'}")
            head.append(f"content-length: {len(reply.body)}")
            transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
        else:
            head.extend(
                (
                    f"content-type: {reply.content_type or 'text/event-stream'}",
                    "cache-control: no-cache",
                    "transfer-encoding: chunked",
                )
            )
            transport.write(("\r\n".join(head) + "\r\n\r\n").encode())
            try:
                async for event in reply.stream:
                    if self._transport is None:
                        return False
                    transport.write(b"%x\r\n%s\r\n" % (len(event), event))
            except CutStream:
                transport.abort()
                return False
            transport.write(b"0\r\n\r\n")
        if not keep:
            transport.close()
            return False
        return True


async def run_server(host: str, port: int, *, ready: asyncio.Event | None = None) -> None:
    """Serve until cancelled."""
    loop = asyncio.get_running_loop()
    app = MockApp()
    tasks = OwnedTasks()
    server = await loop.create_server(lambda: _Connection(app, tasks), host, port, backlog=1024)
    if ready is not None:
        ready.set()
    try:
        async with server:
            await server.serve_forever()
    finally:
        tasks.cancel_all()


def serve(host: str, port: int, *, on_ready: Callable[[], None] | None = None) -> None:
    """Run the mock upstream until SIGINT or SIGTERM; ``on_ready`` is called once it
    listens. Raises ``OSError`` when it cannot listen on ``host:port`` (port taken, address
    not local, ...)."""
    import uvloop

    async def main() -> None:
        stop = asyncio.Event()
        ready = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        server = asyncio.ensure_future(run_server(host, port, ready=ready))
        started = asyncio.ensure_future(ready.wait())
        await asyncio.wait((server, started), return_when=asyncio.FIRST_COMPLETED)
        started.cancel()
        if server.done():
            server.result()  # the bind failed: raise its error
            return
        if on_ready is not None:
            on_ready()
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait((server, stopped), return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass

    uvloop.run(main())
