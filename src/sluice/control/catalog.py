"""Providers, models and prices managed at run time: the config file's entries (read only
here) and the ones admins store through the admin API, console or CLI, served as one table.

Every change is validated like the config file (``catalog_checks``), refused whole when
anything is wrong, written with its audit entry (before/after, secrets masked) in one unit
of work, then applied here at once (:meth:`CatalogService.follow`); the other processes
follow the catalogue counter on their next poll, or at once when Redis tells them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from pydantic import ValidationError

from sluice.auth.principal import Principal
from sluice.budgets.pricing import Pricer, known_context_window
from sluice.clock import Clock
from sluice.config import GatewayConfig
from sluice.config.catalog import users_of_model, users_of_provider
from sluice.config.loader import validation_problems
from sluice.config.model import ModelConfig, Prices
from sluice.control.catalog_checks import (
    ENV_REF,
    bad,
    check_bounds,
    check_name,
    check_references,
    model_from,
    model_spec,
    provider_from,
    shown_spec,
    stored_spec,
)
from sluice.control.catalog_view import (
    CatalogConflict,
    ModelView,
    capabilities_of,
    catalogue_json,
    effective,
    export_entries,
    file_spec,
    override_of,
    price_of,
    status_of,
)
from sluice.credentials.crypto import Sealer, mask
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.base import MetaRepository, StoredCredential
from sluice.storage.catalog import CatalogEntry, CatalogRepository, Kind
from sluice.tenancy.rules import forbidden, not_found
from sluice.tenancy.service import Tenancy

log = logging.getLogger("sluice")

FILE_RELOADS = "config_reload_version"
"""The meta counter of requested config-file re-reads (``sluice config reload``)."""


async def request_file_reload(tenancy: Tenancy, actor: Principal) -> int:
    """Ask every running process to re-read its config file's providers and models (the
    CLI's way); returns the new counter. The request and its audit entry commit together."""
    _admin_only(actor)
    async with tenancy.changing(actor, "config.reload_request", ("config", "models")) as unit:
        return await unit.meta.increment(FILE_RELOADS)


Tester = Callable[[Principal, str, str], Awaitable[Any]]
"""Sends one test request to ``(model, deployment key)`` through the pipeline as the
principal; returns the result (``sluice.pipeline.probe.ProbeResult``)."""
Apply = Callable[[GatewayConfig], Awaitable[None]]
"""Serves a new effective catalogue in this process (built whole, then swapped)."""
Prepare = Callable[[GatewayConfig], None]
"""Builds (without serving) what a catalogue needs; raises what would fail."""


P = ParamSpec("P")
R = TypeVar("R")


def _one_at_a_time(
    method: Callable[Concatenate[CatalogService, P], Awaitable[R]],
) -> Callable[Concatenate[CatalogService, P], Awaitable[R]]:
    """Changes of this process run one after the other: each is checked against the table
    the previous one left."""

    async def run(self: CatalogService, /, *args: P.args, **kwargs: P.kwargs) -> R:
        async with self._writing:
            return await method(self, *args, **kwargs)

    run.__doc__ = method.__doc__

    return run


def _admin_only(actor: Principal) -> None:
    if not actor.is_admin:
        raise forbidden("only admins manage providers, models and prices")


def _from_file(kind: str, name: str) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_BAD_REQUEST,
        f"{kind} {name!r} is defined in the config file; change it there",
        status=409,
        code="conflict",
    )


class CatalogService:
    """Lists and changes the stored providers, models and price overrides; keeps this
    process serving the effective catalogue."""

    def __init__(
        self,
        base: GatewayConfig,
        repo: CatalogRepository,
        tenancy: Tenancy,
        *,
        apply: Apply,
        prepare: Prepare,
        pricer: Pricer,
        sealer: Sealer | None,
        clock: Clock,
        breaker_state: Callable[[str], str] = lambda key: "closed",
        load_file: Callable[[], GatewayConfig] | None = None,
        meta: MetaRepository | None = None,
    ) -> None:
        self.base = base
        """The config file's entries (re-read by :meth:`reload_file`)."""
        self.current = base
        """The catalogue this process serves."""
        self._repo = repo
        self._tenancy = tenancy
        self._apply = apply
        self._prepare = prepare
        self._pricer = pricer
        self._sealer = sealer
        self._clock = clock
        self._breaker_state = breaker_state
        self._load_file = load_file
        self._meta = meta
        self._reloads: int | None = None
        self._stored: list[CatalogEntry] = []
        self._writing = asyncio.Lock()
        self._following = asyncio.Lock()
        self.tester: Tester | None = None
        """Set by the composition root (the pipeline's probe)."""
        self.version = -1
        """The catalogue counter the served table reflects."""

    # reading ------------------------------------------------------------------------------
    def source(self, kind: Kind, name: str) -> str:
        if kind == "provider" and name in self.base.providers:
            return "config"
        if kind == "model" and any(m.name == name for m in self.base.models):
            return "config"
        return "stored"

    def stored(self, kind: Kind, name: str) -> CatalogEntry | None:
        return next((e for e in self._stored if e.kind == kind and e.name == name), None)

    def view(self, model: ModelConfig) -> ModelView:
        entry = self.stored("model", model.name)
        known = [
            known_context_window(self.current.providers[d.provider].type, d.model)
            for d in model.deployments
            if d.provider in self.current.providers
        ]
        window = model.context_window_tokens or max((k for k in known if k), default=None)
        return ModelView(
            model=model,
            source="config" if self.source("model", model.name) == "config" else "stored",
            price=price_of(
                model,
                config=self.current,
                pricer=self._pricer,
                overridden=self.stored("price", model.name) is not None,
            ),
            capabilities=capabilities_of(model),
            context_window_tokens=window,
            status=status_of([self._breaker_state(d.key) for d in model.deployments]),
            created_at=entry.created_at if entry else None,
            updated_at=entry.updated_at if entry else None,
        )

    def catalogue_fields(self, name: str) -> dict[str, Any]:
        """What ``/v1/models`` adds to OpenAI's model object; ``KeyError`` for a name the
        catalogue does not hold (a wildcard route)."""
        model = next((m for m in self.current.models if m.name == name), None)
        if model is None:
            raise KeyError(name)
        return catalogue_json(self.view(model))

    def models(self, actor: Principal) -> list[ModelView]:
        """Admins see every model; anyone else the models they may use."""
        return [
            self.view(m)
            for m in sorted(self.current.models, key=lambda m: m.name)
            if actor.is_admin or actor.may_use(m.name)
        ]

    def model(self, actor: Principal, name: str) -> ModelView:
        found = next((m for m in self.current.models if m.name == name), None)
        if found is None or not (actor.is_admin or actor.may_use(name)):
            raise not_found("model", name)
        return self.view(found)

    def providers(self, actor: Principal) -> list[tuple[str, str, dict[str, Any]]]:
        """``(name, source, spec with header values hidden)`` of every provider; org admins
        see the providers of the models they may use."""
        if not actor.is_admin and not actor.org_admin_of:
            raise forbidden("admins and org admins read providers")
        usable = {d.provider for v in self.models(actor) for d in v.model.deployments}
        out = []
        for name, cfg in sorted(self.current.providers.items()):
            if not actor.is_admin and name not in usable:
                continue
            entry = self.stored("provider", name)
            spec = entry.spec if entry is not None else file_spec(cfg)
            out.append((name, self.source("provider", name), shown_spec(spec)))
        return out

    async def test_deployment(self, actor: Principal, model: str, deployment: str) -> Any:
        """One short chat to one deployment of ``model``, through the pipeline, billed to
        the admin asking (the console's "test this deployment")."""
        _admin_only(actor)
        if self.tester is None:
            raise GatewayError(ErrorKind.GATEWAY_UNAVAILABLE, "testing is not available here")
        return await self.tester(actor, model, deployment)

    # changing providers -------------------------------------------------------------------
    @_one_at_a_time
    async def put_provider(
        self, actor: Principal, name: str, spec: Mapping[str, Any], *, create: bool
    ) -> None:
        """Create (``create``) or replace a stored provider. A literal ``api_key`` is
        sealed and stored with the provider credentials, in the same unit of work."""
        _admin_only(actor)
        check_name("provider", name)
        if name in self.base.providers:
            raise _from_file("provider", name)
        old = self.stored("provider", name)
        if create and (old is not None or name in self.current.providers):
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"a provider named {name!r} already exists",
                status=409,
                code="conflict",
            )
        if not create and old is None:
            raise not_found("provider", name)
        provider = provider_from(name, spec)
        key = spec.get("api_key")
        secret = key if isinstance(key, str) and not ENV_REF.match(key) else None
        if secret is not None and self._sealer is None:
            raise GatewayError(
                ErrorKind.GATEWAY_UNAVAILABLE,
                "set SLUICE_SECRET_KEY to store provider credentials (or give api_key as env:NAME)",
            )
        providers = {**self.current.providers, name: provider}
        candidate = check_references(
            list(self.current.models), providers, blame=None, base=self.current
        )
        self._prepare_or_400(candidate)
        now = self._clock.now()
        record = CatalogEntry(
            "provider", name, stored_spec(spec), old.created_at if old else now, now
        )
        after = shown_spec(record.spec) | ({"api_key": mask(secret)} if secret else {})
        action = "provider.create" if create else "provider.update"
        async with self._tenancy.changing(
            actor,
            action,
            ("provider", name),
            before=shown_spec(old.spec) if old else None,
            after=after,
        ) as unit:
            await unit.catalog.put(record)
            if secret is not None and self._sealer is not None:
                sealed = self._sealer.seal(secret, context=name)
                await unit.credentials.put(StoredCredential(name, sealed, mask(secret), now))
        await self.follow(force=True)

    @_one_at_a_time
    async def remove_provider(self, actor: Principal, name: str) -> None:
        _admin_only(actor)
        if name in self.base.providers:
            raise _from_file("provider", name)
        old = self.stored("provider", name)
        if old is None:
            raise not_found("provider", name)
        users = users_of_provider(self.current.models, name)
        if users:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"provider {name!r} is used by model(s) {', '.join(map(repr, users))}",
                status=409,
                code="conflict",
            )
        async with self._tenancy.changing(
            actor, "provider.delete", ("provider", name), before=shown_spec(old.spec)
        ) as unit:
            await unit.catalog.delete("provider", name)
            await unit.credentials.delete(name)
        await self.follow(force=True)

    # changing models ----------------------------------------------------------------------
    @_one_at_a_time
    async def put_model(
        self, actor: Principal, spec: Mapping[str, Any], *, create: bool, name: str | None = None
    ) -> ModelView:
        """Create (``create``) or replace (``name``: the model replaced) a stored model."""
        _admin_only(actor)
        if not isinstance(spec, Mapping):
            raise bad((), "a model is a JSON object")
        target = name if name is not None else spec.get("name")
        if not isinstance(target, str) or not target:
            model_from(spec)  # the file's wording for a missing or empty name
        check_name("model", target)
        assert isinstance(target, str)
        if self.source("model", target) == "config" or any(
            target in m.aliases for m in self.base.models
        ):
            raise _from_file("model", target)
        old = self.stored("model", target)
        if create and old is not None:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"a model named {target!r} already exists",
                status=409,
                code="conflict",
            )
        if not create and old is None:
            raise not_found("model", target)
        if not create and spec.get("name", target) != target:
            raise bad(("name",), "a model cannot be renamed; create a new one")
        model = model_from({**spec, "name": target})
        override = self.stored("price", target)
        served = model.model_copy(update={"prices": override_of(override)}) if override else model
        others = [m for m in self.current.models if m.name != target]
        candidate = check_references(
            [*others, served], self.current.providers, blame=len(others), base=self.current
        )
        self._prepare_or_400(candidate)
        now = self._clock.now()
        record = CatalogEntry(
            "model", target, model_spec(model), old.created_at if old else now, now
        )
        record.spec.pop("name", None)
        async with self._tenancy.changing(
            actor,
            "model.create" if create else "model.update",
            ("model", target),
            before=old.spec if old else None,
            after=record.spec,
        ) as unit:
            await unit.catalog.put(record)
        await self.follow(force=True)
        return self.model(actor, target)

    @_one_at_a_time
    async def remove_model(self, actor: Principal, name: str) -> None:
        _admin_only(actor)
        if self.source("model", name) == "config":
            raise _from_file("model", name)
        old = self.stored("model", name)
        if old is None:
            raise not_found("model", name)
        users = users_of_model(self.current.models, name)
        if users:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"model {name!r} is a fallback of {', '.join(map(repr, users))}",
                status=409,
                code="conflict",
            )
        others = [m for m in self.current.models if m.name != name]
        check_references(others, self.current.providers, blame=None, base=self.current)
        async with self._tenancy.changing(
            actor, "model.delete", ("model", name), before=old.spec
        ) as unit:
            await unit.catalog.delete("model", name)
            await unit.catalog.delete("price", name)
        await self.follow(force=True)

    @_one_at_a_time
    async def set_price(
        self, actor: Principal, name: str, prices: Mapping[str, Any] | None
    ) -> ModelView:
        """Override the prices of any model (file or stored); ``None`` removes the override."""
        _admin_only(actor)
        if not any(m.name == name for m in self.current.models):
            raise not_found("model", name)
        old = self.stored("price", name)
        if prices is None:
            if old is None:
                raise not_found("price override of", name)
            async with self._tenancy.changing(
                actor, "model.price_clear", ("model", name), before=old.spec
            ) as unit:
                await unit.catalog.delete("price", name)
        else:
            check_bounds(prices)
            try:
                valid = Prices.model_validate(prices)
            except ValidationError as exc:
                loc, message = validation_problems(exc, {})[0]
                raise bad(loc, message) from None
            now = self._clock.now()
            spec = valid.model_dump(mode="json")
            record = CatalogEntry("price", name, spec, old.created_at if old else now, now)
            async with self._tenancy.changing(
                actor,
                "model.price",
                ("model", name),
                before=old.spec if old else None,
                after=spec,
            ) as unit:
                await unit.catalog.put(record)
        await self.follow(force=True)
        return self.model(actor, name)

    # following ---------------------------------------------------------------------------
    async def follow(self, *, force: bool = False, strict: bool = False) -> bool:
        """Serve the stored catalogue when the counter moved (``force``: in any case);
        ``True`` when a new table was swapped in. A stored catalogue that no longer fits
        the config file is logged and the served table kept (``strict``, at start: a name in
        both sources is raised). One follow at a time: a slower one never swaps an older
        read over a newer one."""
        async with self._following:
            return await self._follow(force=force, strict=strict)

    async def _follow(self, *, force: bool, strict: bool) -> bool:
        await self._follow_file()
        version = await self._repo.version()
        if not force and version == self.version:
            return False
        stored = await self._repo.all()
        try:
            config = effective(self.base, stored)
        except (CatalogConflict, ValueError, GatewayError) as exc:
            if strict and isinstance(exc, CatalogConflict):
                raise
            log.error(
                "the stored models and providers cannot be served; keeping the table: %s", exc
            )
            self.version = version
            return False
        self._stored = stored
        if config != self.current:
            await self._apply(config)  # raises: the version is not taken, the next poll retries
            self.current = config
            self.version = version
            return True
        self.version = version
        return False

    async def _follow_file(self) -> None:
        if self._meta is None or self._load_file is None:
            return
        reloads = int(await self._meta.get(FILE_RELOADS) or 0)
        if self._reloads is not None and reloads != self._reloads:
            await self._reload_file()
        self._reloads = reloads

    async def reload_file(self) -> None:
        """Re-read the config file's providers and models (``sluice config reload``,
        SIGHUP); a file that does not validate, or clashes with the stored entries, is
        logged and the served table kept."""
        async with self._following:
            await self._reload_file()

    async def _reload_file(self) -> None:
        if self._load_file is None:
            return
        try:
            base = self._load_file()
            config = effective(base, self._stored)
        except Exception as exc:
            log.error("config reload failed; keeping the served models: %s", exc)
            return
        self.base = base
        if config != self.current:
            await self._apply(config)
            self.current = config
        log.info("config file re-read: %d models served", len(config.models))

    def export(self) -> dict[str, Any]:
        """The stored providers and models as config-file sections (``sluice config
        export``)."""
        return export_entries(self._stored)

    def _prepare_or_400(self, candidate: GatewayConfig) -> None:
        try:
            self._prepare(candidate)
        except GatewayError:
            raise
        except Exception as exc:
            raise GatewayError(
                ErrorKind.CALLER_BAD_REQUEST,
                f"the change cannot be served: {type(exc).__name__}: {exc}",
            ) from None
