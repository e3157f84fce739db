"""Configured providers and their credentials (stored encrypted, shown masked)."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import NO_NUL, Page, Strict
from sluice.auth.principal import Principal
from sluice.credentials.crypto import mask
from sluice.errors import ErrorKind, GatewayError
from sluice.lifespan import Runtime
from sluice.storage.base import StoredCredential
from sluice.tenancy.rules import forbidden, not_found


class CredentialIn(Strict):
    api_key: Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL)]


class ProviderOut(BaseModel):
    name: str
    type: str
    base_url: str | None
    credential_source: str
    """``stored`` (set through this API), ``config`` (the YAML's ``api_key``) or ``none``."""
    credential: str | None
    """Masked: ``****abcd`` for a stored or literal key, ``env:NAME`` for a reference."""


def admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins manage providers")


async def describe(rt: Runtime, name: str) -> ProviderOut:
    """A configured provider with its credential masked (never the secret)."""
    cfg = rt.config.providers[name]
    stored = {c.provider: c for c in await rt.storage.credentials.all()}
    if name in stored:
        source, shown = "stored", stored[name].preview
    elif cfg.api_key_ref is not None:
        env = cfg.api_key_ref.env_name
        value = cfg.api_key_ref.resolve()
        source, shown = "config", f"env:{env}" if env else mask(value or "")
    else:
        source, shown = "none", None
    return ProviderOut(
        name=name,
        type=cfg.type,
        base_url=cfg.base_url,
        credential_source=source,
        credential=shown,
    )


def _known(rt: Runtime, name: str) -> None:
    if name not in rt.config.providers:
        raise not_found("provider", name)


async def store_credential(
    ctx: AdminContext, actor: Principal, name: str, api_key: str
) -> ProviderOut:
    """Seal and store a provider's key (admin only; audited with the masked value)."""
    rt = ctx.rt
    admin_only(actor)
    _known(rt, name)
    if rt.sealer is None:
        raise GatewayError(
            ErrorKind.GATEWAY_UNAVAILABLE, "set SLUICE_SECRET_KEY to store provider credentials"
        )
    preview = mask(api_key)
    sealed = StoredCredential(name, rt.sealer.seal(api_key, context=name), preview, time.time())
    async with ctx.tenancy.changing(
        actor, "provider.credential", ("provider", name), after={"credential": preview}
    ) as unit:
        await unit.credentials.put(sealed)
    return await describe(rt, name)


async def remove_credential(ctx: AdminContext, actor: Principal, name: str) -> ProviderOut:
    rt = ctx.rt
    admin_only(actor)
    _known(rt, name)
    async with ctx.tenancy.changing(actor, "provider.credential_remove", ("provider", name)) as u:
        if not await u.credentials.delete(name):
            raise not_found("stored credential of", name)
    return await describe(rt, name)


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["providers"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    rt = ctx.rt

    @api.get("/providers", response_model=Page, **policy("admin"))
    async def list_providers(actor: Actor) -> Page:
        admin_only(actor)
        return Page(data=[await describe(rt, n) for n in rt.config.providers])

    @api.put(
        "/providers/{name}/credential",
        response_model=ProviderOut,
        **policy("admin", errors=(503,)),
    )
    async def put_credential(name: str, body: CredentialIn, actor: Actor) -> ProviderOut:
        return await store_credential(ctx, actor, name, body.api_key)

    @api.delete("/providers/{name}/credential", response_model=ProviderOut, **policy("admin"))
    async def delete_credential(name: str, actor: Actor) -> ProviderOut:
        return await remove_credential(ctx, actor, name)

    return api
