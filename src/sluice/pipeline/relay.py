"""Stage 5, relay: one attempt's call to one deployment, its answer relayed to the client.

The relay owns the request's :class:`Tally` (what the attempts counted: tokens, timings,
an in-band error). It prices the answer (:mod:`sluice.pipeline.cost`) and hands usage and
cost to ``final`` (the hold's settlement) before the answer's last bytes leave.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from sluice.config.model import Prices
from sluice.documents.request import Documents
from sluice.errors import ErrorKind, GatewayError
from sluice.observability import answer
from sluice.pipeline import cost
from sluice.pipeline.context import RequestContext
from sluice.pipeline.dialects.base import Translation
from sluice.pipeline.media import speech_headers
from sluice.pipeline.model_name import ModelNamer, namer_for
from sluice.pipeline.services import Services
from sluice.pipeline.sink import Headers
from sluice.providers.base import UpstreamCall, UpstreamStream
from sluice.routing.table import Deployment
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import Endpoint, ProviderRequest, Usage

log = logging.getLogger("sluice.pipeline")

_JSON_CT = (b"content-type", b"application/json")
_SPEECH = Endpoint.SPEECH

Final = Callable[[Usage, int], Awaitable[None]]
"""Awaited with the answer's usage and cost just before its last bytes leave."""


class Tally:
    """What the relay counted for one request, over its attempts. Written by the relay
    only; the attempt loop and :func:`sluice.pipeline.run.serve` read it."""

    __slots__ = ("cost_micros", "streamed", "ttft_ms", "upstream_ms", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        """The last attempt's usage (``None``: no attempt counted any)."""
        self.cost_micros: int | None = None
        """The answer's cost, once priced (before its last bytes)."""
        self.ttft_ms: float | None = None
        """Time to the first streamed piece, from the request's arrival."""
        self.upstream_ms = 0.0
        """Time spent waiting on upstream calls, every attempt added up."""
        self.streamed = False


def _usage(usage: Usage | None, req: ProviderRequest, chars: int) -> Usage:
    if usage is None:
        reserve = req.reserve
        if reserve is not None:  # a media request: what it was estimated to bill (exact
            # when its units were known and it guessed no tokens: a WAV file's seconds)
            return replace(reserve, estimated=reserve.estimated or reserve.prompt_tokens > 0)
        return Usage(estimate_prompt(req.body), estimate_text(chars), estimated=True)
    return usage


@dataclass(slots=True)
class Attempt:
    """One call to one deployment, with the request in the form that deployment takes."""

    svc: Services
    ctx: RequestContext
    tally: Tally
    dep: Deployment
    prices: Prices | None
    """The served model's price override."""
    call: UpstreamCall
    upstream: ProviderRequest
    translation: Translation | None
    headers: Headers
    namer: ModelNamer
    """Names the caller's model in the answer (one rule for every path)."""
    final: Final | None

    async def bill(self, usage: Usage) -> None:
        """The answer's usage is final: count and price it, then settle before the last
        bytes leave."""
        tally = self.tally
        tally.usage = usage
        tally.cost_micros = micros = cost.cost(self.svc.pricer, self.dep, self.prices, usage)
        if self.final is not None:
            await self.final(usage, micros)


UNITS_HEADER = b"x-sluice-units"
"""A media answer's billed units and their kind (``12 characters``, ``3.5 audio_seconds``)."""
WARNING_HEADER = b"x-sluice-warning"
"""Names what a translation left out (built-in tools, items chat cannot carry)."""
WARNING_MAX_BYTES = 512
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/ -]")


def warning_value(warnings: tuple[str, ...]) -> bytes:
    """The header value: the names come from the request (tool types), so anything but
    plain name characters becomes ``?`` and the value is bounded."""
    text = "dropped: " + ", ".join(_UNSAFE.sub("?", w) for w in warnings)
    return text[:WARNING_MAX_BYTES].encode()


async def relay(
    svc: Services,
    ctx: RequestContext,
    tally: Tally,
    dep: Deployment,
    *,
    headers: Headers,
    prices: Prices | None,
    timeout_s: float,
    traceparent: str,
    final: Final | None,
    documents: Documents | None = None,
) -> GatewayError | None:
    """One call to ``dep``, its answer relayed to the client. Raises ``GatewayError`` when
    it fails before the client got anything (the caller may retry); returns the error that
    ended a stream in-band after that (``None``: answered in full). ``headers``: those of a
    successful answer; ``traceparent`` goes upstream; ``documents``: the request's documents,
    forwarded or turned into text as ``dep`` takes them (docs/documents.md)."""
    req = ctx.request if documents is None else await documents.for_deployment(dep.file_types)
    translation = ctx.dialect.plan(req, dep.provider.capabilities)
    upstream = req if translation is None else translation.upstream
    forward = ctx.forward_headers
    call = UpstreamCall(
        upstream_model=dep.upstream_model,
        deployment=dep.key,
        request_id=ctx.arrival.request_id,
        session=svc.session,
        timeouts=dep.timeouts,
        extra_headers=(
            {**forward, "traceparent": traceparent}
            if upstream is req and forward  # a native relay (or pass-through)
            else {"traceparent": traceparent}
        ),
        credential=svc.credentials.get(dep.provider_name),
        limits=svc.read_limits,
    )
    headers = [*headers, *dep.response_headers]
    if translation is not None and translation.warnings:
        headers.append((WARNING_HEADER, warning_value(translation.warnings)))
    attempt = Attempt(
        svc,
        ctx,
        tally,
        dep,
        prices,
        call,
        upstream,
        translation,
        headers,
        namer_for(req.model),
        final,
    )
    try:
        async with asyncio.timeout(timeout_s):
            if req.stream:
                return await _stream(attempt)
            await _complete(attempt)
            return None
    except TimeoutError:
        raise GatewayError(
            ErrorKind.PROVIDER_TIMEOUT,
            f"deployment {dep.key} did not finish within {timeout_s:g} s",
        ) from None
    except GatewayError as exc:
        if exc.kind is ErrorKind.PROVIDER_AUTH:
            credential_refused(svc, dep, exc)
        raise


def credential_refused(svc: Services, dep: Deployment, exc: GatewayError) -> None:
    """The provider refused our credential: tell the operator (the provider's text, redacted)
    and give the client a message naming the deployment, never the provider's text."""
    exc.message = (
        f"the provider rejected the gateway's credential for deployment {dep.key}; "
        "the operator has been told"
    )
    log.warning(
        "provider %s refused the gateway's credential for deployment %s (HTTP %s): %s",
        dep.provider_name,
        dep.key,
        exc.upstream_status if exc.upstream_status is not None else "-",
        svc.redactor(exc.detail or "no detail"),
    )


async def _complete(attempt: Attempt) -> None:
    tally, ctx = attempt.tally, attempt.ctx
    t0 = time.perf_counter()
    try:
        resp = await attempt.dep.provider.send(attempt.upstream, attempt.call)
    finally:
        tally.upstream_ms += (time.perf_counter() - t0) * 1000
    usage = _usage(resp.usage, attempt.upstream, resp.completion_chars)
    tally.usage = usage
    translation = attempt.translation
    body = resp.body if translation is None else await translation.response(resp, usage)
    media = resp.content_type
    if media is None:
        body = attempt.namer.json(body)
    micros = tally.cost_micros = cost.cost(attempt.svc.pricer, attempt.dep, attempt.prices, usage)
    elapsed_ms = (time.perf_counter() - ctx.arrival.started) * 1000
    if ctx.want_metadata and ctx.dialect.carries_metadata and media is None:
        body = answer.with_metadata(body, _metadata(attempt, elapsed_ms, tally.upstream_ms))
    headers = attempt.headers
    headers.append(_JSON_CT if media is None else (b"content-type", media.encode("latin-1")))
    if usage.unit_kind is not None:  # a media answer: what it was billed by
        headers.append((UNITS_HEADER, f"{usage.units:g} {usage.unit_kind}".encode()))
    headers += answer.json_headers(
        micros, upstream_ms=tally.upstream_ms, elapsed_ms=elapsed_ms, cache=ctx.cache_status
    )
    if attempt.final is not None:
        await attempt.final(usage, micros)
    await ctx.sink.json(200, body, headers)


async def _stream(attempt: Attempt) -> GatewayError | None:
    """Relay a stream; returns the error that ended it after its first byte, if any."""
    tally, ctx, svc = attempt.tally, attempt.ctx, attempt.svc
    sink, dialect, started = ctx.sink, ctx.dialect, ctx.arrival.started
    tally.streamed = True
    live = svc.live
    counted = False
    t0 = time.perf_counter()
    try:
        stream: UpstreamStream = await attempt.dep.provider.open_stream(
            attempt.upstream, attempt.call
        )
    except BaseException:
        tally.upstream_ms += (time.perf_counter() - t0) * 1000
        raise
    try:
        pieces: AsyncIterator[bytes] = (
            aiter(stream) if attempt.translation is None else attempt.translation.stream(stream)
        )
        try:
            first: bytes | None = await anext(pieces)
        except StopAsyncIteration:
            first = None
        now = time.perf_counter()
        tally.ttft_ms = (now - started) * 1000
        live.streams += 1
        counted = True
        headers = (  # speech: audio of its own type, not an event stream
            attempt.headers
            if ctx.request.endpoint is not _SPEECH
            else attempt.headers + speech_headers(ctx.request)
        )
        await sink.start_stream(
            headers
            + answer.stream_headers(
                tally.upstream_ms + (now - t0) * 1000,
                elapsed_ms=(now - started) * 1000,
                cache=ctx.cache_status,
            )
        )
        ends = dialect.stream_ends  # a terminal event relayed as a piece: settle first
        named = attempt.namer.piece
        if first:
            await _relay_piece(attempt, stream, named(first), ends)
        async for piece in pieces:
            await _relay_piece(attempt, stream, named(piece), ends)
        tail = dialect.stream_tail(attempt.upstream, stream) if attempt.translation is None else b""
        await _settle_stream(attempt, stream)  # settled before the tail leaves
        if ctx.want_metadata and dialect.carries_metadata:
            tail = _with_metadata(attempt, tail, t0=t0)
        await sink.end(tail)
        return None
    except GatewayError as exc:
        if not sink.started:
            raise
        # After the first byte an error travels in-band and ends the stream: no clean end.
        if exc.kind is ErrorKind.PROVIDER_AUTH:
            credential_refused(svc, attempt.dep, exc)
        exc.message = svc.redactor(exc.message)
        await _settle_stream(attempt, stream)
        await sink.end(dialect.stream_error(exc))
        return exc
    finally:
        if counted:
            live.streams -= 1
        tally.upstream_ms += (time.perf_counter() - t0) * 1000
        tally.usage = _usage(stream.usage, attempt.upstream, stream.completion_chars)
        await stream.aclose()


async def _settle_stream(attempt: Attempt, stream: UpstreamStream) -> None:
    """The stream's usage and cost as they stand, settled before its last bytes go out."""
    await attempt.bill(_usage(stream.usage, attempt.upstream, stream.completion_chars))


async def _relay_piece(
    attempt: Attempt, stream: UpstreamStream, piece: bytes, ends: tuple[bytes, ...]
) -> None:
    """Send one piece of a stream; a piece holding the dialect's terminal event goes out
    after the usage is final and the request settled."""
    if ends and any(marker in piece for marker in ends):
        await _settle_stream(attempt, stream)
    await attempt.ctx.sink.chunk(piece)


def _metadata(attempt: Attempt, latency_ms: float, upstream_ms: float) -> dict[str, object]:
    ctx, dep = attempt.ctx, attempt.dep
    return answer.metadata(
        provider=dep.provider_name,
        deployment=dep.key,
        cost_micros=attempt.tally.cost_micros or 0,
        request_id=ctx.arrival.request_id,
        trace_id=ctx.arrival.trace.trace_id,
        latency_ms=latency_ms,
        upstream_ms=upstream_ms,
    )


def _with_metadata(attempt: Attempt, tail: bytes, *, t0: float) -> bytes:
    """The stream's tail with the metadata chunk (usage and cost are final now)."""
    now = time.perf_counter()
    arrival = attempt.ctx.arrival
    meta = _metadata(
        attempt, (now - arrival.started) * 1000, attempt.tally.upstream_ms + (now - t0) * 1000
    )
    chunk = answer.metadata_chunk(
        meta,
        request_id=arrival.request_id,
        created_at=arrival.created_at,
        model=attempt.ctx.request.model,
    )
    return answer.with_metadata_chunk(tail, chunk)
