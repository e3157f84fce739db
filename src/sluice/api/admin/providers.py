"""Provider credentials: stored sealed (``SLUICE_SECRET_KEY``), shown masked. The providers
themselves are listed and changed in ``api.admin.models``."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.models import ProviderOut, provider_out
from sluice.api.admin.schemas import NO_NUL, Strict
from sluice.auth.principal import Principal


class CredentialIn(Strict):
    api_key: Annotated[str, Field(min_length=1, max_length=4096, pattern=NO_NUL)]


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["providers"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    credentials = ctx.control.credentials
    catalog = ctx.control.catalog

    @api.put(
        "/providers/{name}/credential",
        response_model=ProviderOut,
        **policy("admin", errors=(503,)),
    )
    async def put_credential(name: str, body: CredentialIn, actor: Actor) -> ProviderOut:
        view = await credentials.store(actor, name, body.api_key)
        return provider_out(view, catalog.source("provider", name))

    @api.delete("/providers/{name}/credential", response_model=ProviderOut, **policy("admin"))
    async def delete_credential(name: str, actor: Actor) -> ProviderOut:
        view = await credentials.remove(actor, name)
        return provider_out(view, catalog.source("provider", name))

    return api
