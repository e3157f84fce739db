"""The attempt loop: deployments in order, retries with back-off, fallback models, breakers,
all under one deadline for the whole request.

Retried only where safe: failures before the client received a byte, of a retriable kind
(connect failures, resets, timeouts, 408/409/429/500/502/503/504/529). A refused credential
(401/403) is not retried on its deployment but moves on to the next one. Other 4xx answers end
the request at once. Context-window and content-policy refusals switch to the model's
dedicated fallbacks. Failed attempts are listed on the usage row and never billed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluice.errors import ErrorKind, GatewayError
from sluice.observability.tracing import passthrough_traceparent
from sluice.pipeline.attempt import call_deployment
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.routing.policy import RequestFacts
from sluice.routing.table import Deployment, ModelEntry
from sluice.types import ProviderRequest
from sluice.usage.event import UsageEvent

if TYPE_CHECKING:
    from sluice.pipeline.relay import Services

# Failures that say something about the deployment's health (and count for its breaker).
_DEPLOYMENT_FAULTS = frozenset(
    {
        ErrorKind.PROVIDER_RATE_LIMITED,
        ErrorKind.PROVIDER_ERROR,
        ErrorKind.PROVIDER_UNAVAILABLE,
        ErrorKind.PROVIDER_TIMEOUT,
        ErrorKind.PROVIDER_UNREACHABLE,
        ErrorKind.PROVIDER_BAD_RESPONSE,
        ErrorKind.PROVIDER_STREAM_INTERRUPTED,
        ErrorKind.PROVIDER_AUTH,
    }
)


_NEXT_DEPLOYMENT = frozenset({ErrorKind.PROVIDER_AUTH})
"""Not retried on the same deployment, but the next candidate is tried."""


def no_healthy(entry: ModelEntry, retry_after_s: float | None) -> GatewayError:
    wait = max(1.0, retry_after_s) if retry_after_s is not None else None
    return GatewayError(
        ErrorKind.GATEWAY_UNAVAILABLE,
        f"every deployment of {entry.name!r} is failing and cooling down; retry later",
        code="no_healthy_deployment",
        retry_after_s=wait,
    )


@dataclass(slots=True)
class _Outcome:
    served: tuple[Deployment, ModelEntry] | None = None
    switch: tuple[str, ...] | None = None
    """Fallback models a context-window or content-policy refusal asks for."""


class _Run:
    """One request's walk through candidates; keeps the attempt count and errors."""

    def __init__(
        self,
        svc: Services,
        ev: UsageEvent,
        req: ProviderRequest,
        sink: ResponseSink,
        *,
        dialect: Dialect,
        base_headers: Headers,
        started: float,
        forward_headers: dict[str, str] | None,
        deadline: float,
        facts: RequestFacts | None,
    ) -> None:
        self.svc = svc
        self.facts = facts
        self.ev = ev
        self.req = req
        self.sink = sink
        self.dialect = dialect
        self.base_headers = base_headers
        self.started = started
        self.forward_headers = forward_headers
        self.deadline = deadline
        self.router = svc.router
        self.last: GatewayError | None = None
        self.cooling: list[Deployment] = []
        self.errors: list[str] = []
        self.attempts = 0

    async def serve(self, entry: ModelEntry) -> tuple[Deployment, ModelEntry]:
        queue = [entry]
        seen: set[str] = set()
        while queue:
            current = queue.pop(0)
            if current.name in seen:
                continue
            seen.add(current.name)
            outcome = await self._model(current)
            if outcome.served is not None:
                return outcome.served
            if outcome.switch is not None:
                if not outcome.switch:
                    break
                queue = self.router.entries(outcome.switch)
            else:
                queue.extend(self.router.entries(current.fallbacks))
        if self.last is None:
            raise no_healthy(entry, self.router.retry_after_s(self.cooling))
        raise self.last

    async def _model(self, current: ModelEntry) -> _Outcome:
        for dep in self.router.candidates(current, self.facts):
            if not self.router.available(dep):
                self.cooling.append(dep)
                continue
            outcome = await self._deployment(dep, current)
            if outcome.served is not None or outcome.switch is not None:
                return outcome
            last = self.last
            # A refused credential is this deployment's fault: not retried on it, but the
            # next deployment (its own credential) may answer.
            if last is not None and not last.retriable and last.kind not in _NEXT_DEPLOYMENT:
                raise last
        return _Outcome()

    async def _deployment(self, dep: Deployment, current: ModelEntry) -> _Outcome:
        loop = asyncio.get_running_loop()
        for attempt in range(dep.retries + 1):
            if attempt and not self.router.available(dep):
                self.cooling.append(dep)  # the last failure opened its breaker
                break
            remaining = self.deadline - loop.time()
            if remaining <= 0:
                raise GatewayError(
                    ErrorKind.PROVIDER_TIMEOUT,
                    f"no deployment answered within the request's deadline (last: {dep.key})",
                )
            exc = await self._once(dep, current, remaining)
            if exc is None:
                return _Outcome(served=(dep, current))
            if exc.kind is ErrorKind.PROVIDER_CONTEXT_WINDOW:
                return _Outcome(switch=current.context_window_fallbacks)
            if exc.kind is ErrorKind.PROVIDER_CONTENT_POLICY:
                return _Outcome(switch=current.content_policy_fallbacks)
            if not exc.retriable or attempt >= dep.retries:
                break
            if not await self.router.backoff(attempt, exc.retry_after_s, self.deadline):
                break
        return _Outcome()

    async def _once(
        self, dep: Deployment, current: ModelEntry, remaining: float
    ) -> GatewayError | None:
        """One attempt; ``None`` when it answered (even if it failed mid-stream, in-band)."""
        self.attempts += 1
        ok = fault = False
        self.router.begin(dep)
        tracing = self.svc.tracing
        span = None
        outcome: str | None = "cancelled"
        if tracing is None:
            traceparent = passthrough_traceparent(self.ev)
        else:
            span = tracing.start_attempt(
                self.ev,
                deployment=dep.key,
                provider_type=dep.provider_type or dep.provider_name,
                upstream_model=dep.upstream_model,
                body=self.req.body,
            )
            traceparent = tracing.traceparent(span)
        t0 = time.perf_counter()
        try:
            await call_deployment(
                self.svc,
                self.ev,
                self.req,
                dep,
                self.sink,
                dialect=self.dialect,
                base_headers=self.base_headers,
                started=self.started,
                forward_headers=self.forward_headers,
                timeout_s=min(dep.timeouts.total_s, remaining),
                traceparent=traceparent,
                prices=self.svc.prices.get(current.name),
            )
            ok = self.ev.error_kind is None
            fault = not ok
            outcome = self.ev.error_kind
            return None
        except GatewayError as exc:
            outcome = exc.kind.value
            self.last = exc
            fault = exc.kind in _DEPLOYMENT_FAULTS
            self.errors.append(f"{dep.key}: {exc.kind.value}")
            if self.sink.started:
                raise
            return exc
        finally:
            if span is not None and tracing is not None:
                tracing.end_attempt(span, self.ev, outcome)
            latency_ms = (time.perf_counter() - t0) * 1000
            ttft = self.ev.ttft_ms
            if ttft is not None:  # the client's TTFT counts from the request; this attempt's
                ttft -= (t0 - self.started) * 1000
            self.router.end(dep, ok=ok, latency_ms=latency_ms, ttft_ms=ttft)
            if ok or fault:
                await self.router.record(dep, ok=ok)
            else:
                await self.router.release(dep)


async def route(
    svc: Services,
    ev: UsageEvent,
    req: ProviderRequest,
    entry: ModelEntry,
    sink: ResponseSink,
    *,
    dialect: Dialect,
    base_headers: Headers,
    started: float,
    forward_headers: dict[str, str] | None,
    deadline: float,
    facts: RequestFacts | None = None,
) -> tuple[Deployment, ModelEntry]:
    """Serve ``req``; return the deployment that answered and its model. Raises the last
    error (or ``no_healthy_deployment``) when none did."""
    run = _Run(
        svc,
        ev,
        req,
        sink,
        dialect=dialect,
        base_headers=base_headers,
        started=started,
        forward_headers=forward_headers,
        deadline=deadline,
        facts=facts,
    )
    try:
        return await run.serve(entry)
    finally:
        ev.attempts = run.attempts
        ev.attempt_errors = run.errors or None
