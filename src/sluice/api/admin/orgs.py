"""Organisations and the global caps."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends

from sluice.api.admin.deps import AdminContext, Archived, policy
from sluice.api.admin.schemas import (
    CapsIn,
    GovernanceOut,
    OrgCreate,
    OrgOut,
    OrgUpdate,
    Page,
    merge_governance,
)
from sluice.auth.principal import Principal
from sluice.tenancy.model import Governance
from sluice.tenancy.rules import forbidden


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["organisations"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    t = ctx.tenancy

    @api.get("/global", response_model=GovernanceOut, **policy("admin"))
    async def get_global(actor: Actor) -> GovernanceOut:
        if not actor.is_admin:
            raise forbidden("only admins see the global caps")
        return GovernanceOut.of(await t.global_governance())

    @api.put("/global", response_model=GovernanceOut, **policy("admin"))
    async def put_global(body: CapsIn, actor: Actor) -> GovernanceOut:
        return GovernanceOut.of(
            await t.set_global_governance(actor, merge_governance(Governance(), body))
        )

    @api.post("/orgs", status_code=201, response_model=OrgOut, **policy("admin", errors=(409,)))
    async def create(body: OrgCreate, actor: Actor) -> OrgOut:
        org = await t.create_org(actor, body.name, merge_governance(Governance(), body))
        return OrgOut.of_org(org)

    @api.get("/orgs", response_model=Page, **policy("visible orgs: admin all, others theirs"))
    async def list_orgs(actor: Actor, archived: Archived = False) -> Page:
        return Page(data=[OrgOut.of_org(o) for o in await t.list_orgs(actor, archived=archived)])

    @api.post(
        "/orgs/{org_id}/archive",
        response_model=OrgOut,
        **policy("admin; archives its teams and revokes their keys"),
    )
    async def archive(org_id: str, actor: Actor) -> OrgOut:
        return OrgOut.of_org(await ctx.control.archive.org(actor, org_id))

    @api.get("/orgs/{org_id}", response_model=OrgOut, **policy("member, org-admin or admin"))
    async def get(org_id: str, actor: Actor) -> OrgOut:
        return OrgOut.of_org(await t.visible_org(actor, org_id))

    @api.patch(
        "/orgs/{org_id}",
        response_model=OrgOut,
        **policy("org-admin (within global caps) or admin", errors=(409,)),
    )
    async def update(org_id: str, body: OrgUpdate, actor: Actor) -> OrgOut:
        org = await t.visible_org(actor, org_id)
        org = await t.update_org(
            actor, org_id, name=body.name, gov=merge_governance(org.governance, body)
        )
        return OrgOut.of_org(org)

    @api.put("/orgs/{org_id}/admins/{user_id}", status_code=204, **policy("admin"))
    async def grant_org_admin(org_id: str, user_id: str, actor: Actor) -> None:
        await t.set_org_admin(actor, org_id, user_id, True)

    @api.delete("/orgs/{org_id}/admins/{user_id}", status_code=204, **policy("admin"))
    async def revoke_org_admin(org_id: str, user_id: str, actor: Actor) -> None:
        await t.set_org_admin(actor, org_id, user_id, False)

    return api
