"""The provider table: config ``type`` → adapter factory (imported lazily) and its options.

An OpenAI-compatible provider is a row here, not code. The core never names a provider; it
asks this table (through :func:`sluice.providers.build.build_provider`) to build what the
config lists. The table is data only, so the config can read its type names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthStyle = Literal["bearer", "api-key", "none"]


@dataclass(frozen=True, slots=True)
class OpenAIFamilyRow:
    """How to reach one member of the OpenAI-compatible family."""

    default_base_url: str | None
    """``None``: the config must give ``base_url``."""
    auth: AuthStyle = "bearer"
    """``bearer``: ``Authorization: Bearer``; ``api-key``: Azure's ``api-key`` header."""
    key_required: bool = True
    """Refuse to call without a credential (local servers need none)."""
    azure_paths: bool = False
    """Azure OpenAI: ``/openai/deployments/{model}/...?api-version=``."""
    default_api_version: str | None = None
    stream_usage: bool = True
    """The server honours ``stream_options.include_usage``."""
    responses_api: bool = False
    """The server has the Responses API (``/responses``): requests pass through."""
    media: frozenset[str] = frozenset()
    """The media endpoints it serves natively (``sluice.types.Endpoint`` values:
    ``audio.speech``, ``images.generations``, ``rerank``, ...), relayed unchanged."""


OPENAI_MEDIA = frozenset(
    {
        "audio.speech",
        "audio.transcriptions",
        "audio.translations",
        "images.generations",
        "images.edits",
        "moderations",
    }
)
"""What OpenAI itself serves besides chat (rerank is not an OpenAI endpoint)."""
ANY_MEDIA = OPENAI_MEDIA | {"rerank"}
"""A generic OpenAI-compatible server may serve any of them (LocalAI, vLLM, Infinity):
declared, and a server without one answers 404, which the client sees."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    factory: str
    """``module:attribute`` called as ``factory(name, config, options, secrets)``."""
    config: str
    """The config family: which model (``sluice.config.providers.CONFIG_MODELS``) checks a
    provider of this type, so a field only another family uses is an error."""
    options: OpenAIFamilyRow | None = None
    in_process: bool = False
    """Served inside the gateway process itself (no upstream host): counts as self-hosted."""
    batch_api: str | None = None
    """``module:attribute`` of the provider's own batch API client (a
    :class:`~sluice.providers.batch_api.BatchApi`), called as ``factory(name, config)``;
    ``None``: a deployment of this type cannot delegate batches (``batch.mode: delegate``)."""


_OPENAI = "sluice.providers.openai_compat:OpenAICompatibleProvider"
_OPENAI_BATCH = "sluice.providers.openai_batch:OpenAIBatchApi"
_ANTHROPIC_BATCH = "sluice.providers.anthropic.batch:AnthropicBatchApi"

PROVIDER_TYPES: dict[str, ProviderSpec] = {
    "mock": ProviderSpec("sluice.providers.mock.provider:MockProvider", "mock", in_process=True),
    "openai_compatible": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow(None, key_required=False, media=ANY_MEDIA),
        batch_api=_OPENAI_BATCH,
    ),
    "openai": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow("https://api.openai.com/v1", responses_api=True, media=OPENAI_MEDIA),
        batch_api=_OPENAI_BATCH,
    ),
    "azure": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow(
            None,
            auth="api-key",
            azure_paths=True,
            default_api_version="2024-10-21",
            media=OPENAI_MEDIA - {"moderations"},
        ),
    ),
    "ollama": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow("http://127.0.0.1:11434/v1", auth="none", key_required=False),
    ),
    "vllm": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow(
            "http://127.0.0.1:8000/v1",
            key_required=False,
            media=frozenset({"audio.transcriptions", "audio.translations", "rerank"}),
        ),
    ),
    "lmstudio": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow("http://127.0.0.1:1234/v1", auth="none", key_required=False),
    ),
    "groq": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow(
            "https://api.groq.com/openai/v1",
            media=frozenset({"audio.speech", "audio.transcriptions", "audio.translations"}),
        ),
    ),
    "mistral": ProviderSpec(_OPENAI, "openai", OpenAIFamilyRow("https://api.mistral.ai/v1")),
    "deepseek": ProviderSpec(_OPENAI, "openai", OpenAIFamilyRow("https://api.deepseek.com/v1")),
    "xai": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow("https://api.x.ai/v1", media=frozenset({"images.generations"})),
    ),
    "together": ProviderSpec(
        _OPENAI,
        "openai",
        OpenAIFamilyRow(
            "https://api.together.xyz/v1", media=frozenset({"images.generations", "rerank"})
        ),
    ),
    "fireworks": ProviderSpec(
        _OPENAI, "openai", OpenAIFamilyRow("https://api.fireworks.ai/inference/v1")
    ),
    "openrouter": ProviderSpec(_OPENAI, "openai", OpenAIFamilyRow("https://openrouter.ai/api/v1")),
    # Native wire formats: one adapter each; default base URLs live in the adapter modules
    # (Vertex AI and Bedrock derive theirs from the configured location or region).
    "anthropic": ProviderSpec(
        "sluice.providers.anthropic.provider:AnthropicProvider",
        "anthropic",
        batch_api=_ANTHROPIC_BATCH,
    ),
    "gemini": ProviderSpec("sluice.providers.gemini.provider:GeminiProvider", "gemini"),
    "vertex": ProviderSpec("sluice.providers.vertex.provider:VertexProvider", "vertex"),
    "bedrock": ProviderSpec("sluice.providers.bedrock.provider:BedrockProvider", "bedrock"),
    "cohere": ProviderSpec("sluice.providers.cohere.provider:CohereProvider", "cohere"),
}
