"""The model catalogue as people see it: one model's source, prices (from one place),
capabilities, context window and live status; and the effective table built from the
config file's entries and the stored ones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sluice.budgets.pricing import Pricer
from sluice.config import GatewayConfig
from sluice.config.catalog import DEFAULT_CAPABILITIES
from sluice.config.model import ModelConfig, Prices
from sluice.control.catalog_checks import model_from, provider_from, revalidated
from sluice.errors import ErrorKind, GatewayError
from sluice.storage.catalog import CatalogEntry

Source = Literal["config", "stored"]
PriceSource = Literal["override", "config", "genai-prices", "unpriced"]


@dataclass(frozen=True, slots=True)
class PriceView:
    """USD per million tokens of the model's first deployment, and where they come from:
    ``override`` (set through the admin API), ``config`` (the model's ``prices``),
    ``genai-prices`` (the bundled table) or ``unpriced`` (counted as 0)."""

    input_usd_per_mtok: float | None
    output_usd_per_mtok: float | None
    source: PriceSource


@dataclass(frozen=True, slots=True)
class ModelView:
    model: ModelConfig
    """As served (a price override folded into ``prices``)."""
    source: Source
    price: PriceView
    capabilities: tuple[str, ...]
    context_window_tokens: int | None
    status: str
    """``up`` (every deployment's breaker closed), ``degraded`` (some open) or ``down``."""
    created_at: float | None = None
    updated_at: float | None = None


class CatalogConflict(GatewayError):
    """A name is defined both in the config file and in the database."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorKind.CALLER_BAD_REQUEST, message, status=409, code="conflict")


def override_of(entry: CatalogEntry) -> Prices:
    return Prices.model_validate(entry.spec)


def effective(base: GatewayConfig, stored: Iterable[CatalogEntry]) -> GatewayConfig:
    """The config file's entries with the stored ones added and price overrides folded in.
    Raises :class:`CatalogConflict` when a stored name is also the file's (never an
    override), and ``ValueError`` when the whole no longer validates."""
    providers: dict[str, Any] = dict(base.providers)
    models = list(base.models)
    prices: dict[str, Prices] = {}
    file_names = {n for m in base.models for n in (m.name, *m.aliases)}
    for entry in stored:
        if entry.kind == "provider":
            if entry.name in base.providers:
                raise CatalogConflict(
                    f"provider {entry.name!r} is defined in the config file and the database"
                )
            providers[entry.name] = provider_from(entry.name, entry.spec)
        elif entry.kind == "model":
            model = model_from({**entry.spec, "name": entry.name})
            clash = [n for n in (model.name, *model.aliases) if n in file_names]
            if clash:
                raise CatalogConflict(
                    f"model name {clash[0]!r} is defined in the config file and the database"
                )
            models.append(model)
        else:
            prices[entry.name] = override_of(entry)
    models = [
        m.model_copy(update={"prices": prices[m.name]}) if m.name in prices else m for m in models
    ]
    candidate = base.model_copy(update={"providers": providers, "models": tuple(models)})
    return revalidated(candidate)


def price_of(
    model: ModelConfig,
    *,
    config: GatewayConfig,
    pricer: Pricer,
    overridden: bool,
) -> PriceView:
    """The prices requests of ``model`` are charged at (its first deployment's)."""
    if model.prices is not None:
        p = model.prices
        source: PriceSource = "override" if overridden else "config"
        return PriceView(p.input_usd_per_mtok, p.output_usd_per_mtok, source)
    dep = model.deployments[0]
    provider = config.providers.get(dep.provider)
    kind = provider.type if provider is not None else dep.provider
    cost_in = pricer.estimate(prompt_tokens=1_000_000, max_tokens=0, provider=kind, model=dep.model)
    if not cost_in.priced:
        return PriceView(None, None, "unpriced")
    cost_out = pricer.estimate(
        prompt_tokens=0, max_tokens=1_000_000, provider=kind, model=dep.model
    )
    return PriceView(cost_in.micros / 1e6, cost_out.micros / 1e6, "genai-prices")


def capabilities_of(model: ModelConfig) -> tuple[str, ...]:
    return model.capabilities if model.capabilities is not None else DEFAULT_CAPABILITIES


def status_of(states: list[str]) -> str:
    if not states or all(s == "closed" for s in states):
        return "up"
    return "down" if all(s == "open" for s in states) else "degraded"


def catalogue_json(view: ModelView) -> dict[str, Any]:
    """The extra fields ``/v1/models`` and the catalogue show for a model."""
    price = view.price
    return {
        "aliases": list(view.model.aliases),
        "capabilities": list(view.capabilities),
        "context_window": view.context_window_tokens,
        "pricing": {
            "input_usd_per_mtok": price.input_usd_per_mtok,
            "output_usd_per_mtok": price.output_usd_per_mtok,
            "source": price.source,
        },
        "status": view.status,
        "source": view.source,
    }


def stored_prices(stored: Iterable[CatalogEntry]) -> Mapping[str, Prices]:
    return {e.name: override_of(e) for e in stored if e.kind == "price"}


def unpriced(config: GatewayConfig, pricer: Pricer) -> list[tuple[str, str, str]]:
    """``(model, provider type, upstream model)`` of every deployment charged at 0: its model
    sets no ``prices`` and ``genai-prices`` does not know it (``sluice prices check``)."""
    out = []
    for model in config.models:
        if model.prices is not None:
            continue
        for dep in model.deployments:
            kind = config.providers[dep.provider].type
            cost = pricer.estimate(
                prompt_tokens=1000, max_tokens=1000, provider=kind, model=dep.model
            )
            if not cost.priced:
                out.append((model.name, kind, dep.model))
    return out


def export_entries(stored: list[CatalogEntry]) -> dict[str, Any]:
    """Stored providers and models as the ``providers`` and ``models`` sections of a config
    file; a stored model's price override is folded into its ``prices``. (Price overrides
    of the file's own models are not exported: set ``prices`` in the file.)"""
    overrides = {e.name: e.spec for e in stored if e.kind == "price"}
    providers = {e.name: e.spec for e in stored if e.kind == "provider"}
    models = [
        {"name": e.name, **e.spec} | ({"prices": overrides[e.name]} if e.name in overrides else {})
        for e in stored
        if e.kind == "model"
    ]
    out: dict[str, Any] = {}
    if providers:
        out["providers"] = providers
    if models:
        out["models"] = models
    return out


def file_spec(cfg: Any) -> dict[str, Any]:
    """A config-file provider as shown: no credential, references named."""
    spec: dict[str, Any] = cfg.model_dump(mode="json", exclude_defaults=True)
    spec["type"] = cfg.type
    for field, value in list(spec.items()):
        ref = getattr(cfg, field, None)
        if ref is not None and hasattr(ref, "env_name"):
            spec[field] = f"env:{ref.env_name}" if ref.env_name else "***"
        elif isinstance(value, str) and value.startswith("SecretRef("):
            spec[field] = "***"
    return spec
