"""Single sign-on: the dry run of the group mapping."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.admin.deps import AdminContext, policy
from sluice.auth.principal import Principal
from sluice.tenancy.rules import forbidden


class SsoCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idp: str = Field(min_length=1, max_length=64, description="Identity provider (auth.oidc).")
    groups: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=500, description="The groups claim."
    )
    email: str | None = Field(default=None, max_length=320, description="The e-mail claim.")


class SsoPlanOut(BaseModel):
    idp: str
    allowed: bool
    refused: str | None
    org: str | None = Field(description="Organisation id or name, as configured.")
    org_source: str | None
    create_org: bool
    admin: bool
    org_admin: bool
    teams: list[str]
    skipped_teams: list[str] = Field(description="Teams made by hand that a rule names.")
    notes: list[str]


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["sso"])
    Actor = Annotated[Principal, Depends(ctx.actor)]

    @api.post("/sso/check", response_model=SsoPlanOut, **policy("admin"))
    async def check(body: SsoCheck, actor: Actor) -> SsoPlanOut:
        """What a sign-in with these claims would map to (nothing is written)."""
        if not actor.is_admin:
            raise forbidden("only admins run the sign-in mapping's dry run")
        plan = await ctx.control.sso.check(body.idp, groups=tuple(body.groups), email=body.email)
        return SsoPlanOut.model_validate(plan.to_json())

    return api
