"""Models, providers and prices: the config file's (read only here, ``source: config``) and
those stored through this API (``source: stored``), served as one table on every replica.

Bodies are written as in the config file (a model as one item of ``models``, a provider as
one entry of ``providers``) and checked by the same frozen models and rules: an unknown
field, a bad value or a reference to an undefined provider is a 400 naming the field."""

# No `from __future__ import annotations` here: FastAPI reads these annotations at run time
# and the `Actor` alias is local to `router()`.

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel

from sluice.api.admin.deps import AdminContext, policy
from sluice.api.admin.schemas import Page
from sluice.auth.principal import Principal
from sluice.control.catalog_checks import check_name
from sluice.control.catalog_view import ModelView, catalogue_json
from sluice.control.credentials import ProviderCredential
from sluice.tenancy.rules import not_found

Spec = Annotated[
    dict[str, Any],
    Body(description="As written in the config file (docs/models-admin.md)."),
]
ADMIN_OR_ORG = "admin; org admins read the providers of the models they may use"
ANYONE = "anyone: the models they may use (admins: every model)"


class ModelOut(BaseModel):
    name: str
    source: str
    """``config``: from the config file (read only here); ``stored``: added through this API."""
    spec: dict[str, Any]
    """The model as written in the config file (a price override folded into ``prices``)."""
    catalogue: dict[str, Any]
    """Aliases, capabilities, context window, prices (with their source) and live status."""
    created_at: datetime | None
    updated_at: datetime | None


class ProviderOut(BaseModel):
    name: str
    type: str
    base_url: str | None
    source: str = "config"
    """``config``: from the config file (read only here); ``stored``: added through this API."""
    spec: dict[str, Any] = {}
    """As written in the config file; header values hidden, credentials never shown."""
    credential_source: str
    """``stored`` (sealed, set through this API), ``config`` (an ``api_key`` in the provider's
    definition) or ``none``."""
    credential: str | None
    """Masked: ``****abcd`` for a stored or literal key, ``env:NAME`` for a reference."""


def _time(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def model_out(view: ModelView) -> ModelOut:
    return ModelOut(
        name=view.model.name,
        source=view.source,
        spec=view.model.model_dump(mode="json", exclude_defaults=True),
        catalogue=catalogue_json(view),
        created_at=_time(view.created_at),
        updated_at=_time(view.updated_at),
    )


def provider_out(
    cred: ProviderCredential, source: str = "config", spec: dict[str, Any] | None = None
) -> ProviderOut:
    return ProviderOut(
        name=cred.name,
        type=cred.type,
        base_url=cred.base_url,
        source=source,
        spec=spec or {},
        credential_source=cred.credential_source,
        credential=cred.credential,
    )


def router(ctx: AdminContext) -> APIRouter:
    api = APIRouter(tags=["models"])
    Actor = Annotated[Principal, Depends(ctx.actor)]
    catalog = ctx.control.catalog
    credentials = ctx.control.credentials

    async def _provider(actor: Principal, name: str) -> ProviderOut:
        for pname, source, spec in catalog.providers(actor):
            if pname == name:
                return provider_out(await credentials.describe(name), source, spec)
        raise not_found("provider", name)

    @api.get("/models", response_model=Page, **policy(ANYONE))
    async def list_models(actor: Actor) -> Page:
        return Page(data=[model_out(v) for v in catalog.models(actor)])

    @api.get("/models/{name:path}/price", response_model=ModelOut, **policy(ANYONE))
    async def get_price(name: str, actor: Actor) -> ModelOut:
        return model_out(catalog.model(actor, name))

    @api.put("/models/{name:path}/price", response_model=ModelOut, **policy("admin"))
    async def put_price(name: str, body: Spec, actor: Actor) -> ModelOut:
        return model_out(await catalog.set_price(actor, name, body))

    @api.delete("/models/{name:path}/price", response_model=ModelOut, **policy("admin"))
    async def delete_price(name: str, actor: Actor) -> ModelOut:
        return model_out(await catalog.set_price(actor, name, None))

    @api.get("/models/{name:path}", response_model=ModelOut, **policy(ANYONE))
    async def get_model(name: str, actor: Actor) -> ModelOut:
        return model_out(catalog.model(actor, name))

    @api.post("/models", status_code=201, response_model=ModelOut, **policy("admin", errors=(409,)))
    async def create_model(body: Spec, actor: Actor) -> ModelOut:
        return model_out(await catalog.put_model(actor, body, create=True))

    @api.put("/models/{name:path}", response_model=ModelOut, **policy("admin", errors=(409,)))
    async def replace_model(name: str, body: Spec, actor: Actor) -> ModelOut:
        return model_out(await catalog.put_model(actor, body, create=False, name=name))

    @api.patch("/models/{name:path}", response_model=ModelOut, **policy("admin", errors=(409,)))
    async def update_model(name: str, body: Spec, actor: Actor) -> ModelOut:
        """Change the given top-level fields; ``null`` puts one back to its default."""
        old = catalog.stored("model", name)
        merged = {**(old.spec if old else {}), **body}
        spec = {k: v for k, v in merged.items() if v is not None}
        return model_out(await catalog.put_model(actor, spec, create=False, name=name))

    @api.delete("/models/{name:path}", status_code=204, **policy("admin", errors=(409,)))
    async def delete_model(name: str, actor: Actor) -> None:
        await catalog.remove_model(actor, name)

    @api.get("/providers", response_model=Page, **policy(ADMIN_OR_ORG))
    async def list_providers(actor: Actor) -> Page:
        return Page(
            data=[
                provider_out(await credentials.describe(name), source, spec)
                for name, source, spec in catalog.providers(actor)
            ]
        )

    @api.get("/providers/{name}", response_model=ProviderOut, **policy(ADMIN_OR_ORG))
    async def get_provider(name: str, actor: Actor) -> ProviderOut:
        return await _provider(actor, name)

    @api.post(
        "/providers",
        status_code=201,
        response_model=ProviderOut,
        **policy("admin", errors=(409, 503)),
    )
    async def create_provider(body: Spec, actor: Actor) -> ProviderOut:
        name = check_name("provider", body.get("name"))
        spec = {k: v for k, v in body.items() if k != "name"}
        await catalog.put_provider(actor, name, spec, create=True)
        return await _provider(actor, name)

    @api.patch(
        "/providers/{name}", response_model=ProviderOut, **policy("admin", errors=(409, 503))
    )
    async def update_provider(name: str, body: Spec, actor: Actor) -> ProviderOut:
        """Change the given top-level fields; ``null`` puts one back to its default."""
        old = catalog.stored("provider", name)
        merged = {**(old.spec if old else {}), **body}
        spec = {k: v for k, v in merged.items() if v is not None and k != "name"}
        await catalog.put_provider(actor, name, spec, create=False)
        return await _provider(actor, name)

    @api.delete("/providers/{name}", status_code=204, **policy("admin", errors=(409,)))
    async def delete_provider(name: str, actor: Actor) -> None:
        await catalog.remove_provider(actor, name)

    return api
