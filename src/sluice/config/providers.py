"""Provider config: one frozen model per provider family, chosen by ``type``.

The provider registry (:data:`~sluice.providers.registry.PROVIDER_TYPES`) names each type's
family in its ``config`` column; every OpenAI-compatible row shares one model. A field
another family uses (``region`` on an ``openai`` provider) is an unknown key, like a typo.
:func:`validate_provider` checks one provider's mapping on its own (the config file checks
them all through :data:`AnyProviderConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from sluice.config.secrets import SecretRef
from sluice.providers.registry import PROVIDER_TYPES


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Frozen):
    """Deadlines for one upstream call, in seconds."""

    connect_s: Annotated[float, Field(gt=0)] = 10.0
    """Time to open a TCP (and TLS) connection."""
    ttfb_s: Annotated[float, Field(gt=0)] = 120.0
    """Time from sending the request to the response headers."""
    idle_s: Annotated[float, Field(gt=0)] = 120.0
    """Longest silence between two reads of the response body (stream chunks)."""
    total_s: Annotated[float, Field(gt=0)] = 600.0
    """Whole request, including reading a streamed body."""


def _known_types() -> str:
    return ", ".join(sorted(PROVIDER_TYPES))


class ProviderConfig(_Frozen):
    """What every provider type accepts: its type (a row of the provider registry), where it
    is, extra headers and deadlines. Each family adds its own credentials and options."""

    family: ClassVar[str | None] = None
    """The registry's ``config`` column this model serves; ``None``: any type."""

    type: str
    """Registry name: ``mock``, ``openai``, ``azure``, ``anthropic``, ``gemini``, ``vertex``,
    ``bedrock``, ``cohere``, ``ollama``, ``openai_compatible``, ..."""
    base_url: str | None = None
    """API root (``.../v1`` for the OpenAI family, the scheme and host for native providers);
    the type's default when omitted."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent upstream on every call."""
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        spec = PROVIDER_TYPES.get(value)
        if spec is None:
            raise ValueError(f"unknown provider type {value!r}; known types: {_known_types()}")
        if cls.family is not None and spec.config != cls.family:
            raise ValueError(f"provider type {value!r} is not of the {cls.family} family")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def api_key_ref(self) -> SecretRef | None:
        """The configured API key reference, for types that take one."""
        return None

    def secret_refs(self) -> tuple[SecretRef, ...]:
        """The credential references whose values are masked in logs."""
        return ()

    def credential_refs(self) -> tuple[SecretRef, ...]:
        """The references besides ``api_key`` that the core resolves when it builds the
        adapter (``api_key`` is resolved per call, see ``sluice.credentials.resolve``)."""
        return ()


class _KeyedConfig(ProviderConfig):
    api_key: SecretRef | None = None
    """``env:NAME`` or a literal; sent in the header style the provider type uses."""

    @property
    def api_key_ref(self) -> SecretRef | None:
        return self.api_key

    def secret_refs(self) -> tuple[SecretRef, ...]:
        return (self.api_key,) if self.api_key is not None else ()


class MockConfig(ProviderConfig):
    """The built-in scripted provider: nothing to reach, no credential."""

    family = "mock"


class OpenAIConfig(_KeyedConfig):
    """Every member of the OpenAI-compatible family (``openai``, ``azure``, ``ollama``, ...)."""

    family = "openai"
    api_version: str | None = None
    """Azure OpenAI ``api-version`` query parameter (the type's default when omitted)."""


class AnthropicConfig(_KeyedConfig):
    family = "anthropic"
    api_version: str | None = None
    """The ``anthropic-version`` header (default ``2023-06-01``)."""


class GeminiConfig(_KeyedConfig):
    family = "gemini"
    api_version: str | None = None
    """The Gemini API version in the path (default ``v1beta``)."""


class CohereConfig(_KeyedConfig):
    family = "cohere"


class VertexConfig(ProviderConfig):
    """Vertex AI: OAuth tokens from a service account or Application Default Credentials."""

    family = "vertex"
    api_version: str | None = None
    """The Vertex AI API version in the path (default ``v1``)."""
    project: str | None = None
    """Google Cloud project; defaults to the service account's ``project_id``."""
    location: str | None = None
    """Vertex AI location, e.g. ``us-central1``, ``us-east5`` or ``global``."""
    credentials: SecretRef | None = None
    """Service-account key: a JSON file path, or ``env:NAME`` naming a variable that holds
    the path or the JSON itself. Omitted: Application Default Credentials."""

    def credential_refs(self) -> tuple[SecretRef, ...]:
        return (self.credentials,) if self.credentials is not None else ()


class BedrockConfig(_KeyedConfig):
    """Amazon Bedrock: SigV4 with AWS credentials, or a Bedrock API key (``api_key``)."""

    family = "bedrock"
    region: str | None = None
    """AWS region; else the AWS environment/config (``AWS_REGION``, profile)."""
    access_key_id: SecretRef | None = None
    """AWS access key id; with ``secret_access_key``. When both are omitted, the standard
    AWS credential chain is used (environment, profile, SSO, instance role)."""
    secret_access_key: SecretRef | None = None
    session_token: SecretRef | None = None
    """AWS session token for temporary credentials."""

    @model_validator(mode="after")
    def _aws_key_pair(self) -> BedrockConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be given together")
        return self

    def secret_refs(self) -> tuple[SecretRef, ...]:
        return tuple(r for r in (self.api_key, *self.credential_refs()) if r is not None)

    def credential_refs(self) -> tuple[SecretRef, ...]:
        refs = (self.access_key_id, self.secret_access_key, self.session_token)
        return tuple(r for r in refs if r is not None)


class _UnknownType(ProviderConfig):
    """What a mapping with an unknown (or no) ``type`` is checked against: only the type is
    reported (its other keys cannot be judged without one)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


CONFIG_MODELS: dict[str, type[ProviderConfig]] = {
    m.family: m
    for m in (
        MockConfig,
        OpenAIConfig,
        AnthropicConfig,
        GeminiConfig,
        CohereConfig,
        VertexConfig,
        BedrockConfig,
    )
    if m.family is not None
}
"""The registry's ``config`` column → the model of that family."""
_UNKNOWN = "unknown type"


def _family(value: Any) -> str:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    spec = PROVIDER_TYPES.get(kind) if isinstance(kind, str) else None
    return spec.config if spec is not None else _UNKNOWN


AnyProviderConfig = Annotated[
    Annotated[MockConfig, Tag("mock")]
    | Annotated[OpenAIConfig, Tag("openai")]
    | Annotated[AnthropicConfig, Tag("anthropic")]
    | Annotated[GeminiConfig, Tag("gemini")]
    | Annotated[CohereConfig, Tag("cohere")]
    | Annotated[VertexConfig, Tag("vertex")]
    | Annotated[BedrockConfig, Tag("bedrock")]
    | Annotated[_UnknownType, Tag(_UNKNOWN)],
    Discriminator(_family),
]
"""One provider's config, validated by the model of its type's family."""

UNION_TAGS = frozenset((*CONFIG_MODELS, _UNKNOWN))
"""The tags validation errors carry in their location, after the provider's name."""


@cache
def _adapter() -> TypeAdapter[ProviderConfig]:
    return TypeAdapter(AnyProviderConfig)


def validate_provider(data: Mapping[str, Any]) -> ProviderConfig:
    """One provider's mapping (as in the config file) checked by the model of its type;
    raises :class:`pydantic.ValidationError` (an unknown key names the field)."""
    return _adapter().validate_python(data)


def accepted_by(field: str) -> list[str]:
    """The families whose model has ``field`` (to say where a foreign key belongs)."""
    return [family for family, model in CONFIG_MODELS.items() if field in model.model_fields]
