"""Stage 4, route and attempts: deployments in order, retries with back-off, fallback
models, breakers, all under one deadline for the whole request.

Retried only where safe: failures before the client received a byte, of a retriable kind
(connect failures, resets, timeouts, 408/409/429/500/502/503/504/529). A refused credential
(401/403) is not retried on its deployment but moves on to the next one. Other 4xx answers end
the request at once. Context-window and content-policy refusals switch to the model's
dedicated fallbacks. Failed attempts are listed on the usage row and never billed.

:class:`Attempts` owns the walk's record (how many attempts, which failed, the last
deployment tried, the in-band error that ended a stream); each attempt's answer goes
through :func:`sluice.pipeline.relay.relay`, which owns what was counted.
"""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from sluice.documents.request import Documents
from sluice.errors import ErrorKind, GatewayError
from sluice.observability.tracing import passthrough_traceparent
from sluice.pipeline.context import RequestContext
from sluice.pipeline.relay import Final, Tally, relay
from sluice.pipeline.services import Services
from sluice.pipeline.sink import Headers
from sluice.routing.policy import RequestFacts
from sluice.routing.table import Deployment, ModelEntry

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


class _Step(NamedTuple):
    served: bool = False
    switch: tuple[str, ...] | None = None
    """Fallback models a context-window or content-policy refusal asks for."""


_NOT_SERVED = _Step()
_SERVED = _Step(served=True)


class Attempts:
    """One request's walk through candidates. Its record (``count``, ``errors``, ``dep``,
    ``model``, ``inband``) is read by :func:`sluice.pipeline.run.serve` when it ends."""

    __slots__ = (
        "cooling",
        "count",
        "ctx",
        "dep",
        "docs",
        "errors",
        "facts",
        "final",
        "headers",
        "inband",
        "last",
        "model",
        "router",
        "svc",
        "tally",
    )

    def __init__(self, svc: Services, ctx: RequestContext, tally: Tally) -> None:
        self.svc = svc
        self.ctx = ctx
        self.tally = tally
        self.router = svc.router
        self.headers: Headers = ctx.base_headers
        self.final: Final | None = None
        self.facts: RequestFacts | None = None
        self.count = 0
        """Attempts made."""
        self.errors: list[str] = []
        """``deployment: error kind`` of every failed attempt."""
        self.dep: Deployment | None = None
        """The deployment of the last attempt, and its model."""
        self.model: ModelEntry | None = None
        self.inband: GatewayError | None = None
        """The error that ended a stream after its first byte (the request is over)."""
        self.last: GatewayError | None = None
        self.cooling: list[Deployment] = []
        self.docs: Documents | None = None
        """The request's documents, made into what each deployment takes."""

    async def run(
        self, *, headers: Headers, final: Final | None, facts: RequestFacts | None
    ) -> None:
        """Serve the request; raises the last error (or ``no_healthy_deployment``) when no
        deployment answered. ``headers``: those of a successful answer; ``final``: awaited
        with usage and cost before the answer's last bytes; ``facts``: what routing
        policies know of the request."""
        self.headers, self.final, self.facts = headers, final, facts
        entry = self.ctx.entry
        queue = [entry]
        seen: set[str] = set()
        while queue:
            current = queue.pop(0)
            if current.name in seen:
                continue
            seen.add(current.name)
            step = await self._model(current)
            if step.served:
                return
            if step.switch is not None:
                if not step.switch:
                    break
                queue = self.router.entries(step.switch)
            else:
                queue.extend(self.router.entries(current.fallbacks))
        if self.last is None:
            raise no_healthy(entry, self.router.retry_after_s(self.cooling))
        raise self.last

    async def _model(self, current: ModelEntry) -> _Step:
        for dep in self.router.candidates(current, self.facts):
            if not self.router.available(dep):
                self.cooling.append(dep)
                continue
            step = await self._deployment(dep, current)
            if step.served or step.switch is not None:
                return step
            last = self.last
            # A refused credential is this deployment's fault: not retried on it, but the
            # next deployment (its own credential) may answer.
            if last is not None and not last.retriable and last.kind not in _NEXT_DEPLOYMENT:
                raise last
        return _NOT_SERVED

    async def _deployment(self, dep: Deployment, current: ModelEntry) -> _Step:
        loop = asyncio.get_running_loop()
        deadline = self.ctx.deadline
        for attempt in range(dep.retries + 1):
            if attempt and not self.router.available(dep):
                self.cooling.append(dep)  # the last failure opened its breaker
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise GatewayError(
                    ErrorKind.PROVIDER_TIMEOUT,
                    f"no deployment answered within the request's deadline (last: {dep.key})",
                )
            exc = await self._once(dep, current, remaining)
            if exc is None:
                return _SERVED
            if exc.kind is ErrorKind.PROVIDER_CONTEXT_WINDOW:
                return _Step(switch=current.context_window_fallbacks)
            if exc.kind is ErrorKind.PROVIDER_CONTENT_POLICY:
                return _Step(switch=current.content_policy_fallbacks)
            if not exc.retriable or attempt >= dep.retries:
                break
            if not await self.router.backoff(attempt, exc.retry_after_s, deadline):
                break
        return _NOT_SERVED

    async def _once(
        self, dep: Deployment, current: ModelEntry, remaining: float
    ) -> GatewayError | None:
        """One attempt; ``None`` when it answered (even if it failed mid-stream, in-band).
        The breaker's verdict reads what the relay returned or raised."""
        self.count += 1
        self.dep, self.model = dep, current
        ok = fault = False
        self.router.begin(dep)
        tracing = self.svc.tracing
        ctx = self.ctx
        span = None
        verdict: str | None = "cancelled"
        if tracing is None:
            traceparent = passthrough_traceparent(ctx.arrival.trace)
        else:
            span = tracing.start_attempt(
                ctx.arrival.endpoint,
                deployment=dep.key,
                provider_type=dep.provider_type or dep.provider_name,
                upstream_model=dep.upstream_model,
                body=ctx.request.body,
            )
            traceparent = tracing.traceparent(span)
        t0 = time.perf_counter()
        try:
            inband = await relay(
                self.svc,
                ctx,
                self.tally,
                dep,
                headers=self.headers,
                prices=self.svc.prices.get(current.name),
                timeout_s=min(dep.timeouts.total_s, remaining),
                traceparent=traceparent,
                final=self.final,
                documents=self.docs,
            )
            self.inband = inband
            ok = inband is None
            fault = not ok
            verdict = None if inband is None else inband.kind.value
            return None
        except GatewayError as exc:
            verdict = exc.kind.value
            self.last = exc
            fault = exc.kind in _DEPLOYMENT_FAULTS
            self.errors.append(f"{dep.key}: {exc.kind.value}")
            if ctx.sink.started:
                raise
            return exc
        finally:
            if span is not None and tracing is not None:
                tracing.end_attempt(
                    span, verdict, upstream_model=dep.upstream_model, usage=self.tally.usage
                )
            latency_ms = (time.perf_counter() - t0) * 1000
            ttft = self.tally.ttft_ms
            if ttft is not None:  # the client's TTFT counts from the request; this attempt's
                ttft -= (t0 - ctx.arrival.started) * 1000
            self.router.end(dep, ok=ok, latency_ms=latency_ms, ttft_ms=ttft)
            if ok or fault:
                await self.router.record(dep, ok=ok)
            else:
                await self.router.release(dep)


async def request_facts(svc: Services, ctx: RequestContext) -> RequestFacts:
    """What routing policies know of the request; the budget is the tightest one left."""
    principal, entry = ctx.arrival.principal, ctx.entry
    remaining: int | None = None
    limit: int | None = None
    for scope, spec in principal.budget_checks:
        left = spec.limit_micros - await svc.budgets.spent(scope, spec)
        if limit is None or remaining is None or left * limit < remaining * spec.limit_micros:
            remaining, limit = max(0, left), spec.limit_micros
    return RequestFacts(
        key_id=principal.key_id,
        model=entry.name,
        user_id=principal.user_id,
        team_id=principal.team_id,
        org_id=principal.org_id,
        teams=principal.teams,
        budget_remaining_micros=remaining,
        budget_limit_micros=limit,
        sla_ms=ctx.sla_ms,
    )
