"""Routing policies: list, reload (every replica), explain a hypothetical request."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import Field, StrictInt

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import Id, Name, Strict
from sluice.auth.principal import Principal
from sluice.lifespan import POLICIES_VERSION, Runtime
from sluice.routing.policy import RequestFacts
from sluice.routing.policy.engine import ReloadResult
from sluice.tenancy.rules import forbidden, not_found
from sluice.tenancy.service import Tenancy

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


async def record_reload(
    tenancy: Tenancy, rt: Runtime, actor: Principal, result: ReloadResult
) -> None:
    """After this process reloaded its policy files: audit it and, when the files loaded,
    bump the policies version (other replicas reload) in the same unit of work."""
    version = None
    async with tenancy.changing(
        actor,
        "routing.reload",
        ("routing", "policies"),
        after={"ok": result.ok, "generation": result.generation},
    ) as unit:
        if result.ok:
            version = int(await unit.meta.get(POLICIES_VERSION) or 0) + 1
            await unit.meta.put(POLICIES_VERSION, str(version))
    if version is not None:
        rt.policies_version = version


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["routing"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    rt = ctx.rt

    def admin_only(actor: Principal) -> None:
        if not actor.is_admin:
            raise forbidden("only admins manage routing policies")

    @api.get("/routing/policies", **policy("admin"))
    async def list_policies(actor: Actor) -> dict[str, Any]:
        admin_only(actor)
        engine = rt.router.policy
        return {
            "enabled": engine.enabled,
            "generation": engine.generation,
            "data": [p.as_dict() for p in engine.policies()],
        }

    @api.post("/routing/reload", **policy("admin; every replica reloads"))
    async def reload(actor: Actor) -> dict[str, object]:
        admin_only(actor)
        result = await asyncio.to_thread(rt.router.policy.reload)
        await record_reload(ctx.tenancy, rt, actor, result)
        return result.as_dict()

    @api.post("/routing/explain", **policy("admin"))
    async def explain(body: ExplainIn, actor: Actor) -> dict[str, object]:
        admin_only(actor)
        principal = actor
        if body.key_id is not None:
            found = rt.keys.principal(body.key_id)
            if found is None:
                raise not_found("key", body.key_id)
            principal = found
        entry = rt.table.resolve(body.model, allowed=principal.may_use)
        ordered = rt.router.candidates(entry)
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
        facts = [rt.router.facts(entry, d) for d in ordered]
        result = rt.router.policy.explain(facts, request)
        return {
            "model": entry.name,
            "candidates": [d.key for d in ordered],
            "policies_enabled": rt.router.policy.enabled,
            **result,
        }

    return api
