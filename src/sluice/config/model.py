"""Frozen pydantic models of the gateway config file. Unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.config.alerts import AlertsConfig
from sluice.config.auth import AuthConfig
from sluice.config.batches import BatchesConfig
from sluice.config.body_logging import BodyLoggingConfig
from sluice.config.cache import CacheConfig, ModelCacheOverride
from sluice.config.catalog import CAPABILITIES
from sluice.config.files import FilesConfig
from sluice.config.mcp import McpConfig
from sluice.config.observability import ObservabilityConfig
from sluice.config.providers import AnyProviderConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prices(_Frozen):
    """Per-model price override in USD per million tokens."""

    input_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    output_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0


class DeploymentConfig(_Frozen):
    """One way to serve a public model: a provider and the model name it knows."""

    provider: str
    model: Annotated[str, Field(min_length=1)]
    """The upstream model name sent to the provider."""
    weight: Annotated[float, Field(gt=0)] = 1.0
    """Share of traffic among deployments of the same priority."""
    priority: int = 0
    """Lower is tried first."""
    id: str | None = None
    """Stable name for health and usage rows; ``provider/model`` when omitted."""
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    """Extra attempts on this deployment after a retriable failure; ``routing.retries``
    when omitted."""

    @property
    def key(self) -> str:
        return self.id or f"{self.provider}/{self.model}"


class ModelConfig(_Frozen):
    """A public model name clients ask for, served by one or more deployments."""

    name: Annotated[str, Field(min_length=1)]
    aliases: tuple[str, ...] = ()
    deployments: Annotated[tuple[DeploymentConfig, ...], Field(min_length=1)]
    prices: Prices | None = None
    description: str | None = None
    strategy: Strategy = "weighted"
    """How to order deployments of the same priority: ``priority`` (as listed),
    ``weighted`` (random by weight), ``least_busy``, ``lowest_latency``, ``lowest_cost``."""
    fallbacks: tuple[str, ...] = ()
    """Models tried, in order, when every deployment of this one failed retriably."""
    context_window_fallbacks: tuple[str, ...] = ()
    """Models tried when a deployment says the request is too long for its context."""
    content_policy_fallbacks: tuple[str, ...] = ()
    """Models tried when a deployment refuses the request under its content policy."""
    max_output_tokens: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    """Largest ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens`` a request
    may ask for (400 naming the field beyond). Omitted: the largest context window the
    ``genai-prices`` table knows for the model's deployments, else 1,048,576."""
    max_n: Annotated[int, Field(ge=1, le=1024)] = 128
    """Largest ``n`` (choices) and ``best_of`` a request may ask for (400 beyond). Budgets
    and token limits reserve the output of every choice."""
    cache: ModelCacheOverride | None = None
    """Response-cache settings of this model (docs/caching.md); omitted ones follow the
    ``cache`` section."""
    capabilities: tuple[str, ...] | None = None
    """What the model can do, shown in the model catalogue and ``/v1/models``: names from
    :data:`~sluice.config.catalog.CAPABILITIES` (``chat``, ``tools``, ``vision``,
    ``embeddings``, ``audio``, ``images``, ...). Omitted: ``chat``."""
    context_window_tokens: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    """The context window shown in the catalogue. Omitted: the largest the ``genai-prices``
    table knows for the model's deployments."""

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        for name in value:
            if name not in CAPABILITIES:
                known = ", ".join(sorted(CAPABILITIES))
                raise ValueError(f"unknown capability {name!r}; known: {known}")
        if len(set(value)) != len(value):
            raise ValueError("a capability is listed twice")
        return value


Strategy = Literal["priority", "weighted", "least_busy", "lowest_latency", "lowest_cost"]


class BreakerSettings(_Frozen):
    """Per-deployment circuit breaker."""

    failures: Annotated[int, Field(ge=1)] = 5
    """Consecutive failures that open the breaker."""
    error_rate: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Failure share over ``window_s`` that opens it (once ``min_requests`` were seen)."""
    window_s: Annotated[float, Field(gt=0)] = 60.0
    min_requests: Annotated[int, Field(ge=1)] = 20
    cooldown_s: Annotated[float, Field(gt=0)] = 30.0
    """How long an open breaker waits before letting one probe request through."""


class Wildcard(_Frozen):
    """Model names starting with ``prefix`` go to ``provider`` with the rest as the upstream
    model name (``openai/gpt-4o`` → provider ``openai``, model ``gpt-4o``)."""

    prefix: Annotated[str, Field(min_length=1)]
    provider: str


class RoutingConfig(_Frozen):
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    """Extra attempts per deployment after a retriable failure (connect errors, timeouts,
    resets before the first byte, 408/409/429/500/502/503/504/529)."""
    backoff_base_s: Annotated[float, Field(ge=0)] = 0.25
    """First retry waits about this long (jittered, doubling each time)."""
    backoff_max_s: Annotated[float, Field(ge=0)] = 4.0
    retry_after_cap_s: Annotated[float, Field(ge=0)] = 10.0
    """An upstream ``Retry-After`` is honoured up to this; longer means try elsewhere."""
    total_timeout_s: Annotated[float, Field(gt=0)] = 600.0
    """Deadline of a whole request: every attempt, retry, back-off and fallback."""
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    wildcards: tuple[Wildcard, ...] = ()
    policies: tuple[str, ...] = ()
    """Cedar policy files (or directories of ``*.cedar``) for policy routing."""


class GatewayConfig(_Frozen):
    """The whole config file."""

    providers: dict[str, AnyProviderConfig] = Field(default_factory=dict)
    """Upstream accounts by name; each checked by the model of its ``type``'s family."""
    models: tuple[ModelConfig, ...] = ()
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    body_logging: BodyLoggingConfig = Field(default_factory=BodyLoggingConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    """Console sign-in: local accounts and OpenID Connect providers (docs/sso.md)."""
    mcp: McpConfig = Field(default_factory=McpConfig)
    """Upstream MCP servers and the MCP gateway's transport settings (docs/mcp.md)."""
    batches: BatchesConfig = Field(default_factory=BatchesConfig)
    """The Batches API: limits and the worker's pacing (docs/batches.md)."""
    cache: CacheConfig = Field(default_factory=CacheConfig)
    """The response cache (docs/caching.md): off unless enabled here, for a model or a team."""
    files: FilesConfig = Field(default_factory=FilesConfig)
    """Where ``/v1/files`` keeps file bytes, and their size, quota and expiry
    (docs/files-and-batches.md)."""

    @model_validator(mode="after")
    def _references(self) -> GatewayConfig:
        seen: dict[str, str] = {}
        for i, model in enumerate(self.models):
            for name in (model.name, *model.aliases):
                if name in seen:
                    raise ValueError(
                        f"models[{i}]: name {name!r} is already used by model {seen[name]!r}"
                    )
                seen[name] = model.name
            for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
                for name in getattr(model, field):
                    if name not in {m.name for m in self.models} | {
                        a for m in self.models for a in m.aliases
                    }:
                        raise ValueError(f"models[{i}].{field}: unknown model {name!r}")
            for j, dep in enumerate(model.deployments):
                if dep.provider not in self.providers:
                    raise ValueError(
                        f"models[{i}].deployments[{j}].provider: unknown provider "
                        f"{dep.provider!r}; define it under providers"
                    )
        self._cache_references()
        for k, wildcard in enumerate(self.routing.wildcards):
            if wildcard.provider not in self.providers:
                raise ValueError(
                    f"routing.wildcards[{k}].provider: unknown provider {wildcard.provider!r}"
                )
        return self

    def _cache_references(self) -> None:
        cache = self.cache
        overrides = tuple(m.cache for m in self.models)
        names = {n for m in self.models for n in (m.name, *m.aliases)}
        if cache.embedding_model is not None and cache.embedding_model not in names:
            raise ValueError(f"cache.embedding_model: unknown model {cache.embedding_model!r}")
        if cache.any_semantic(overrides) and cache.embedding_model is None:
            raise ValueError("cache.embedding_model: the semantic mode needs an embedding model")
