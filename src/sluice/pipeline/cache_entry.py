"""A cached answer's two ends: :class:`Keeper` keeps what a request answered (a sink around
the request's own), and :func:`replay` sends a stored answer as the dialect's JSON or SSE
stream.

OpenAI streams (chat, completions) are kept without their usage-only chunk, ``[DONE]`` and
the metadata chunk: the usage chunk is kept apart and sent on replay only when the client
asks for it (``stream_options.include_usage``). Anthropic and Responses streams are kept and
replayed event for event (their usage travels inside their own terminal events).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from sluice.cache.codec import Answer
from sluice.errors import GatewayError
from sluice.observability import answer as meta
from sluice.pipeline.context import RequestContext
from sluice.pipeline.model_name import namer_for
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.types import Endpoint, Usage

_JSON_CT = (b"content-type", b"application/json")
_OPENAI_STREAMS = frozenset({Endpoint.CHAT, Endpoint.COMPLETIONS})
_DATA = b"data: "


class Keeper:
    """A :class:`~sluice.pipeline.sink.ResponseSink` that sends everything on to ``inner``
    and keeps a copy of a successful answer, up to ``limit`` bytes (``over`` past it)."""

    __slots__ = ("_inner", "body", "complete", "limit", "over", "parts", "size")

    def __init__(self, inner: ResponseSink, *, limit: int) -> None:
        self._inner = inner
        self.limit = limit
        self.body: bytes | None = None
        self.parts: list[bytes] = []
        self.size = 0
        self.over = False
        self.complete = False
        """The answer went out in full (a JSON 200, or a stream that ended)."""

    @property
    def started(self) -> bool:
        return self._inner.started

    @started.setter
    def started(self, value: bool) -> None:
        self._inner.started = value

    @property
    def ended(self) -> bool:
        return self._inner.ended

    @ended.setter
    def ended(self, value: bool) -> None:
        self._inner.ended = value

    @property
    def gone(self) -> bool:
        return self._inner.gone

    @gone.setter
    def gone(self, value: bool) -> None:
        self._inner.gone = value

    def _add(self, data: bytes) -> None:
        if self.over:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.over = True
            self.parts.clear()
        else:
            self.parts.append(data)

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        if status == 200:
            self._add(body)
            self.body = body
            self.complete = True
        await self._inner.json(status, body, headers)

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        await self._inner.error(exc, body, headers)

    async def start_stream(self, headers: Headers) -> None:
        await self._inner.start_stream(headers)

    async def chunk(self, data: bytes) -> None:
        self._add(data)
        await self._inner.chunk(data)

    async def end(self, data: bytes = b"") -> None:
        if data:
            self._add(data)
        self.complete = True
        await self._inner.end(data)

    def answer(
        self, ctx: RequestContext, *, usage: Usage, cost_micros: int, now: float
    ) -> Answer | None:
        """What to store, or ``None`` when the answer cannot be kept."""
        if self.over or not self.complete:
            return None
        if self.body is not None:
            body = self.body
            if ctx.want_metadata and ctx.dialect.carries_metadata:
                body = _without_metadata(body)
            return Answer("json", body, (), usage, cost_micros, now)
        if ctx.dialect.endpoint in _OPENAI_STREAMS:
            return _openai_stream(b"".join(self.parts), usage, cost_micros, now)
        return Answer("sse", b"", tuple(self.parts), usage, cost_micros, now)


def _without_metadata(body: bytes) -> bytes:
    obj = orjson.loads(body)
    if isinstance(obj, dict):
        obj.pop("sluice", None)
    return orjson.dumps(obj)


def _openai_stream(data: bytes, usage: Usage, cost_micros: int, now: float) -> Answer | None:
    events: list[bytes] = []
    usage_chunk: bytes | None = None
    done = False
    first: dict[str, Any] | None = None
    for raw in data.split(b"\n\n"):
        event = raw.strip()
        if not event:
            continue
        if event == b"data: [DONE]":
            done = True
            continue
        if event.startswith(_DATA):
            try:
                obj = orjson.loads(event[len(_DATA) :])
            except orjson.JSONDecodeError:
                return None  # not a stream this cache understands: not kept
            if isinstance(obj, dict):
                if "sluice" in obj:
                    continue
                if obj.get("choices") == [] and obj.get("usage") is not None:
                    usage_chunk = event
                    continue
                if first is None:
                    first = obj
        events.append(event + b"\n\n")
    if usage_chunk is None and first is not None:
        usage_chunk = _DATA + orjson.dumps(
            {
                "id": first.get("id"),
                "object": first.get("object"),
                "created": first.get("created"),
                "model": first.get("model"),
                "choices": [],
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
            }
        )
    return Answer("sse", b"", tuple(events), usage, cost_micros, now, usage_chunk, done)


async def replay(ctx: RequestContext, answer: Answer, extra: Headers) -> float | None:
    """Send ``answer`` to the request's sink, named after the model the caller asked for;
    returns the time to its first byte (ms) for a stream."""
    sink = ctx.sink
    namer = namer_for(ctx.request.model)
    started = ctx.arrival.started
    wants_meta = ctx.want_metadata and ctx.dialect.carries_metadata
    if answer.kind == "json":
        body = namer.json(answer.body)
        elapsed = (time.perf_counter() - started) * 1000
        if wants_meta:
            body = meta.with_metadata(body, _metadata(ctx, elapsed))
        headers = ctx.base_headers + extra
        headers.append(_JSON_CT)
        headers += meta.json_headers(0, upstream_ms=0.0, elapsed_ms=elapsed, cache=None)
        await sink.json(200, body, headers)
        return None
    elapsed = (time.perf_counter() - started) * 1000
    headers = ctx.base_headers + extra
    headers += meta.stream_headers(0.0, elapsed_ms=elapsed, cache=None)
    await sink.start_stream(headers)
    ttft = (time.perf_counter() - started) * 1000
    for part in answer.parts:
        await sink.chunk(namer.piece(part))
    tail = b""
    if ctx.request.include_usage and answer.usage_chunk is not None:
        tail += namer.piece(answer.usage_chunk) + b"\n\n"
    if answer.done:
        tail += meta.DONE_EVENT
    if wants_meta:
        chunk = meta.metadata_chunk(
            _metadata(ctx, (time.perf_counter() - started) * 1000),
            request_id=ctx.arrival.request_id,
            created_at=ctx.arrival.created_at,
            model=ctx.request.model,
        )
        tail = meta.with_metadata_chunk(tail, chunk)
    await sink.end(tail)
    return ttft


def _metadata(ctx: RequestContext, latency_ms: float) -> dict[str, Any]:
    return meta.metadata(
        provider="cache",
        deployment="",
        cost_micros=0,
        request_id=ctx.arrival.request_id,
        trace_id=ctx.arrival.trace.trace_id,
        latency_ms=latency_ms,
        upstream_ms=0.0,
        cache_hit=True,
    )
