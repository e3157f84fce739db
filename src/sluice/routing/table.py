"""The model table: public names and aliases resolved to deployments, built once from config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sluice.config.model import DeploymentBatch, GatewayConfig, Strategy
from sluice.config.providers import Timeouts
from sluice.errors import ErrorKind, GatewayError
from sluice.providers.base import FileInput, Provider
from sluice.providers.batch_api import BatchApi


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
    retries: int = 0
    """Extra attempts after a retriable failure."""
    provider_type: str = ""
    output_usd_per_mtok: float = 0.0
    """For the ``lowest_cost`` strategy (from the model's price override, else 0)."""
    file_types: frozenset[str] = frozenset()
    """Media types of documents forwarded to it as files; any other document reaches it as
    text (docs/documents.md). The config's ``file_types``, else what the adapter declares."""
    delegate: Delegate | None = None
    """Batches through this deployment go to the provider's batch API (``batch.mode:
    delegate``); ``None``: Sluice runs their lines."""


@dataclass(frozen=True, slots=True)
class Delegate:
    """A deployment's batch API and the terms of its batches."""

    api: BatchApi
    discount: float
    """Share taken off the price of each line."""
    poll_interval_s: float


DEFAULT_MAX_OUTPUT_TOKENS = 1_048_576
"""The bound on a request's maximum output tokens for a model whose context window is not
known (neither configured nor in the price table's model data)."""
DEFAULT_MAX_N = 128
"""The bound on ``n`` and ``best_of`` unless the model's config sets ``max_n``."""

KnownWindow = Callable[[str, str], int | None]
"""``(provider type, upstream model)`` → the model's context window in tokens, if known."""


@dataclass(frozen=True, slots=True)
class OutputBounds:
    """What one public model lets a request ask for; checked before anything is reserved."""

    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    """Largest ``max_tokens`` / ``max_completion_tokens`` / ``max_output_tokens``."""
    max_n: int = DEFAULT_MAX_N
    """Largest ``n`` and ``best_of``."""


def _no_window(provider: str, model: str) -> int | None:
    return None


def _output_bound(configured: int | None, known: list[int | None]) -> int:
    """The configured bound, else the largest known context window of the deployments (an
    answer never outgrows its model's context), else the default."""
    if configured is not None:
        return configured
    windows = [w for w in known if w]
    return max(windows) if windows else DEFAULT_MAX_OUTPUT_TOKENS


MAX_WILDCARD_NAMES = 4096
"""Wildcard names remembered (each gets a stable entry); beyond, entries are rebuilt."""


@dataclass(frozen=True, slots=True)
class WildcardRoute:
    prefix: str
    provider_name: str
    provider: Provider
    timeouts: Timeouts
    provider_type: str
    retries: int
    known_window: KnownWindow = _no_window


def _delegate(batch: DeploymentBatch | None, api: BatchApi | None) -> Delegate | None:
    if batch is None or batch.mode != "delegate" or api is None:
        return None
    return Delegate(api, batch.discount, batch.poll_interval_s)


def native_file_types(provider: Provider, configured: tuple[str, ...] | None) -> frozenset[str]:
    """What a deployment takes as files: its config's list when set, else its adapter's."""
    if configured is not None:
        return frozenset(t.lower() for t in configured)
    return provider.native_file_types if isinstance(provider, FileInput) else frozenset()


def _header(value: str) -> bytes:
    return value.encode("latin-1", "replace")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    aliases: tuple[str, ...]
    deployments: tuple[Deployment, ...]
    """Sorted by priority (lowest first)."""
    created: int
    strategy: Strategy = "weighted"
    fallbacks: tuple[str, ...] = ()
    context_window_fallbacks: tuple[str, ...] = ()
    content_policy_fallbacks: tuple[str, ...] = ()
    bounds: OutputBounds = OutputBounds()
    """The bounds on ``max_tokens``-like fields and ``n``/``best_of`` (400 beyond)."""


class ModelTable:
    """Resolves what a client asked for: names, aliases and wildcard routes to entries.
    Ordering deployments is the router's job (``routing.router``)."""

    def __init__(
        self,
        entries: list[ModelEntry],
        *,
        wildcards: tuple[WildcardRoute, ...] = (),
    ) -> None:
        self._entries = entries
        self._by_name: dict[str, ModelEntry] = {}
        for entry in entries:
            for name in (entry.name, *entry.aliases):
                self._by_name[name] = entry
        self._wildcards = wildcards
        self._wild: dict[str, ModelEntry] = {}

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        providers: Mapping[str, Provider],
        *,
        created: int,
        known_window: KnownWindow = _no_window,
        batch_apis: Mapping[str, BatchApi] | None = None,
    ) -> ModelTable:
        """``known_window`` gives the default output bound of models that configure none
        (``budgets.pricing.known_context_window`` in the service); ``batch_apis``: the batch
        API of each provider that has one, by provider name (for ``batch.mode: delegate``)."""
        apis = batch_apis or {}
        entries = []
        retries = config.routing.retries
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
                            retries=d.retries if d.retries is not None else retries,
                            provider_type=config.providers[d.provider].type,
                            file_types=native_file_types(providers[d.provider], d.file_types),
                            output_usd_per_mtok=model.prices.output_usd_per_mtok
                            if model.prices
                            else 0.0,
                            delegate=_delegate(d.batch, apis.get(d.provider)),
                        )
                        for d in model.deployments
                    ),
                    key=lambda d: d.priority,
                )
            )
            entries.append(
                ModelEntry(
                    model.name,
                    model.aliases,
                    deps,
                    created,
                    strategy=model.strategy,
                    fallbacks=model.fallbacks,
                    context_window_fallbacks=model.context_window_fallbacks,
                    content_policy_fallbacks=model.content_policy_fallbacks,
                    bounds=OutputBounds(
                        _output_bound(
                            model.max_output_tokens,
                            [known_window(d.provider_type, d.upstream_model) for d in deps],
                        ),
                        model.max_n,
                    ),
                )
            )
        wildcards = tuple(
            WildcardRoute(
                w.prefix,
                w.provider,
                providers[w.provider],
                config.providers[w.provider].timeouts,
                config.providers[w.provider].type,
                retries,
                known_window,
            )
            for w in config.routing.wildcards
        )
        return cls(entries, wildcards=wildcards)

    def adopt(self, other: ModelTable) -> None:
        """Serve ``other``'s entries from now on (a catalogue change): one synchronous
        step, so no request sees half of each. Requests already routed keep the entry and
        deployments they resolved."""
        self._entries, self._by_name, self._wildcards, self._wild = (
            other._entries,
            other._by_name,
            other._wildcards,
            other._wild,
        )

    @property
    def entries(self) -> list[ModelEntry]:
        return self._entries

    def get(self, name: str) -> ModelEntry | None:
        return self._by_name.get(name) or self._wildcard(name)

    def _wildcard(self, name: str) -> ModelEntry | None:
        """``prefix/model`` through a wildcard route, built once per name."""
        entry = self._wild.get(name)
        if entry is not None or not self._wildcards:
            return entry
        for route in self._wildcards:
            upstream = name[len(route.prefix) :] if name.startswith(route.prefix) else ""
            if upstream:
                dep = Deployment(
                    key=f"{route.provider_name}/{upstream}",
                    provider_name=route.provider_name,
                    provider=route.provider,
                    upstream_model=upstream,
                    weight=1.0,
                    priority=0,
                    timeouts=route.timeouts,
                    response_headers=(
                        (b"x-sluice-provider", _header(route.provider_name)),
                        (b"x-sluice-deployment", _header(f"{route.provider_name}/{upstream}")),
                    ),
                    retries=route.retries,
                    provider_type=route.provider_type,
                    file_types=native_file_types(route.provider, None),
                )
                bound = _output_bound(None, [route.known_window(route.provider_type, upstream)])
                entry = ModelEntry(name, (), (dep,), 0, bounds=OutputBounds(bound))
                if len(self._wild) < MAX_WILDCARD_NAMES:
                    self._wild[name] = entry
                return entry
        return None

    def resolve(self, name: str, *, allowed: Callable[[str], bool] | None = None) -> ModelEntry:
        """The entry for a name or alias; an unknown or forbidden model is the same 404.
        Access to a wildcard name is checked as ``<prefix>*``."""
        entry = self.get(name)
        if entry is None or (allowed is not None and not allowed(self.canonical(name) or "")):
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
        """The public model a name or alias stands for (``<prefix>*`` for wildcard routes)."""
        entry = self._by_name.get(name)
        if entry is not None:
            return entry.name
        for route in self._wildcards:
            if name == route.prefix + "*" or (
                name.startswith(route.prefix) and name != route.prefix
            ):
                return route.prefix + "*"
        return None

    @property
    def everything(self) -> frozenset[str]:
        return frozenset(e.name for e in self._entries) | {
            route.prefix + "*" for route in self._wildcards
        }
