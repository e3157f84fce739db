"""Cross-references inside the config: names a section uses must be defined elsewhere.

Checked on the plain document (the parsed YAML), so ``check-config`` reports them together
with schema errors, each at its own path; entries of the wrong shape are skipped here (the
schema reports them). ``GatewayConfig`` runs the same checks on itself when built from
Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.providers.registry import PROVIDER_TYPES

Loc = tuple[int | str, ...]
Problem = tuple[Loc, str]

FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


def _items(value: Any) -> list[tuple[int, Mapping[str, Any]]]:
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _strings(value: Any) -> list[tuple[int, str]]:
    if not isinstance(value, list | tuple):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]


def reference_problems(doc: Mapping[str, Any]) -> list[Problem]:
    """Every dangling or duplicated name in ``doc``, in document order."""
    providers = doc.get("providers")
    provider_names = set(providers) if isinstance(providers, Mapping) else set()
    models = _items(doc.get("models"))
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for i, model in models:
        name = model.get("name")
        names = [((i, "name"), name)] + [
            ((i, "aliases", k), alias) for k, alias in _strings(model.get("aliases"))
        ]
        for (_, *where), value in names:
            if not isinstance(value, str):
                continue
            if value in owner:
                problems.append(
                    (("models", i, *where), f"{value!r} is already used by model {owner[value]!r}")
                )
            else:
                owner[value] = str(name)
    for i, model in models:
        for field in FALLBACK_FIELDS:
            for k, target in _strings(model.get(field)):
                if target not in owner:
                    problems.append((("models", i, field, k), f"unknown model {target!r}"))
        for j, dep in _items(model.get("deployments")):
            provider = dep.get("provider")
            if isinstance(provider, str) and provider not in provider_names:
                problems.append(
                    (
                        ("models", i, "deployments", j, "provider"),
                        f"unknown provider {provider!r}; define it under providers",
                    )
                )
            elif isinstance(provider, str) and isinstance(providers, Mapping):
                problems.extend(_batch_problems(dep, providers[provider], ("models", i, j)))
    routing = doc.get("routing")
    if isinstance(routing, Mapping):
        for k, wildcard in _items(routing.get("wildcards")):
            provider = wildcard.get("provider")
            if isinstance(provider, str) and provider not in provider_names:
                problems.append(
                    (("routing", "wildcards", k, "provider"), f"unknown provider {provider!r}")
                )
    problems.extend(_cache_problems(doc, models, set(owner)))
    return problems


def _batch_problems(dep: Mapping[str, Any], provider: Any, where: Loc) -> list[Problem]:
    """A deployment may delegate batches only to a provider type that has a batch API."""
    batch = dep.get("batch")
    if not isinstance(batch, Mapping) or batch.get("mode") != "delegate":
        return []
    kind = provider.get("type") if isinstance(provider, Mapping) else None
    spec = PROVIDER_TYPES.get(kind) if isinstance(kind, str) else None
    if spec is not None and spec.batch_api is not None:
        return []
    _, i, j = where
    return [
        (
            ("models", i, "deployments", j, "batch", "mode"),
            f"a provider of type {kind!r} has no batch API to delegate to",
        )
    ]


def _cache_problems(
    doc: Mapping[str, Any], models: list[tuple[int, Mapping[str, Any]]], names: set[str]
) -> list[Problem]:
    cache = doc.get("cache")
    cache = cache if isinstance(cache, Mapping) else {}
    embedding = cache.get("embedding_model")
    if isinstance(embedding, str) and embedding not in names:
        return [(("cache", "embedding_model"), f"unknown model {embedding!r}")]
    teams = cache.get("teams")
    sections = [cache, *(m.get("cache") for _, m in models)]
    if isinstance(teams, Mapping):
        sections.extend(teams.values())
    semantic = any(isinstance(s, Mapping) and s.get("mode") == "semantic" for s in sections)
    if semantic and embedding is None:
        return [(("cache", "embedding_model"), "the semantic mode needs an embedding model")]
    return []


def format_loc(loc: Loc) -> str:
    """``models[0].deployments[1].provider`` for ``("models", 0, "deployments", 1, ...)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
