"""Frozen pydantic models of the gateway config file. Unknown keys are errors."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sluice.config.alerts import AlertsConfig
from sluice.config.auth import AuthConfig
from sluice.config.batches import BatchesConfig
from sluice.config.body_logging import BodyLoggingConfig
from sluice.config.cache import CacheConfig, ModelCacheOverride
from sluice.config.catalog import CAPABILITIES
from sluice.config.documents import DocumentsConfig
from sluice.config.files import FilesConfig
from sluice.config.mcp import McpConfig
from sluice.config.observability import ObservabilityConfig
from sluice.config.providers import AnyProviderConfig
from sluice.config.references import format_loc, reference_problems

REFERENCES_CHECKED = "references_checked"
"""Validation context key: the document's cross-references were checked already."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Prices(_Frozen):
    """Per-model price override in USD per million tokens."""

    input_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    output_usd_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    micros_per_audio_second: Annotated[int, Field(ge=0)] | None = None
    """Transcription and translation: micro-dollars per second of uploaded audio (Whisper's
    $0.006/minute is 100). Unset: ``genai-prices``' rate when it knows the model, else 0."""
    micros_per_character: Annotated[int, Field(ge=0)] | None = None
    """Speech: micro-dollars per character of ``input`` (``tts-1``'s $15/M characters is
    15). Unset: ``genai-prices``' rate when it knows the model, else 0."""
    micros_per_image: Annotated[int, Field(ge=0)] | None = None
    """Image generation and edits: micro-dollars per image of a size not in
    ``micros_per_image_by_size`` (unset: 0, ``genai-prices`` has no image prices)."""
    micros_per_image_by_size: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    """Micro-dollars per image by ``size`` (``1024x1024``), or by ``size/quality``
    (``1024x1024/hd``), which wins when both match."""
    micros_per_search: Annotated[int, Field(ge=0)] | None = None
    """Rerank: micro-dollars per search unit (one query over up to 100 documents)."""


class DeploymentBatch(_Frozen):
    """How batches (``/v1/batches``) whose lines go to this deployment run
    (docs/batches.md#delegating-to-a-providers-batch-api)."""

    mode: Literal["local", "delegate"] = "local"
    """``local``: Sluice runs every line through its pipeline; ``delegate``: a batch whose
    lines all name this deployment's model is handed to the provider's own batch API (OpenAI
    Batch, Anthropic Message Batches), billed at the discounted price. Only provider types
    with a batch API may delegate."""
    discount: Annotated[float, Field(ge=0, lt=1)] = 0.5
    """Share taken off the price of a delegated line (0.5: half price, as OpenAI and
    Anthropic bill batches)."""
    poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """How often the process holding a delegated batch asks the provider how it is doing."""


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
    batch: DeploymentBatch | None = None
    """Batches through this deployment: run by Sluice (default) or delegated to the
    provider's batch API."""
    file_types: (
        tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$")], ...] | None
    ) = None
    """Media types of documents in chat this deployment's model takes as files (e.g.
    ``[application/pdf]``); other documents reach it as extracted text. Omitted: what the
    provider's adapter declares (docs/documents.md); ``[]``: always text."""

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
    documents: DocumentsConfig = Field(default_factory=DocumentsConfig)
    """Documents attached to chat messages: size caps and the extraction's bounds
    (docs/documents.md)."""

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> GatewayConfig:
        if (info.context or {}).get(REFERENCES_CHECKED):
            return self  # the loader checked the document and reported every problem
        doc = self.model_dump(include={"providers", "models", "routing", "cache"})
        problems = reference_problems(doc)
        if problems:
            loc, message = problems[0]
            raise ValueError(f"{format_loc(loc)}: {message}")
        return self
