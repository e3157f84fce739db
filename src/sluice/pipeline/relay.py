"""Run one data-plane request against a deployment and relay the answer.

Accounting: the caller owns the :class:`UsageEvent` and records it in ``finally``; this
module fills in what happened (deployment, tokens, timings, error) on every path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetReservation, BudgetStore
from sluice.budgets.errors import BudgetExceeded
from sluice.budgets.pricing import Pricer
from sluice.config.model import Prices
from sluice.limits.base import Limiter, Reservation
from sluice.observability.live import Live
from sluice.observability.redact import Redactor
from sluice.observability.tracing import Tracing
from sluice.pipeline import bounds
from sluice.pipeline.attempt import price
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.route import route
from sluice.pipeline.sink import Headers, ResponseSink
from sluice.providers.base import ReadLimits
from sluice.routing.policy import RequestFacts
from sluice.routing.router import Router
from sluice.routing.table import Deployment, ModelEntry, ModelTable
from sluice.tokens import estimate_prompt
from sluice.types import ProviderRequest
from sluice.usage.event import UsageEvent


@dataclass(frozen=True, slots=True)
class Services:
    """What the pipeline needs from the process, built by the composition root."""

    table: ModelTable
    session: aiohttp.ClientSession
    router: Router
    limiter: Limiter
    budgets: BudgetStore
    pricer: Pricer
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Each provider's API key by provider name, resolved by the core (live; see
    ``sluice.credentials.resolve``); an attempt hands it to the adapter."""
    provider_types: Mapping[str, str] = field(default_factory=dict)
    """Provider name → type, for prices."""
    prices: Mapping[str, Prices] = field(default_factory=dict)
    """Public model name → price override from the config."""
    total_timeout_s: float = 600.0
    """Deadline of a whole request, retries and fallbacks included."""
    tracing: Tracing | None = None
    """Spans per request and attempt; ``None`` when no OTLP endpoint is set."""
    live: Live = field(default_factory=Live)
    """In-flight counters read by the metrics sampler."""
    redactor: Redactor = field(default_factory=Redactor)
    """Masks secrets in error messages before they reach a client."""
    response_metadata: bool = False
    """Every OpenAI-shaped answer carries the ``sluice`` metadata object (config opt-in)."""
    read_limits: ReadLimits = field(default_factory=ReadLimits)
    """How much of an upstream answer may be read (``SLUICE_MAX_UPSTREAM_*``)."""


def _used(ev: UsageEvent) -> bool:
    """The upstream was reached and may have billed tokens."""
    return ev.attempts > 0 and (ev.error_kind is None or ev.completion_tokens > 0 or ev.streamed)


class _Settlement:
    """Settles what one request holds (or releases it when the upstream was not used), once.

    The sink awaits it just before the answer's last bytes leave (so a sequential client's
    next request finds the slot free); ``finally`` awaits it again on every path, which then
    only prices a row not priced yet.
    """

    __slots__ = ("budget_held", "dep", "ev", "held", "prices", "svc")

    def __init__(self, svc: Services, ev: UsageEvent, dep: Deployment, prices: Prices | None):
        self.svc = svc
        self.ev = ev
        self.dep = dep
        self.prices = prices
        self.held: Reservation | None = None
        self.budget_held: BudgetReservation | None = None

    async def __call__(self) -> None:
        svc, ev = self.svc, self.ev
        used = _used(ev)
        if used and ev.cost_micros is None:  # complete answers priced it before sending
            price(svc, ev, self.dep, self.prices)
        budget_held, held = self.budget_held, self.held
        self.budget_held = self.held = None
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
    sla_ms: int | None = None,
) -> None:
    """Reserve limits and budgets, route to a deployment of ``entry`` (retries, fallbacks),
    relay its answer in ``dialect``, and settle what was used (or release what was not):
    before the answer's last bytes leave, or in ``finally`` on every other path."""
    bounds.check(req, entry.bounds)
    dep = entry.deployments[0]
    provider_type = dep.provider_type or dep.provider_name
    checks = principal.checks_for(entry.name)
    budget_checks = principal.budget_checks
    settle = _Settlement(svc, ev, dep, svc.prices.get(entry.name))
    try:
        if checks or budget_checks:
            prompt_estimate = estimate_prompt(req.body)
            output = bounds.output_reserve(req)  # every choice's output
            if checks:
                settle.held = await svc.limiter.reserve(
                    checks, input_estimate=prompt_estimate, output_estimate=output
                )
                base_headers = base_headers + _rate_headers(settle.held)
            if budget_checks:
                estimate = svc.pricer.estimate(
                    prompt_tokens=prompt_estimate,
                    max_tokens=output,
                    provider=provider_type,
                    model=dep.upstream_model,
                    prices=settle.prices,
                )
                try:
                    settle.budget_held = await svc.budgets.reserve(budget_checks, estimate.micros)
                except BudgetExceeded:
                    if settle.held is not None:
                        held, settle.held = settle.held, None
                        await svc.limiter.release(held, refund_request=True)  # consumed nothing
                    raise
            sink.before_last = settle
        facts = (
            await _request_facts(svc, principal, entry, sla_ms)
            if svc.router.policy.enabled
            else None
        )
        loop = asyncio.get_running_loop()
        settle.dep, served = await route(
            svc,
            ev,
            req,
            entry,
            sink,
            dialect=dialect,
            base_headers=base_headers,
            started=started,
            forward_headers=forward_headers,
            deadline=loop.time() + svc.total_timeout_s,
            facts=facts,
        )
        settle.prices = svc.prices.get(served.name)
    finally:
        sink.before_last = None
        if settle.held is not None or settle.budget_held is not None or ev.cost_micros is None:
            await settle()  # not settled before a last byte, or not priced yet


async def _request_facts(
    svc: Services, principal: Principal, entry: ModelEntry, sla_ms: int | None
) -> RequestFacts:
    """What routing policies know of the request; the budget is the tightest one left."""
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
        sla_ms=sla_ms,
    )


def _rate_headers(held: Reservation) -> Headers:
    return [(k.encode(), v.encode()) for k, v in held.status.headers().items()]
