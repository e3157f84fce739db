"""The audit log of admin mutations."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sluice.api.admin.deps import ROW_ID_MAX, AdminContext, policy
from sluice.api.admin.schemas import AuditOut, IsoDateTime, Page
from sluice.auth.principal import Principal
from sluice.errors import BadRequest
from sluice.tenancy.bounds import ID_MAX_CHARS
from sluice.tenancy.model import AuditFilter


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["audit"])
    Actor = Annotated[Principal, Depends(ctx.actor)]

    @api.get(
        "/audit",
        response_model=Page,
        **policy("admin; org-admin with their org_id"),
    )
    async def entries(
        actor: Actor,
        *,
        org_id: Annotated[str | None, Query(max_length=ID_MAX_CHARS)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
        actor_id: Annotated[
            str | None, Query(alias="actor", max_length=ID_MAX_CHARS, description="Actor id.")
        ] = None,
        action: Annotated[
            str | None,
            Query(max_length=64, description="An action, or its prefix ending in a dot."),
        ] = None,
        target_id: Annotated[str | None, Query(max_length=ID_MAX_CHARS)] = None,
        start: Annotated[
            IsoDateTime | None, Query(alias="from", description="ISO 8601; naive is UTC")
        ] = None,
        end: Annotated[
            IsoDateTime | None, Query(alias="to", description="ISO 8601; naive is UTC")
        ] = None,
    ) -> Page:
        if start is not None and end is not None and start >= end:
            raise BadRequest("from must be before to", param="from")
        where = AuditFilter(
            actor=actor_id,
            action=action,
            target_id=target_id,
            start=start.timestamp() if start is not None else None,
            end=end.timestamp() if end is not None else None,
        )
        rows = await ctx.tenancy.audit_entries(
            actor, org_id=org_id, limit=limit, before_id=before_id, where=where
        )
        return Page(
            data=[
                AuditOut(
                    id=e.id,
                    at=datetime.fromtimestamp(e.at, UTC),
                    actor=e.actor,
                    action=e.action,
                    target_type=e.target_type,
                    target_id=e.target_id,
                    org_id=e.org_id,
                    before=e.before,
                    after=e.after,
                )
                for e in rows
            ]
        )

    return api
