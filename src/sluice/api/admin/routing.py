"""Routing policies: list, reload (every replica), explain a hypothetical request."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictInt

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import Id, Name, Strict
from sluice.auth.principal import Principal
from sluice.control.policies import admin_only
from sluice.routing.policy import RequestFacts
from sluice.tenancy.rules import not_found

SLA_MS_MAX = 86_400_000


class ExplainIn(Strict):
    model: Name
    """The model name or alias a client would send."""
    key_id: Id | None = None
    """Evaluate as this key (default: the caller's)."""
    sla_ms: Annotated[StrictInt, Field(ge=1, le=SLA_MS_MAX)] | None = None
    """As if the request carried ``x-sluice-latency-sla-ms`` (at most one day)."""
    budget_remaining_pct: Annotated[StrictInt, Field(ge=0, le=100)] | None = None
    """As if the tightest budget had this share left (omitted: as if none applied)."""


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["routing"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    control = ctx.control
    policies = control.policies

    @api.get("/routing/policies", **policy("admin"))
    async def list_policies(actor: Actor) -> dict[str, Any]:
        admin_only(actor)
        engine = policies.engine
        return {
            "enabled": engine.enabled,
            "generation": engine.generation,
            "data": [p.as_dict() for p in engine.policies()],
        }

    @api.post("/routing/reload", **policy("admin; every replica reloads"))
    async def reload(actor: Actor) -> dict[str, object]:
        return (await policies.reload(actor)).as_dict()

    @api.post("/routing/explain", **policy("admin"))
    async def explain(body: ExplainIn, actor: Actor) -> dict[str, object]:
        admin_only(actor)
        principal = actor
        if body.key_id is not None:
            found = control.cache.principal(body.key_id)
            if found is None:
                raise not_found("key", body.key_id)
            principal = found
        entry = control.table.resolve(body.model, allowed=principal.may_use)
        ordered = control.router.candidates(entry)
        request = RequestFacts(
            key_id=principal.key_id,
            model=entry.name,
            user_id=principal.user_id,
            team_id=principal.team_id,
            org_id=principal.org_id,
            teams=principal.teams,
            budget_remaining_micros=body.budget_remaining_pct,
            budget_limit_micros=100 if body.budget_remaining_pct is not None else None,
            sla_ms=body.sla_ms,
        )
        facts = [control.router.facts(entry, d) for d in ordered]
        result = policies.engine.explain(facts, request)
        return {
            "model": entry.name,
            "candidates": [d.key for d in ordered],
            "policies_enabled": policies.engine.enabled,
            **result,
        }

    return api
