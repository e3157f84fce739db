"""Facts from the router's own objects: the model table and the deployment stats.

Build the static part once per deployment (when the table is built), add the live health
per request: ``with_health(static, stats)`` costs about 4 µs per candidate, so skip it when
:attr:`PolicyEngine.reads_health` is false (and skip facts altogether when the engine is
not ``enabled``).
"""

from __future__ import annotations

from sluice.routing.health import DeploymentStats
from sluice.routing.policy.facts import UNKNOWN, DeploymentFacts, basis_points, micros_per_mtok
from sluice.routing.table import Deployment, ModelEntry


def static_facts(
    entry: ModelEntry,
    dep: Deployment,
    *,
    self_hosted: bool,
    input_usd_per_mtok: float | None = None,
    output_usd_per_mtok: float | None = None,
) -> DeploymentFacts:
    """What the config says about ``dep`` (no health yet).

    ``self_hosted``: see :func:`~sluice.routing.policy.facts.is_self_hosted`. Prices in
    USD per million tokens from the pricer; ``None`` when unknown.
    """
    return DeploymentFacts(
        key=dep.key,
        provider=dep.provider_name,
        provider_type=dep.provider_type,
        model=dep.upstream_model,
        public_model=entry.name,
        self_hosted=self_hosted,
        priority=dep.priority,
        input_micros_per_mtok=micros_per_mtok(input_usd_per_mtok),
        output_micros_per_mtok=micros_per_mtok(output_usd_per_mtok),
    )


def with_health(facts: DeploymentFacts, stats: DeploymentStats) -> DeploymentFacts:
    """``facts`` with this process's live figures for its deployment.

    ``samples`` and ``error_rate_bp`` cover the stats window (``-1`` when it saw nothing);
    ``latency_ms`` and ``ttft_ms`` are the averages the strategies read, ``-1`` when unknown
    or stale, so a deployment a policy forbade on latency gets traffic again (and is
    measured afresh) once its average goes stale.
    """
    snapshot = stats.snapshot(facts.key)
    ttft, latency = stats.ewma(facts.key)
    samples = snapshot.requests_in_window
    # Spelled out: dataclasses.replace costs twice as much on this per-candidate path.
    return DeploymentFacts(
        key=facts.key,
        provider=facts.provider,
        provider_type=facts.provider_type,
        model=facts.model,
        public_model=facts.public_model,
        self_hosted=facts.self_hosted,
        priority=facts.priority,
        samples=samples,
        error_rate_bp=basis_points(snapshot.error_rate) if samples else UNKNOWN,
        latency_ms=UNKNOWN if latency is None else round(latency),
        ttft_ms=UNKNOWN if ttft is None else round(ttft),
        in_flight=snapshot.in_flight,
        input_micros_per_mtok=facts.input_micros_per_mtok,
        output_micros_per_mtok=facts.output_micros_per_mtok,
    )
