"""Alerts: the list (scoped to what the caller may see) and a test webhook."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from sluice.alerts import Alert, AlertKind, AlertService
from sluice.api.admin.deps import ROW_ID_MAX, AdminContext, policy
from sluice.api.admin.schemas import IsoDateTime
from sluice.auth.principal import Principal
from sluice.control.alerts import send_test, visibility
from sluice.errors import BadRequest

SCOPE_KINDS = ("key", "user", "team", "org")


class AlertOut(BaseModel):
    id: int
    kind: AlertKind
    created_at: datetime
    message: str
    scope: str | None
    org_id: str | None
    team_id: str | None
    user_id: str | None
    deployment: str | None
    period: str | None
    period_start: datetime | None
    threshold_pct: int | None
    limit_usd: float | None
    spent_usd: float | None
    details: dict[str, Any]
    delivery: str
    """pending, sent, failed, superseded or no_webhook (docs/alerts.md)."""
    attempts: int
    last_error: str | None
    delivered_at: datetime | None


class AlertPage(BaseModel):
    data: list[AlertOut]
    next_before_id: int | None
    """Pass as ``before_id`` for the next (older) page; ``None`` on the last page."""


def _when(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def alert_out(a: Alert) -> AlertOut:
    assert a.id is not None
    return AlertOut(
        id=a.id,
        kind=a.kind,
        created_at=datetime.fromtimestamp(a.created_at, UTC),
        message=a.message,
        scope=a.scope,
        org_id=a.org_id,
        team_id=a.team_id,
        user_id=a.user_id,
        deployment=a.deployment,
        period=a.period,
        period_start=_when(a.period_start),
        threshold_pct=a.threshold_pct,
        limit_usd=a.limit_micros / 1e6 if a.limit_micros is not None else None,
        spent_usd=a.spent_micros / 1e6 if a.spent_micros is not None else None,
        details=a.details,
        delivery=a.delivery,
        attempts=a.attempts,
        last_error=a.last_error,
        delivered_at=_when(a.delivered_at),
    )


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["alerts"])
    Actor = Annotated[Principal, Depends(ctx.actor)]

    def service() -> AlertService:
        return ctx.control.alerts

    @api.get(
        "/alerts",
        response_model=AlertPage,
        **policy(
            "admin: all; org-admin / team-admin: budget alerts of their orgs / teams; "
            "anyone: budget alerts of their own user and keys and of their teams and orgs",
            errors=(503,),
        ),
    )
    async def alerts(
        actor: Actor,
        *,
        kind: AlertKind | None = None,
        scope: Annotated[
            str | None, Query(description="key:ID, user:ID, team:ID or org:ID")
        ] = None,
        since: Annotated[IsoDateTime | None, Query(description="ISO 8601; naive is UTC")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
    ) -> AlertPage:
        if scope is not None:
            prefix, _, ident = scope.partition(":")
            if prefix not in SCOPE_KINDS or not ident:
                raise BadRequest("scope must be key:ID, user:ID, team:ID or org:ID", param="scope")
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        member_orgs: frozenset[str] = frozenset()
        if not actor.is_admin and actor.teams:
            directory = await ctx.tenancy.directory()
            member_orgs = frozenset(t.org_id for t in directory.teams if t.id in actor.teams)
        query = replace(
            visibility(actor, member_orgs),
            kinds=(kind,) if kind is not None else None,
            scope=scope,
            since=since.timestamp() if since is not None else None,
            before_id=before_id,
            limit=limit,
        )
        rows = await service().repo.list(query)
        more = len(rows) == limit and rows[-1].id is not None
        return AlertPage(
            data=[alert_out(a) for a in rows], next_before_id=rows[-1].id if more else None
        )

    @api.post(
        "/alerts/test",
        response_model=AlertOut,
        **policy("admin", errors=(503,)),
    )
    async def test_alert(
        actor: Actor,
        webhook: Annotated[str | None, Query(description="one webhook by name")] = None,
    ) -> AlertOut:
        return alert_out(await send_test(service(), actor, only=webhook))

    return api
