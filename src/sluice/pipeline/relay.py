"""Run one data-plane request against a deployment and relay the answer.

Accounting: the caller owns the :class:`UsageEvent` and records it in ``finally``; this
module fills in what happened (deployment, tokens, timings, error) on every path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import orjson

from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.providers.base import UpstreamCall, UpstreamStream
from sluice.providers.sse import frame, frame_obj
from sluice.routing.table import Deployment, ModelEntry, ModelTable
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import ProviderRequest, Usage
from sluice.usage.event import UsageEvent

DONE_EVENT = b"data: [DONE]\n\n"
_JSON_CT = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class Services:
    """What the pipeline needs from the process, built by the composition root."""

    table: ModelTable
    session: aiohttp.ClientSession


def _apply_usage(ev: UsageEvent, usage: Usage | None, req: ProviderRequest, chars: int) -> None:
    if usage is None:
        usage = Usage(estimate_prompt(req.body), estimate_text(chars), estimated=True)
    ev.prompt_tokens = usage.prompt_tokens
    ev.completion_tokens = usage.completion_tokens
    ev.cached_tokens = usage.cached_tokens
    ev.tokens_estimated = usage.estimated


def record_error(ev: UsageEvent, exc: GatewayError) -> None:
    ev.status = exc.status
    ev.error_kind = exc.kind.value
    ev.error_message = exc.message


async def run(
    svc: Services,
    ev: UsageEvent,
    req: ProviderRequest,
    entry: ModelEntry,
    sink: ResponseSink,
    *,
    base_headers: Headers,
    started: float,
) -> None:
    """Call one deployment of ``entry`` and relay its answer to ``sink``."""
    dep = svc.table.pick(entry)
    ev.provider = dep.provider_name
    ev.deployment = dep.key
    ev.upstream_model = dep.upstream_model
    ev.attempts = 1
    call = UpstreamCall(
        upstream_model=dep.upstream_model,
        deployment=dep.key,
        request_id=ev.request_id,
        session=svc.session,
        timeouts=dep.timeouts,
    )
    headers = base_headers + list(dep.response_headers)
    try:
        async with asyncio.timeout(dep.timeouts.total_s):
            if req.stream:
                await _stream(ev, req, dep, call=call, sink=sink, headers=headers, started=started)
            else:
                await _complete(ev, req, dep, call=call, sink=sink, headers=headers)
    except TimeoutError:
        raise GatewayError(
            ErrorKind.PROVIDER_TIMEOUT,
            f"deployment {dep.key} did not finish within {dep.timeouts.total_s:g} s",
        ) from None


async def _complete(
    ev: UsageEvent,
    req: ProviderRequest,
    dep: Deployment,
    *,
    call: UpstreamCall,
    sink: ResponseSink,
    headers: Headers,
) -> None:
    resp = await dep.provider.send(req, call)
    _apply_usage(ev, resp.usage, req, resp.completion_chars)
    headers.append(_JSON_CT)
    await sink.json(200, resp.body, headers)


async def _stream(
    ev: UsageEvent,
    req: ProviderRequest,
    dep: Deployment,
    *,
    call: UpstreamCall,
    sink: ResponseSink,
    headers: Headers,
    started: float,
) -> None:
    ev.streamed = True
    stream: UpstreamStream = await dep.provider.open_stream(req, call)
    try:
        pieces = aiter(stream)
        try:
            first: bytes | None = await anext(pieces)
        except StopAsyncIteration:
            first = None
        ev.ttft_ms = (time.perf_counter() - started) * 1000
        await sink.start_stream(headers)
        if first:
            await sink.chunk(first)
        async for piece in pieces:
            await sink.chunk(piece)
        tail = DONE_EVENT
        if req.include_usage and stream.usage is None:
            usage = Usage(estimate_prompt(req.body), estimate_text(stream.completion_chars))
            tail = frame_obj(_usage_chunk(req, usage)) + DONE_EVENT
        await sink.end(tail)
    except GatewayError as exc:
        if not sink.started:
            raise
        # After the first byte an error travels in-band and ends the stream: no [DONE].
        record_error(ev, exc)
        await sink.end(frame(orjson.dumps(exc.to_openai())))
    finally:
        _apply_usage(ev, stream.usage, req, stream.completion_chars)
        await stream.aclose()


def _usage_chunk(req: ProviderRequest, usage: Usage) -> dict[str, object]:
    return {
        "id": "usage",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.model,
        "choices": [],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }
