"""Terms of service: the published version, and who accepted what."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from sluice.api.admin.deps import AdminContext, policy
from sluice.auth.principal import Principal
from sluice.tenancy.bounds import ID_MAX_CHARS
from sluice.tenancy.rules import not_found


class TermsOut(BaseModel):
    version: str
    title: str
    exempt_admins: bool
    text: str
    """The terms as Markdown."""


class AcceptanceOut(BaseModel):
    user_id: str
    email: str | None
    """``None`` when the user was deleted since."""
    version: str
    accepted_at: datetime


class AcceptancePage(BaseModel):
    data: list[AcceptanceOut]


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["terms"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    service = ctx.control.terms

    @api.get("/terms", response_model=TermsOut, **policy("any key; 404 without auth.terms"))
    async def current(actor: Actor) -> TermsOut:
        terms = service.current
        if terms is None:
            raise not_found("terms of service", "current")
        return TermsOut(
            version=terms.version,
            title=terms.title,
            exempt_admins=terms.exempt_admins,
            text=terms.body,
        )

    @api.get(
        "/terms/acceptances",
        response_model=AcceptancePage,
        **policy("admin; org-admin for the users they see"),
    )
    async def acceptances(
        actor: Actor,
        version: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
        user_id: Annotated[str | None, Query(min_length=1, max_length=ID_MAX_CHARS)] = None,
    ) -> AcceptancePage:
        rows = await service.acceptances(actor, version=version, user_id=user_id)
        return AcceptancePage(
            data=[
                AcceptanceOut(
                    user_id=r.acceptance.user_id,
                    email=r.user.email if r.user else None,
                    version=r.acceptance.version,
                    accepted_at=datetime.fromtimestamp(r.acceptance.accepted_at, UTC),
                )
                for r in rows
            ]
        )

    return api
