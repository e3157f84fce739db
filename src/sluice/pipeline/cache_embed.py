"""A prompt's embedding for the semantic cache (``sluice.cache.semantic``), computed by an
embedding model configured in the gateway and called through the pipeline's one entry
(:func:`sluice.pipeline.run.serve`): the call takes the caller's rate limits and budget like
any request of theirs and writes its own usage row (request id ``<request id>.embed``).

The embedding model is the gateway's choice, not the caller's: the caller's model access
list is not applied to it (their limits and budget are). Any failure (a limit, the budget,
the upstream, a malformed answer) is ``None``: the cache then misses, the request goes on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import struct
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.cache.base import Embed, Vector
from sluice.errors import GatewayError
from sluice.ids import random_hex
from sluice.observability.tracing import start_trace
from sluice.pipeline.context import Arrival, RequestContext
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.pipeline.mcp_stream import RoundSink
from sluice.pipeline.outcome import usage_row
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.pipeline.sink import Headers
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.event import UsageEvent

log = logging.getLogger("sluice.cache")

_DIALECT = OpenAIDialect(Endpoint.EMBEDDINGS)
MAX_DIMENSIONS = 8192
"""Largest embedding accepted (numbers); a longer answer is refused as malformed."""


class PipelineEmbedder:
    """Embeds texts for the callers of requests: :meth:`bind` gives the cache stage the
    ``embed`` of one request (for :meth:`sluice.cache.base.SemanticIndex.find`)."""

    def __init__(
        self,
        svc: Services,
        model: str,
        *,
        record: Callable[[UsageEvent], None],
        timeout_s: float = 5.0,
    ) -> None:
        """``model``: a public model name of the gateway serving embeddings; ``record``:
        where the embedding request's usage row goes (the usage writer); ``timeout_s``: its
        deadline (never past the request's own)."""
        self._svc = svc
        self.model = model
        self._record = record
        self._timeout_s = timeout_s

    def bind(self, ctx: RequestContext) -> Embed:
        """The ``embed`` of the request ``ctx``: its caller pays, its client's going away
        stops it."""
        return partial(self.embed, ctx=ctx)

    async def embed_as(self, principal: Principal, text: str) -> Vector | None:
        """The embedding of ``text`` for ``principal`` outside any request (cache warm-up):
        accounted to that principal, under a request id of its own."""
        loop = asyncio.get_running_loop()
        request_id = "req_" + random_hex(10)
        arrival = Arrival(
            request_id, time.time(), time.perf_counter(), Endpoint.EMBEDDINGS.value, principal,
            start_trace(None),
        )  # fmt: skip
        headers = [(b"x-request-id", request_id.encode())]
        try:
            entry = self._svc.table.resolve(self.model)
        except GatewayError:
            log.warning("the semantic cache's embedding model %r is not configured", self.model)
            return None
        body = {"model": self.model, "input": text}
        req = ProviderRequest(Endpoint.EMBEDDINGS, body, orjson.dumps(body), self.model)
        ctx = RequestContext(
            arrival, _DIALECT, req, entry, NoClient(), loop.time() + self._timeout_s, headers
        )
        return await self.embed(text, ctx=ctx)

    async def embed(self, text: str, *, ctx: RequestContext) -> Vector | None:
        """The unit-length embedding of ``text``, or ``None`` when it could not be had."""
        svc = self._svc
        try:
            entry = svc.table.resolve(self.model)
        except GatewayError:
            log.warning("the semantic cache's embedding model %r is not configured", self.model)
            return None
        body = {"model": self.model, "input": text}
        req = ProviderRequest(Endpoint.EMBEDDINGS, body, orjson.dumps(body), self.model)
        arrival = ctx.arrival._replace(
            request_id=f"{ctx.arrival.request_id}.embed",
            created_at=time.time(),
            started=time.perf_counter(),
            endpoint=Endpoint.EMBEDDINGS.value,
        )
        sink = RoundSink(ctx.sink)
        deadline = min(ctx.deadline, asyncio.get_running_loop().time() + self._timeout_s)
        inner = RequestContext(arrival, _DIALECT, req, entry, sink, deadline, ctx.base_headers)
        outcome = await serve(svc, inner)
        self._record(usage_row(arrival, outcome, request=req, want_metadata=False))
        if outcome.error is not None:
            return None
        return _vector(sink.body)


class NoClient:
    """The sink of a request no client waits for (its answer is kept by the round sink)."""

    started = ended = gone = False

    async def json(self, status: int, body: bytes, headers: Headers) -> None:
        pass

    async def error(self, exc: GatewayError, body: bytes, headers: Headers) -> None:
        pass

    async def start_stream(self, headers: Headers) -> None:
        pass

    async def chunk(self, data: bytes) -> None:
        pass

    async def end(self, data: bytes = b"") -> None:
        pass


def _vector(raw: bytes) -> Vector | None:
    """The first embedding of an OpenAI-shaped answer (floats or base64), normalised."""
    try:
        data: Any = orjson.loads(raw)
        found = data["data"][0]["embedding"]
        if isinstance(found, str):
            packed = base64.b64decode(found, validate=True)
            values = struct.unpack(f"<{len(packed) // 4}f", packed[: len(packed) // 4 * 4])
        elif isinstance(found, list):
            values = tuple(float(v) for v in found)
        else:
            return None
    except (ValueError, KeyError, IndexError, TypeError, struct.error):
        return None
    if not 0 < len(values) <= MAX_DIMENSIONS:
        return None
    norm = math.sqrt(math.fsum(v * v for v in values))
    if not math.isfinite(norm) or norm == 0.0:
        return None
    return tuple(v / norm for v in values)
