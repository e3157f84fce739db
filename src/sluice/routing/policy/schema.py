"""The Cedar entity model of routing policies: the schema and the facts → Cedar mapping.

Policies are validated against :data:`SCHEMA` when loaded, so a misspelt attribute or a
type error is a load error naming the file, not a policy that silently never applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from typing import Any

from sluice.routing.policy.facts import DeploymentFacts, RequestFacts

NAMESPACE = "Sluice"
KEY_TYPE = "Sluice::Key"
USER_TYPE = "Sluice::User"
TEAM_TYPE = "Sluice::Team"
ORG_TYPE = "Sluice::Org"
DEPLOYMENT_TYPE = "Sluice::Deployment"
ACTION_TYPE = "Sluice::Action"
ROUTE = "route"
"""Action asked for each candidate: allowed iff permitted (forbids remove candidates)."""
PREFER = "prefer"
"""Action asked for each allowed candidate: permitted means preferred (moved first)."""

SCHEMA = """
namespace Sluice {
  entity Org;
  entity Team in [Org];
  entity User in [Team, Org];
  entity Key in [User, Team, Org] = {
    user: String,
    team: String,
    org: String,
  };
  entity Deployment = {
    provider: String,
    provider_type: String,
    model: String,
    public_model: String,
    self_hosted: Bool,
    priority: Long,
    samples: Long,
    error_rate_bp: Long,
    latency_ms: Long,
    ttft_ms: Long,
    in_flight: Long,
    input_micros_per_mtok: Long,
    output_micros_per_mtok: Long,
  };
  type RouteContext = {
    model: String,
    budget_remaining_pct: Long,
    budget_remaining_micros: Long,
    sla_ms: Long,
    hour_utc: Long,
  };
  action route, prefer appliesTo {
    principal: [Key],
    resource: [Deployment],
    context: RouteContext,
  };
}
"""

Value = str | int | bool
Transform = Callable[[Any], Value]
"""Turns a raw value into the one Cedar sees (the canonical value of a threshold)."""

DEPLOYMENT_ATTRS: dict[str, bool] = {
    "provider": False,
    "provider_type": False,
    "model": False,
    "public_model": False,
    "self_hosted": False,
    "priority": False,
    "samples": True,
    "error_rate_bp": True,
    "latency_ms": True,
    "ttft_ms": True,
    "in_flight": True,
    "input_micros_per_mtok": False,
    "output_micros_per_mtok": False,
}
"""``resource`` attribute (a :class:`DeploymentFacts` field) → live: a health figure that
moves between requests (the cache treats those apart, see ``cache.py``)."""


ContextAttr = Callable[[RequestFacts, int], Value]

CONTEXT_ATTRS: dict[str, ContextAttr] = {
    "model": lambda r, _h: r.model,
    "budget_remaining_pct": lambda r, _h: r.budget_remaining_pct,
    "budget_remaining_micros": lambda r, _h: (
        -1 if r.budget_remaining_micros is None else max(0, r.budget_remaining_micros)
    ),
    "sla_ms": lambda r, _h: -1 if r.sla_ms is None else r.sla_ms,
    "hour_utc": lambda _r, hour: hour,
}
"""``context`` attributes; the second argument is the current UTC hour (0-23)."""


class AttrReader:
    """Reads chosen deployment attributes as a tuple, transformed where due (hot path)."""

    __slots__ = ("_get", "_steps", "names")

    def __init__(
        self, names: Iterable[str], transforms: Mapping[str, Transform] | None = None
    ) -> None:
        self.names = tuple(names)
        self._get: Callable[[DeploymentFacts], Any] | None = (
            attrgetter(*self.names) if self.names else None
        )
        transforms = transforms or {}
        self._steps = tuple((i, transforms[n]) for i, n in enumerate(self.names) if n in transforms)

    def __call__(self, facts: DeploymentFacts) -> tuple[Value, ...]:
        if self._get is None:
            return ()
        raw: Any = self._get(facts)
        if len(self.names) == 1:
            raw = (raw,)
        if not self._steps:
            values: tuple[Value, ...] = raw
            return values
        out: list[Any] = list(raw)
        for i, transform in self._steps:
            out[i] = transform(out[i])
        return tuple(out)

    def as_dict(self, facts: DeploymentFacts) -> dict[str, Value]:
        return dict(zip(self.names, self(facts), strict=True))


def uid(entity_type: str, entity_id: str) -> dict[str, str]:
    return {"type": entity_type, "id": entity_id}


def principal_entity(request: RequestFacts) -> dict[str, Any]:
    """The key, with its user, teams and org as direct parents (``principal in ...``)."""
    parents = []
    if request.user_id:
        parents.append(uid(USER_TYPE, request.user_id))
    teams = set(request.teams)
    if request.team_id:
        teams.add(request.team_id)
    parents.extend(uid(TEAM_TYPE, team) for team in sorted(teams) if team)
    if request.org_id:
        parents.append(uid(ORG_TYPE, request.org_id))
    return {
        "uid": uid(KEY_TYPE, request.key_id),
        "attrs": {
            "user": request.user_id or "",
            "team": request.team_id or "",
            "org": request.org_id or "",
        },
        "parents": parents,
    }


def principal_identity(request: RequestFacts) -> tuple[object, ...]:
    """Everything :func:`principal_entity` depends on (a cache key part)."""
    return (request.key_id, request.user_id, request.team_id, request.org_id, request.teams)
