"""Users and the admin role."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends

from sluice.api.admin.deps import AdminContext, Archived, policy
from sluice.api.admin.schemas import Page, UserCreate, UserOut, UserUpdate, merge_governance
from sluice.auth.oidc.service import LOCAL
from sluice.auth.principal import Principal
from sluice.tenancy.model import Governance, User
from sluice.tenancy.rules import not_found


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["users"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    t = ctx.tenancy

    async def out(user: User) -> UserOut:
        return UserOut.of_user(user, await ctx.control.sso.sign_ins_of(user.id))

    @api.post(
        "/users",
        status_code=201,
        response_model=UserOut,
        **policy("admin; org-admin into their organisation", errors=(409,)),
    )
    async def create(body: UserCreate, actor: Actor) -> UserOut:
        user = await t.create_user(
            actor,
            email=body.email,
            name=body.name,
            org_id=body.org_id,
            team_id=body.team_id,
            max_keys=body.max_keys,
            gov=merge_governance(Governance(), body),
        )
        return await out(user)

    @api.get("/users", response_model=Page, **policy("visible users"))
    async def list_users(actor: Actor, archived: Archived = False) -> Page:
        users = await t.list_users(actor, archived=archived)
        sign_ins = await ctx.control.sso.sign_ins()
        return Page(data=[UserOut.of_user(u, sign_ins.get(u.id, LOCAL)) for u in users])

    @api.get("/users/me", response_model=UserOut, **policy("any user key"))
    async def me(actor: Actor) -> UserOut:
        if actor.user_id is None:
            raise not_found("user", "me")
        return await out(await t.visible_user(actor, actor.user_id))

    @api.get("/users/{user_id}", response_model=UserOut, **policy("self, their admins, admin"))
    async def get(user_id: str, actor: Actor) -> UserOut:
        user = await t.visible_user(actor, user_id)
        return await out(user)

    @api.patch(
        "/users/{user_id}",
        response_model=UserOut,
        **policy("org-admin or admin; the user may change their name"),
    )
    async def update(user_id: str, body: UserUpdate, actor: Actor) -> UserOut:
        user = await t.visible_user(actor, user_id)
        fields = set(body.model_fields_set)
        user = await t.update_user(
            actor,
            user_id,
            name=body.name,
            disabled=body.disabled,
            max_keys=body.max_keys,
            fields=fields,
            gov=merge_governance(user.governance, body),
        )
        return await out(user)

    @api.post(
        "/users/{user_id}/archive",
        response_model=UserOut,
        **policy("org-admin or admin, not oneself; disables and revokes their keys"),
    )
    async def archive(user_id: str, actor: Actor) -> UserOut:
        return await out(await ctx.control.archive.user(actor, user_id))

    @api.put("/users/{user_id}/admin", response_model=UserOut, **policy("admin"))
    async def grant_admin(user_id: str, actor: Actor) -> UserOut:
        return await out(await t.set_admin(actor, user_id, True))

    @api.delete("/users/{user_id}/admin", response_model=UserOut, **policy("admin"))
    async def revoke_admin(user_id: str, actor: Actor) -> UserOut:
        return await out(await t.set_admin(actor, user_id, False))

    return api
