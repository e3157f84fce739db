"""Configured providers and their credentials (stored encrypted, shown masked)."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import NO_NUL, Page, Strict
from sluice.auth.principal import Principal
from sluice.control.credentials import ProviderCredential


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


def _out(view: ProviderCredential) -> ProviderOut:
    return ProviderOut(
        name=view.name,
        type=view.type,
        base_url=view.base_url,
        credential_source=view.credential_source,
        credential=view.credential,
    )


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["providers"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    credentials = ctx.control.credentials

    @api.get("/providers", response_model=Page, **policy("admin"))
    async def list_providers(actor: Actor) -> Page:
        return Page(data=[_out(p) for p in await credentials.list(actor)])

    @api.put(
        "/providers/{name}/credential",
        response_model=ProviderOut,
        **policy("admin", errors=(503,)),
    )
    async def put_credential(name: str, body: CredentialIn, actor: Actor) -> ProviderOut:
        return _out(await credentials.store(actor, name, body.api_key))

    @api.delete("/providers/{name}/credential", response_model=ProviderOut, **policy("admin"))
    async def delete_credential(name: str, actor: Actor) -> ProviderOut:
        return _out(await credentials.remove(actor, name))

    return api
