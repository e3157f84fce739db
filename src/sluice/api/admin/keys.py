"""Gateway keys: create (secret shown once), list, update, rotate, revoke."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyRotate,
    KeyUpdate,
    Page,
    merge_governance,
)
from sluice.auth.principal import Principal
from sluice.errors import BadRequest
from sluice.tenancy.model import Governance


def _ts(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["keys"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    keys = ctx.keys
    clock = ctx.control.clock

    def check_models(names: list[str] | None, field: str) -> None:
        unknown = [m for m in names or () if ctx.control.table.canonical(m) is None]
        if unknown:
            raise BadRequest(f"unknown models: {', '.join(unknown)}", param=field)

    @api.post(
        "/keys",
        status_code=201,
        response_model=KeyCreated,
        **policy(
            "own personal keys; team-admin for service-account keys; admin any", errors=(409,)
        ),
    )
    async def create(body: KeyCreate, actor: Actor) -> KeyCreated:
        check_models(body.models, "models")
        check_models(body.models_exclude, "models_exclude")
        created = await keys.create(
            actor,
            name=body.name,
            now=clock.now(),
            team_id=body.team_id,
            user_id=body.user_id,
            service_account_id=body.service_account_id,
            expires_at=_ts(body.expires_at),
            gov=merge_governance(Governance(), body),
            metadata=body.metadata,
        )
        return KeyCreated(**KeyOut.of_key(created.record).model_dump(), key=created.secret)

    @api.get("/keys", response_model=Page, **policy("visible keys"))
    async def list_keys(actor: Actor) -> Page:
        return Page(data=[KeyOut.of_key(r) for r in await keys.list(actor)])

    @api.get(
        "/keys/{key_id}", response_model=KeyOut, **policy("owner, team-admin, org-admin, admin")
    )
    async def get(key_id: str, actor: Actor) -> KeyOut:
        record, _ = await keys.visible(actor, key_id)
        return KeyOut.of_key(record)

    @api.patch(
        "/keys/{key_id}",
        response_model=KeyOut,
        **policy("owner, team-admin (service-account keys), org-admin, admin"),
    )
    async def update(key_id: str, body: KeyUpdate, actor: Actor) -> KeyOut:
        check_models(body.models, "models")
        check_models(body.models_exclude, "models_exclude")
        record, _ = await keys.visible(actor, key_id)
        changes: dict[str, Any] = {}
        if body.name is not None:
            changes["name"] = body.name
        if "expires_at" in body.model_fields_set:
            changes["expires_at"] = _ts(body.expires_at)
        if body.metadata is not None:
            changes["metadata"] = body.metadata
        current = Governance.of_key(record)
        return KeyOut.of_key(
            await keys.update(
                actor, key_id, changes, merge_governance(current, body), now=clock.now()
            )
        )

    @api.post(
        "/keys/{key_id}/rotate",
        response_model=KeyCreated,
        **policy("owner, team-admin (service-account keys), org-admin, admin"),
    )
    async def rotate(key_id: str, body: KeyRotate, actor: Actor) -> KeyCreated:
        created = await keys.rotate(actor, key_id, now=clock.now(), grace_s=body.grace_s)
        return KeyCreated(**KeyOut.of_key(created.record).model_dump(), key=created.secret)

    @api.delete(
        "/keys/{key_id}",
        response_model=KeyOut,
        **policy("owner, team-admin (service-account keys), org-admin, admin"),
    )
    async def revoke(key_id: str, actor: Actor) -> KeyOut:
        return KeyOut.of_key(await keys.revoke(actor, key_id, now=clock.now()))

    return api
