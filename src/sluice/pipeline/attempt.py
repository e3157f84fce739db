"""One attempt: one call to one deployment, its answer relayed to the client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.dialects.base import Dialect, Translation
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.providers.base import UpstreamCall, UpstreamStream
from sluice.routing.table import Deployment
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import ProviderRequest, Usage
from sluice.usage.event import UsageEvent

if TYPE_CHECKING:
    from sluice.pipeline.relay import Services

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


@dataclass(slots=True)
class Attempt:
    """One call to one deployment, with the request in the form that deployment takes."""

    dep: Deployment
    call: UpstreamCall
    upstream: ProviderRequest
    translation: Translation | None
    headers: Headers


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
) -> None:
    """One call to ``dep``; raises ``GatewayError`` when it fails before the client got
    anything (the caller may retry), relays in-band errors after that."""
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
        extra_headers=forward_headers if translation is None and forward_headers else {},
        credential=svc.credentials.get(dep.provider_name),
    )
    attempt = Attempt(dep, call, upstream, translation, base_headers + list(dep.response_headers))
    try:
        async with asyncio.timeout(timeout_s):
            if req.stream:
                await _stream(ev, req, attempt, sink=sink, dialect=dialect, started=started)
            else:
                await _complete(ev, attempt, sink=sink)
    except TimeoutError:
        raise GatewayError(
            ErrorKind.PROVIDER_TIMEOUT,
            f"deployment {dep.key} did not finish within {timeout_s:g} s",
        ) from None


async def _complete(ev: UsageEvent, attempt: Attempt, *, sink: ResponseSink) -> None:
    resp = await attempt.dep.provider.send(attempt.upstream, attempt.call)
    usage = _usage(resp.usage, attempt.upstream, resp.completion_chars)
    _apply_usage(ev, usage)
    translation = attempt.translation
    body = resp.body if translation is None else await translation.response(resp, usage)
    attempt.headers.append(_JSON_CT)
    await sink.json(200, body, attempt.headers)


async def _stream(
    ev: UsageEvent,
    req: ProviderRequest,
    attempt: Attempt,
    *,
    sink: ResponseSink,
    dialect: Dialect,
    started: float,
) -> None:
    ev.streamed = True
    stream: UpstreamStream = await attempt.dep.provider.open_stream(attempt.upstream, attempt.call)
    try:
        pieces: AsyncIterator[bytes] = (
            aiter(stream) if attempt.translation is None else attempt.translation.stream(stream)
        )
        try:
            first: bytes | None = await anext(pieces)
        except StopAsyncIteration:
            first = None
        ev.ttft_ms = (time.perf_counter() - started) * 1000
        await sink.start_stream(attempt.headers)
        if first:
            await sink.chunk(first)
        async for piece in pieces:
            await sink.chunk(piece)
        tail = dialect.stream_tail(req, stream) if attempt.translation is None else b""
        await sink.end(tail)
    except GatewayError as exc:
        if not sink.started:
            raise
        # After the first byte an error travels in-band and ends the stream: no clean end.
        record_error(ev, exc)
        ev.partial = True
        await sink.end(dialect.stream_error(exc))
    finally:
        _apply_usage(ev, _usage(stream.usage, attempt.upstream, stream.completion_chars))
        await stream.aclose()
