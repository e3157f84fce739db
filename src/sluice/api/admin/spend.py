"""Spend per scope and period, from the recorded usage rows."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from sluice.api.admin.deps import AdminContext, policy
from sluice.auth.principal import Principal
from sluice.budgets.spec import BudgetSettings, period_bounds
from sluice.errors import BadRequest
from sluice.types import Unreadable

Period = Literal["day", "week", "month", "total"]


class SpendOut(BaseModel):
    scope: str
    period: Period
    start: datetime
    end: datetime | None
    spent_usd: float
    spent_micros: int
    budget_usd: float | None
    """The scope's own budget for this period, when it has one."""
    remaining_usd: float | None


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["spend"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    t = ctx.tenancy

    async def check_visible(
        actor: Principal, kind: str, ident: str
    ) -> BudgetSettings | Unreadable | None:
        """The scope's budget (if any); 404 when the caller may not see it."""
        if kind == "org":
            return (await t.visible_org(actor, ident)).governance.budget
        if kind == "team":
            return (await t.visible_team(actor, ident)).governance.budget
        if kind == "user":
            return (await t.visible_user(actor, ident)).governance.budget
        if kind == "key":
            record, _ = await ctx.keys.visible(actor, ident)
            return record.budget
        raise BadRequest("scope must be key:ID, user:ID, team:ID or org:ID", param="scope")

    @api.get(
        "/spend",
        response_model=SpendOut,
        **policy("whoever may see the scope's object (404 otherwise)"),
    )
    async def spend(
        actor: Actor,
        scope: Annotated[str, Query(description="key:ID, user:ID, team:ID or org:ID")],
        period: Period = "month",
    ) -> SpendOut:
        kind, _, ident = scope.partition(":")
        if not ident:
            raise BadRequest("scope must be key:ID, user:ID, team:ID or org:ID", param="scope")
        budget = await check_visible(actor, kind, ident)
        start, end = period_bounds(period, ctx.control.clock.now())
        spent = await ctx.control.records.spent_since(scope, start)
        own = budget if isinstance(budget, BudgetSettings) and budget.period == period else None
        budget_usd = float(own.usd) if own else None
        return SpendOut(
            scope=scope,
            period=period,
            start=datetime.fromtimestamp(start, UTC),
            end=datetime.fromtimestamp(end, UTC) if end is not None else None,
            spent_usd=spent / 1e6,
            spent_micros=spent,
            budget_usd=budget_usd,
            remaining_usd=max(0.0, budget_usd - spent / 1e6) if budget_usd is not None else None,
        )

    return api
