"""What ``GET /health`` and the console's models page show of every deployment."""

from __future__ import annotations

from typing import Any

from sluice.routing.router import Router


def deployment_report(router: Router) -> dict[str, Any]:
    """Every model's deployments with breaker and latency state, as this process sees them."""
    models: list[dict[str, Any]] = []
    for entry in router.table.entries:
        deployments = []
        for dep in entry.deployments:
            stats = router.stats.snapshot(dep.key)
            breaker = router.breakers.state(dep.key)
            deployments.append(
                {
                    "id": dep.key,
                    "provider": dep.provider_name,
                    "model": dep.upstream_model,
                    "priority": dep.priority,
                    "weight": dep.weight,
                    "breaker": breaker.state,
                    "cooldown_until": breaker.retry_at,
                    "consecutive_failures": breaker.consecutive_failures,
                    "in_flight": stats.in_flight,
                    "latency_ewma_ms": stats.latency_ewma_ms,
                    "ttft_ewma_ms": stats.ttft_ewma_ms,
                    "error_rate": stats.error_rate,
                    "requests_in_window": stats.requests_in_window,
                }
            )
        healthy = any(d["breaker"] != "open" for d in deployments)
        models.append(
            {
                "model": entry.name,
                "strategy": entry.strategy,
                "healthy": healthy,
                "deployments": deployments,
            }
        )
    return {
        "status": "ok" if all(m["healthy"] for m in models) else "degraded",
        "models": models,
    }
