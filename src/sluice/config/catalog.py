"""The model catalogue's shared rules: the known capabilities, the references between models
and providers, and how the config file's entries and the database's make one table.

The config file and the admin API validate through the same frozen models
(:class:`~sluice.config.model.ModelConfig`, :data:`~sluice.config.providers.AnyProviderConfig`)
and the same cross-entry checks (:func:`reference_problems`), so every error the file can
have, the API reports too (with the field's path inside the entry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice.config.references import format_loc
from sluice.config.references import reference_problems as document_problems

# ``ModelConfig`` items and provider configs; typed loosely here because ``config.model``
# imports this module (its validator runs these rules).
ModelConfig = Any
ProviderConfig = Any

CAPABILITIES = frozenset(
    {
        "chat",
        "completions",
        "tools",
        "vision",
        "embeddings",
        "audio",
        "images",
        "rerank",
        "documents",
        "responses",
        "messages",
    }
)
"""The capability names a model may list (``models[].capabilities``); a generic set of
strings so new ones are added here only."""

DEFAULT_CAPABILITIES = ("chat",)
"""What a model that lists no capabilities is shown with."""

Loc = tuple[int | str, ...]
__all__ = ["format_loc"]
_FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


def reference_problems(
    models: Sequence[ModelConfig], providers: Mapping[str, ProviderConfig]
) -> list[tuple[Loc, str]]:
    """What is wrong between entries (a name or alias used twice, a fallback naming no
    model, a deployment naming no provider or delegating to one without a batch API), by the
    config file's own check (:func:`sluice.config.references.reference_problems`): each
    ``(location, message)`` under ``models``, worded and located as the file's errors."""
    doc = {
        "providers": {name: p.model_dump() for name, p in providers.items()},
        "models": [m.model_dump() for m in models],
    }
    return document_problems(doc)


def users_of_provider(models: Sequence[ModelConfig], provider: str) -> list[str]:
    """The models with a deployment on ``provider`` (a provider they use cannot go)."""
    return [m.name for m in models if any(d.provider == provider for d in m.deployments)]


def users_of_model(models: Sequence[ModelConfig], name: str) -> list[str]:
    """The models that name ``name`` (or one of its aliases) as a fallback."""
    target = next((m for m in models if m.name == name), None)
    names = {name, *(target.aliases if target is not None else ())}
    return [
        m.name
        for m in models
        if m.name != name and any(n in names for f in _FALLBACK_FIELDS for n in getattr(m, f))
    ]


def yaml_entries(
    providers: Mapping[str, Mapping[str, Any]], models: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The ``providers`` and ``models`` sections of a config file (``sluice config export``)."""
    out: dict[str, Any] = {}
    if providers:
        out["providers"] = {name: dict(spec) for name, spec in providers.items()}
    if models:
        out["models"] = [dict(m) for m in models]
    return out
