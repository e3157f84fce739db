"""The model table: public names and aliases resolved to deployments, built once from config."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sluice.config.model import GatewayConfig, Timeouts
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Deployment:
    key: str
    provider_name: str
    provider: Provider
    upstream_model: str
    weight: float
    priority: int
    timeouts: Timeouts
    response_headers: tuple[tuple[bytes, bytes], ...] = ()
    """``x-sluice-provider`` / ``x-sluice-deployment``, encoded once."""


def _header(value: str) -> bytes:
    return value.encode("latin-1", "replace")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    aliases: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    """Sorted by priority (lowest first)."""
    created: int


class ModelTable:
    """Resolves what a client asked for. Picking is weighted-random within the best
    priority; the random source is injected so tests are deterministic."""

    def __init__(self, entries: list[ModelEntry], *, rng: random.Random | None = None) -> None:
        self._entries = entries
        self._by_name: dict[str, ModelEntry] = {}
        for entry in entries:
            for name in (entry.name, *entry.aliases):
                self._by_name[name] = entry
        self._rng = rng or random.Random()

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        *,
        created: int,
        rng: random.Random | None = None,
    ) -> ModelTable:
        entries = []
        for model in config.models:
            deps = tuple(
                sorted(
                    (
                        Deployment(
                            key=d.key,
                            provider_name=d.provider,
                            provider=providers[d.provider],
                            upstream_model=d.model,
                            weight=d.weight,
                            priority=d.priority,
                            timeouts=config.providers[d.provider].timeouts,
                            response_headers=(
                                (b"x-sluice-provider", _header(d.provider)),
                                (b"x-sluice-deployment", _header(d.key)),
                            ),
                        )
                        for d in model.deployments
                    ),
                    key=lambda d: d.priority,
                )
            )
            entries.append(ModelEntry(model.name, model.aliases, deps, created))
        return cls(entries, rng=rng)

    @property
    def entries(self) -> list[ModelEntry]:
        return self._entries

    def get(self, name: str) -> ModelEntry | None:
        return self._by_name.get(name)

    def resolve(self, name: str, *, allowed: Callable[[str], bool] | None = None) -> ModelEntry:
        """The entry for a name or alias; an unknown or forbidden model is the same 404."""
        entry = self._by_name.get(name)
        if entry is None or (allowed is not None and not allowed(entry.name)):
            raise GatewayError(
                ErrorKind.CALLER_NOT_FOUND,
                f"the model {name!r} does not exist or you do not have access to it",
                param="model",
                code="model_not_found",
            )
        return entry

    def names(self) -> list[str]:
        return list(self._by_name)

    def canonical(self, name: str) -> str | None:
        """The public model a name or alias stands for."""
        entry = self._by_name.get(name)
        return entry.name if entry is not None else None

    @property
    def everything(self) -> frozenset[str]:
        return frozenset(e.name for e in self._entries)

    def pick(self, entry: ModelEntry) -> Deployment:
        deps = entry.deployments
        if len(deps) == 1:
            return deps[0]
        best = deps[0].priority
        group = [d for d in deps if d.priority == best]
        if len(group) == 1:
            return group[0]
        return self._rng.choices(group, weights=[d.weight for d in group])[0]
