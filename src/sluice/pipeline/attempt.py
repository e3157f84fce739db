"""One attempt: one call to one deployment, its answer relayed to the client."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sluice.config.model import Prices
from sluice.errors import ErrorKind, GatewayError
from sluice.observability import answer
from sluice.pipeline.dialects.base import Dialect, Translation
from sluice.pipeline.model_name import ModelNamer
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.providers.base import UpstreamCall, UpstreamStream
from sluice.routing.table import Deployment
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import ProviderRequest, Usage
from sluice.usage.event import UsageEvent

if TYPE_CHECKING:
    from sluice.pipeline.relay import Services

log = logging.getLogger("sluice.pipeline")

_JSON_CT = (b"content-type", b"application/json")


def _usage(usage: Usage | None, req: ProviderRequest, chars: int) -> Usage:
    if usage is None:
        return Usage(estimate_prompt(req.body), estimate_text(chars), estimated=True)
    return usage


def _apply_usage(ev: UsageEvent, usage: Usage) -> None:
    ev.prompt_tokens = usage.prompt_tokens
    ev.completion_tokens = usage.completion_tokens
    ev.cached_tokens = usage.cached_tokens
    ev.cache_write_tokens = usage.cache_write_tokens
    ev.tokens_estimated = usage.estimated


def record_error(ev: UsageEvent, exc: GatewayError) -> None:
    ev.status = exc.status
    ev.error_kind = exc.kind.value
    ev.error_message = exc.message
    ev.error_param = exc.param


@dataclass(slots=True)
class Attempt:
    """One call to one deployment, with the request in the form that deployment takes."""

    dep: Deployment
    call: UpstreamCall
    upstream: ProviderRequest
    translation: Translation | None
    headers: Headers
    namer: ModelNamer
    """Names the caller's model in the answer (one rule for every path)."""


WARNING_HEADER = b"x-sluice-warning"
"""Names what a translation left out (built-in tools, items chat cannot carry)."""
WARNING_MAX_BYTES = 512
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/ -]")


def warning_value(warnings: tuple[str, ...]) -> bytes:
    """The header value: the names come from the request (tool types), so anything but
    plain name characters becomes ``?`` and the value is bounded."""
    text = "dropped: " + ", ".join(_UNSAFE.sub("?", w) for w in warnings)
    return text[:WARNING_MAX_BYTES].encode()


async def call_deployment(
    svc: Services,
    ev: UsageEvent,
    req: ProviderRequest,
    dep: Deployment,
    sink: ResponseSink,
    *,
    dialect: Dialect,
    base_headers: Headers,
    started: float,
    forward_headers: dict[str, str] | None,
    timeout_s: float,
    traceparent: str,
    prices: Prices | None,
) -> None:
    """One call to ``dep``; raises ``GatewayError`` when it fails before the client got
    anything (the caller may retry), relays in-band errors after that. ``traceparent`` goes
    upstream; ``prices`` is the served model's price override (for the cost header)."""
    ev.provider = dep.provider_name
    ev.deployment = dep.key
    ev.upstream_model = dep.upstream_model
    translation = dialect.plan(req, dep.provider.capabilities)
    upstream = req if translation is None else translation.upstream
    ev.attempts = 1
    call = UpstreamCall(
        upstream_model=dep.upstream_model,
        deployment=dep.key,
        request_id=ev.request_id,
        session=svc.session,
        timeouts=dep.timeouts,
        extra_headers=(
            {**forward_headers, "traceparent": traceparent}
            if upstream is req and forward_headers  # a native relay (or pass-through)
            else {"traceparent": traceparent}
        ),
        credential=svc.credentials.get(dep.provider_name),
        limits=svc.read_limits,
    )
    headers = base_headers + list(dep.response_headers)
    if translation is not None and translation.warnings:
        headers.append((WARNING_HEADER, warning_value(translation.warnings)))
    attempt = Attempt(dep, call, upstream, translation, headers, ModelNamer(req.model))
    try:
        async with asyncio.timeout(timeout_s):
            if req.stream:
                await _stream(
                    svc,
                    ev,
                    req,
                    attempt,
                    sink=sink,
                    dialect=dialect,
                    started=started,
                    prices=prices,
                )
            else:
                await _complete(
                    svc, ev, attempt, sink=sink, dialect=dialect, started=started, prices=prices
                )
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


def price(svc: Services, ev: UsageEvent, dep: Deployment, prices: Prices | None) -> None:
    """Set the event's cost from its token counts at ``dep``'s prices."""
    usage = Usage(
        ev.prompt_tokens,
        ev.completion_tokens,
        ev.cached_tokens,
        ev.cache_write_tokens,
        ev.tokens_estimated,
    )
    provider = dep.provider_type or dep.provider_name
    ev.cost_micros = svc.pricer.cost(
        usage, provider=provider, model=dep.upstream_model, prices=prices
    ).micros


async def _complete(
    svc: Services,
    ev: UsageEvent,
    attempt: Attempt,
    *,
    sink: ResponseSink,
    dialect: Dialect,
    started: float,
    prices: Prices | None,
) -> None:
    t0 = time.perf_counter()
    try:
        resp = await attempt.dep.provider.send(attempt.upstream, attempt.call)
    finally:
        ev.upstream_ms += (time.perf_counter() - t0) * 1000
    usage = _usage(resp.usage, attempt.upstream, resp.completion_chars)
    _apply_usage(ev, usage)
    translation = attempt.translation
    body = resp.body if translation is None else await translation.response(resp, usage)
    body = attempt.namer.json(body)
    price(svc, ev, attempt.dep, prices)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if ev.want_metadata and dialect.carries_metadata:
        meta = answer.metadata(ev, latency_ms=elapsed_ms, upstream_ms=ev.upstream_ms)
        body = answer.with_metadata(body, meta)
    headers = attempt.headers
    headers.append(_JSON_CT)
    headers += answer.json_headers(ev, elapsed_ms=elapsed_ms)
    await sink.json(200, body, headers)


async def _stream(
    svc: Services,
    ev: UsageEvent,
    req: ProviderRequest,
    attempt: Attempt,
    *,
    sink: ResponseSink,
    dialect: Dialect,
    started: float,
    prices: Prices | None,
) -> None:
    ev.streamed = True
    live = svc.live
    counted = False
    t0 = time.perf_counter()
    try:
        stream: UpstreamStream = await attempt.dep.provider.open_stream(
            attempt.upstream, attempt.call
        )
    except BaseException:
        ev.upstream_ms += (time.perf_counter() - t0) * 1000
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
        ev.ttft_ms = (now - started) * 1000
        live.streams += 1
        counted = True
        await sink.start_stream(
            attempt.headers
            + answer.stream_headers(
                ev.upstream_ms + (now - t0) * 1000, elapsed_ms=(now - started) * 1000
            )
        )
        ends = dialect.stream_ends  # a terminal event relayed as a piece: settle first
        final = partial(_final_usage, svc, ev, attempt, stream, prices)
        named = attempt.namer.piece
        if first:
            await _relay_piece(named(first), ends, sink=sink, final=final)
        async for piece in pieces:
            await _relay_piece(named(piece), ends, sink=sink, final=final)
        tail = dialect.stream_tail(req, stream) if attempt.translation is None else b""
        _final_usage(svc, ev, attempt, stream, prices)  # settled before the tail leaves
        if ev.want_metadata and dialect.carries_metadata:
            tail = _with_metadata(ev, tail, t0=t0, started=started)
        await sink.end(tail)
    except GatewayError as exc:
        if not sink.started:
            raise
        # After the first byte an error travels in-band and ends the stream: no clean end.
        if exc.kind is ErrorKind.PROVIDER_AUTH:
            credential_refused(svc, attempt.dep, exc)
        exc.message = svc.redactor(exc.message)
        record_error(ev, exc)
        ev.partial = True
        _final_usage(svc, ev, attempt, stream, prices)
        await sink.end(dialect.stream_error(exc))
    finally:
        if counted:
            live.streams -= 1
        ev.upstream_ms += (time.perf_counter() - t0) * 1000
        _apply_usage(ev, _usage(stream.usage, attempt.upstream, stream.completion_chars))
        await stream.aclose()


def _final_usage(
    svc: Services, ev: UsageEvent, attempt: Attempt, stream: UpstreamStream, prices: Prices | None
) -> None:
    """The stream's usage and cost as they stand, before its last bytes go out."""
    _apply_usage(ev, _usage(stream.usage, attempt.upstream, stream.completion_chars))
    price(svc, ev, attempt.dep, prices)


def _is_end(piece: bytes, ends: tuple[bytes, ...]) -> bool:
    return any(marker in piece for marker in ends)


async def _relay_piece(
    piece: bytes, ends: tuple[bytes, ...], *, sink: ResponseSink, final: Callable[[], None]
) -> None:
    """Send one piece of a stream; a piece holding the dialect's terminal event goes out
    after the usage is final (``final``) and the request settled."""
    if ends and _is_end(piece, ends):
        final()
        await sink.settle()
    await sink.chunk(piece)


def _with_metadata(ev: UsageEvent, tail: bytes, *, t0: float, started: float) -> bytes:
    """The stream's tail with the metadata chunk (usage and cost are final now)."""
    now = time.perf_counter()
    meta = answer.metadata(
        ev, latency_ms=(now - started) * 1000, upstream_ms=ev.upstream_ms + (now - t0) * 1000
    )
    return answer.with_metadata_chunk(tail, answer.metadata_chunk(ev, meta))
