"""Policy routing with Cedar: forbid or prefer deployments per request.

See docs/routing-policies.md for the entity model and examples/policies/ for policies.
"""

from sluice.routing.policy.adapt import static_facts, with_health
from sluice.routing.policy.engine import (
    Decision,
    PolicyEngine,
    ReloadResult,
    RoutingPolicy,
)
from sluice.routing.policy.facts import (
    SLA_HEADER,
    DeploymentFacts,
    RequestFacts,
    basis_points,
    is_self_hosted,
    micros_per_mtok,
    parse_sla_header,
)
from sluice.routing.policy.source import PolicyInfo, PolicyLoadError, PolicyProblem

__all__ = [
    "SLA_HEADER",
    "Decision",
    "DeploymentFacts",
    "PolicyEngine",
    "PolicyInfo",
    "PolicyLoadError",
    "PolicyProblem",
    "ReloadResult",
    "RequestFacts",
    "RoutingPolicy",
    "basis_points",
    "is_self_hosted",
    "micros_per_mtok",
    "parse_sla_header",
    "static_facts",
    "with_health",
]
