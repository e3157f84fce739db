"""Run one data-plane request against a deployment and relay the answer.

Accounting: the caller owns the :class:`UsageEvent` and records it in ``finally``; this
module fills in what happened (deployment, tokens, timings, error) on every path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetReservation, BudgetStore
from sluice.budgets.errors import BudgetExceeded
from sluice.budgets.pricing import Pricer
from sluice.config.model import Prices
from sluice.errors import ErrorKind, GatewayError
from sluice.limits.base import Limiter, Reservation
from sluice.pipeline.dialects.base import Dialect, Translation
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.providers.base import UpstreamCall, UpstreamStream
from sluice.routing.table import Deployment, ModelEntry, ModelTable
from sluice.tokens import estimate_prompt, estimate_text
from sluice.types import ProviderRequest, Usage
from sluice.usage.event import UsageEvent

_JSON_CT = (b"content-type", b"application/json")


DEFAULT_OUTPUT_RESERVE = 4096
"""Output tokens reserved (limits and budgets) when a request names no maximum."""


@dataclass(frozen=True, slots=True)
class Services:
    """What the pipeline needs from the process, built by the composition root."""

    table: ModelTable
    session: aiohttp.ClientSession
    limiter: Limiter
    budgets: BudgetStore
    pricer: Pricer
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Stored provider credentials by provider name (live: updated in place)."""
    provider_types: Mapping[str, str] = field(default_factory=dict)
    """Provider name → type, for prices."""
    prices: Mapping[str, Prices] = field(default_factory=dict)
    """Public model name → price override from the config."""


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


def requested_output(body: Mapping[str, Any]) -> int:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_OUTPUT_RESERVE


def _used(ev: UsageEvent) -> bool:
    """The upstream was reached and may have billed tokens."""
    return ev.attempts > 0 and (ev.error_kind is None or ev.completion_tokens > 0 or ev.streamed)


async def run(
    svc: Services,
    ev: UsageEvent,
    req: ProviderRequest,
    entry: ModelEntry,
    sink: ResponseSink,
    *,
    principal: Principal,
    dialect: Dialect,
    base_headers: Headers,
    started: float,
    forward_headers: dict[str, str] | None = None,
) -> None:
    """Reserve limits and budgets, call one deployment of ``entry``, relay its answer in
    ``dialect``, then settle what was used (or release what was not) on every path."""
    dep = svc.table.pick(entry)
    provider_type = svc.provider_types.get(dep.provider_name, dep.provider_name)
    prices = svc.prices.get(entry.name)
    checks = principal.checks_for(entry.name)
    budget_checks = principal.budget_checks
    held: Reservation | None = None
    budget_held: BudgetReservation | None = None
    try:
        if checks or budget_checks:
            prompt_estimate = estimate_prompt(req.body)
            output = requested_output(req.body)
            if checks:
                held = await svc.limiter.reserve(
                    checks, input_estimate=prompt_estimate, output_estimate=output
                )
                base_headers = base_headers + _rate_headers(held)
            if budget_checks:
                estimate = svc.pricer.estimate(
                    prompt_tokens=prompt_estimate,
                    max_tokens=output,
                    provider=provider_type,
                    model=dep.upstream_model,
                    prices=prices,
                )
                try:
                    budget_held = await svc.budgets.reserve(budget_checks, estimate.micros)
                except BudgetExceeded:
                    if held is not None:
                        await svc.limiter.release(held, refund_request=True)
                        held = None  # refused: the request consumed nothing
                    raise
        await _call(
            svc,
            ev,
            req,
            dep,
            sink,
            dialect=dialect,
            base_headers=base_headers,
            started=started,
            forward_headers=forward_headers,
        )
    finally:
        used = _used(ev)
        if used:
            usage = Usage(
                ev.prompt_tokens,
                ev.completion_tokens,
                ev.cached_tokens,
                ev.cache_write_tokens,
                ev.tokens_estimated,
            )
            ev.cost_micros = svc.pricer.cost(
                usage, provider=provider_type, model=dep.upstream_model, prices=prices
            ).micros
        if budget_held is not None:
            if used:
                await svc.budgets.settle(budget_held, ev.cost_micros or 0)
            else:
                await svc.budgets.release(budget_held)
        if held is not None:
            if used:
                await svc.limiter.settle(
                    held, input_tokens=ev.prompt_tokens, output_tokens=ev.completion_tokens
                )
            else:
                await svc.limiter.release(held)


def _rate_headers(held: Reservation) -> Headers:
    return [(k.encode(), v.encode()) for k, v in held.status.headers().items()]


async def _call(
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
) -> None:
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
        async with asyncio.timeout(dep.timeouts.total_s):
            if req.stream:
                await _stream(ev, req, attempt, sink=sink, dialect=dialect, started=started)
            else:
                await _complete(ev, attempt, sink=sink)
    except TimeoutError:
        raise GatewayError(
            ErrorKind.PROVIDER_TIMEOUT,
            f"deployment {dep.key} did not finish within {dep.timeouts.total_s:g} s",
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
        await sink.end(dialect.stream_error(exc))
    finally:
        _apply_usage(ev, _usage(stream.usage, attempt.upstream, stream.completion_chars))
        await stream.aclose()
