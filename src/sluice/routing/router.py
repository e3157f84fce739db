"""The router: which deployments to try for a model, in what order, and whether each may be
tried now. Composes the strategies, the per-deployment stats, the circuit breakers and the
Cedar policies; the attempt loop (``pipeline/attempts.py``) asks it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Sequence

from sluice.clock import Clock
from sluice.config.model import GatewayConfig, RoutingConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.routing.breaker import Breakers
from sluice.routing.health import DeploymentStats
from sluice.routing.policy import (
    DeploymentFacts,
    PolicyEngine,
    RequestFacts,
    is_self_hosted,
    static_facts,
    with_health,
)
from sluice.routing.strategies import order
from sluice.routing.table import Deployment, ModelEntry, ModelTable


class Router:
    def __init__(
        self,
        table: ModelTable,
        *,
        stats: DeploymentStats,
        breakers: Breakers,
        config: RoutingConfig,
        clock: Clock,
        policy: PolicyEngine | None = None,
        gateway: GatewayConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.table = table
        self.stats = stats
        self.breakers = breakers
        self.policy = policy or PolicyEngine()
        self._config = config
        self._gateway = gateway
        self._clock = clock
        self._rng = rng or random.Random()
        self._facts: dict[str, DeploymentFacts] = {}

    def rebind(self, gateway: GatewayConfig) -> None:
        """The catalogue changed (the table was swapped): forget the deployments' config
        facts (prices, hosting), learnt again from ``gateway`` on first use."""
        self._gateway = gateway
        self._facts = {}

    def candidates(
        self, entry: ModelEntry, request: RequestFacts | None = None
    ) -> list[Deployment]:
        """Every deployment of ``entry`` in the order to try them: by the model's strategy,
        then filtered and re-ordered by the routing policies (when configured)."""
        deps = entry.deployments
        if len(deps) == 1:
            ordered = [deps[0]]
        else:
            ordered = order(deps, entry.strategy, stats=self.stats, rng=self._rng, cost=_cost)
        if request is None or not self.policy.enabled:
            return ordered
        decision = self.policy.evaluate([self.facts(entry, d) for d in ordered], request)
        allowed = decision.arrange(ordered, key=lambda d: d.key)
        if not allowed:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                f"the routing policies allow no deployment of {entry.name!r} for this request",
                code="no_allowed_deployment",
            )
        return allowed

    def facts(self, entry: ModelEntry, dep: Deployment) -> DeploymentFacts:
        """What the policies may read about ``dep``: config facts (built once) and, when a
        policy reads them, this process's live health figures."""
        facts = self._facts.get(dep.key)
        if facts is None:
            provider = self._gateway.providers.get(dep.provider_name) if self._gateway else None
            model = self._gateway and next(
                (m for m in self._gateway.models if m.name == entry.name), None
            )
            prices = model.prices if model else None
            facts = static_facts(
                entry,
                dep,
                self_hosted=is_self_hosted(provider) if provider is not None else False,
                input_usd_per_mtok=prices.input_usd_per_mtok if prices else None,
                output_usd_per_mtok=prices.output_usd_per_mtok if prices else None,
            )
            self._facts[dep.key] = facts
        return with_health(facts, self.stats) if self.policy.reads_health else facts

    def available(self, dep: Deployment) -> bool:
        return bool(self.breakers.available(dep.key))

    def begin(self, dep: Deployment) -> None:
        self.stats.begin(dep.key)

    def end(self, dep: Deployment, *, ok: bool, latency_ms: float, ttft_ms: float | None) -> None:
        self.stats.end(dep.key, ok=ok, latency_ms=latency_ms, ttft_ms=ttft_ms)

    async def record(self, dep: Deployment, *, ok: bool) -> None:
        """An attempt's verdict on the deployment's health."""
        await self.breakers.record(dep.key, ok=ok)

    async def release(self, dep: Deployment) -> None:
        """An attempt that says nothing about the deployment (a caller error, a client that
        left): frees a half-open probe without a verdict."""
        await self.breakers.release(dep.key)

    def retry_after_s(self, deps: Sequence[Deployment]) -> float | None:
        at = self.breakers.retry_at([d.key for d in deps])
        return None if at is None else max(0.0, at - self._clock.now())

    def entries(self, names: Iterable[str]) -> list[ModelEntry]:
        return [e for n in names if (e := self.table.get(n)) is not None]

    async def backoff(self, attempt: int, retry_after_s: float | None, deadline: float) -> bool:
        """Wait before retrying the same deployment; ``False`` when waiting makes no sense
        (``Retry-After`` above the cap, or past the request's deadline)."""
        cfg = self._config
        if retry_after_s is not None:
            if retry_after_s > cfg.retry_after_cap_s:
                return False
            delay = retry_after_s
        else:
            ceiling = min(cfg.backoff_max_s, cfg.backoff_base_s * (2**attempt))
            delay = ceiling * (0.5 + self._rng.random() / 2)
        loop = asyncio.get_running_loop()
        if loop.time() + delay >= deadline:
            return False
        if delay > 0:
            await self._clock.sleep(delay)
        return True


def _cost(dep: Deployment) -> float:
    return dep.output_usd_per_mtok
