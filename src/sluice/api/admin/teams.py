"""Teams, memberships and service accounts."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends

from sluice.api.admin.deps import AdminContext, Archived, policy
from sluice.api.admin.schemas import (
    MemberIn,
    MemberOut,
    Page,
    ServiceAccountCreate,
    ServiceAccountOut,
    TeamCreate,
    TeamOut,
    TeamUpdate,
    merge_governance,
)
from sluice.auth.principal import Principal
from sluice.tenancy.model import Governance, TeamRole


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["teams"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    t = ctx.tenancy

    @api.post(
        "/orgs/{org_id}/teams",
        status_code=201,
        response_model=TeamOut,
        **policy("org-admin or admin; limits within the org's", errors=(409,)),
    )
    async def create(org_id: str, body: TeamCreate, actor: Actor) -> TeamOut:
        team = await t.create_team(actor, org_id, body.name, merge_governance(Governance(), body))
        return TeamOut.of_team(team)

    @api.get("/teams", response_model=Page, **policy("visible teams"))
    async def list_teams(actor: Actor, archived: Archived = False) -> Page:
        return Page(data=[TeamOut.of_team(x) for x in await t.list_teams(actor, archived=archived)])

    @api.post(
        "/teams/{team_id}/archive",
        response_model=TeamOut,
        **policy("org-admin or admin; revokes the keys that bill it"),
    )
    async def archive(team_id: str, actor: Actor) -> TeamOut:
        return TeamOut.of_team(await ctx.control.archive.team(actor, team_id))

    @api.get(
        "/teams/{team_id}",
        response_model=TeamOut,
        **policy("member, team-admin, org-admin or admin"),
    )
    async def get(team_id: str, actor: Actor) -> TeamOut:
        return TeamOut.of_team(await t.visible_team(actor, team_id))

    @api.patch(
        "/teams/{team_id}",
        response_model=TeamOut,
        **policy("team-admin (within the org's caps), org-admin or admin", errors=(409,)),
    )
    async def update(team_id: str, body: TeamUpdate, actor: Actor) -> TeamOut:
        team = await t.visible_team(actor, team_id)
        team = await t.update_team(
            actor, team_id, name=body.name, gov=merge_governance(team.governance, body)
        )
        return TeamOut.of_team(team)

    @api.get(
        "/teams/{team_id}/members",
        response_model=Page,
        **policy("member, team-admin, org-admin or admin"),
    )
    async def members(team_id: str, actor: Actor) -> Page:
        return Page(
            data=[
                MemberOut(user_id=m.user_id, team_id=m.team_id, role=m.role.value)
                for m in await t.members(actor, team_id)
            ]
        )

    @api.put(
        "/teams/{team_id}/members/{user_id}",
        response_model=MemberOut,
        **policy("team-admin, org-admin or admin", errors=(409,)),
    )
    async def set_member(team_id: str, user_id: str, body: MemberIn, actor: Actor) -> MemberOut:
        m = await t.set_member(actor, team_id, user_id, TeamRole(body.role))
        return MemberOut(user_id=m.user_id, team_id=m.team_id, role=m.role.value)

    @api.delete(
        "/teams/{team_id}/members/{user_id}",
        status_code=204,
        **policy("team-admin, org-admin or admin"),
    )
    async def remove_member(team_id: str, user_id: str, actor: Actor) -> None:
        await t.remove_member(actor, team_id, user_id)

    @api.post(
        "/teams/{team_id}/service-accounts",
        status_code=201,
        response_model=ServiceAccountOut,
        **policy("team-admin, org-admin or admin", errors=(409,)),
    )
    async def create_sa(
        team_id: str, body: ServiceAccountCreate, actor: Actor
    ) -> ServiceAccountOut:
        return ServiceAccountOut.of_sa(await t.create_service_account(actor, team_id, body.name))

    @api.get(
        "/teams/{team_id}/service-accounts",
        response_model=Page,
        **policy("member, team-admin, org-admin or admin"),
    )
    async def list_sa(team_id: str, actor: Actor) -> Page:
        return Page(
            data=[ServiceAccountOut.of_sa(s) for s in await t.service_accounts(actor, team_id)]
        )

    @api.delete(
        "/service-accounts/{sa_id}",
        status_code=204,
        **policy("team-admin, org-admin or admin; revokes its keys"),
    )
    async def delete_sa(sa_id: str, actor: Actor) -> None:
        await t.delete_service_account(actor, sa_id)

    return api
