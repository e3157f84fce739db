"""The response cache as the process holds it: the stores, the settings each request gets,
the counters. Built once by the composition root (``None`` when no model or team enables the
cache, so the data plane pays one attribute check)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice.cache.base import AnswerStore, SemanticIndex, Vector
from sluice.config.cache import CacheConfig, CacheOverride, ModelCacheOverride

log = logging.getLogger("sluice.cache")

_MEMO_MAX = 4096


class EmbedFor(Protocol):
    """Embeds ``text`` with ``model`` through the pipeline entry for the caller of ``ctx``
    (the pipeline's ``Services`` and ``RequestContext``; this package never names them)."""

    def __call__(self, svc: Any, ctx: Any, model: str, text: str) -> Awaitable[Vector | None]: ...


@dataclass(frozen=True, slots=True)
class Policy:
    """The cache settings of one (model, team): the team's override, else the model's, else
    the ``cache`` section, field by field."""

    enabled: bool
    mode: str
    ttl_s: float
    threshold: float
    max_entry_bytes: int
    max_temperature: float | None
    scope: str
    """``key``, ``team``, ``org`` or ``global`` (a model's explicit choice only)."""


OFF = Policy(False, "exact", 1.0, 1.0, 0, None, "org")


@dataclass(slots=True)
class CacheStats:
    """Counters since start (read by the metrics sampler and the admin API)."""

    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stores: int = 0
    bypasses: int = 0
    corrupt: int = 0
    """Entries that did not decode: dropped, never returned."""
    errors: int = 0
    """Store or index calls that failed (Redis down): each a miss or a skipped store."""
    oversized: int = 0
    """Answers over ``max_entry_bytes``: not stored."""
    saved_micros: int = 0
    """What the hits would have cost."""

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class ResponseCache:
    """The process's response cache: exact ``store``, optional ``semantic`` index, and the
    settings of every (model, team)."""

    config: CacheConfig
    store: AnswerStore
    models: Mapping[str, ModelCacheOverride | None]
    """Each public model's own ``cache`` settings."""
    generations: Mapping[str, str]
    """Each public model's deployment digest (``sluice.cache.keys.generation``)."""
    semantic: SemanticIndex | None = None
    """The semantic index (``None``: semantic mode answers from the exact store only)."""
    embed_for: EmbedFor | None = None
    """How the stage embeds a prompt for the index (``None``: the index is not consulted).
    Set with ``semantic`` by the composition root."""
    team_name: Callable[[str], str | None] = lambda _team_id: None
    """A team id's name, for ``cache.teams`` keyed by name."""
    store_bytes: Callable[[], int] = lambda: 0
    """Bytes the store holds (memory backend; 0 when not known)."""
    store_evictions: Callable[[], int] = lambda: 0
    stats: CacheStats = field(default_factory=CacheStats)
    _memo: dict[tuple[str, str | None], Policy] = field(default_factory=dict)

    @property
    def count_rpm(self) -> bool:
        return self.config.count_rpm

    def policy(self, model: str, team_id: str | None) -> Policy:
        """The settings for ``model`` asked by a member of ``team_id`` (memoised)."""
        memo = self._memo
        got = memo.get((model, team_id))
        if got is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            got = memo[(model, team_id)] = self._resolve(model, team_id)
        return got

    def totals(self) -> tuple[int, int, int, int]:
        """(bytes held, evictions, corrupt entries, store failures) since start."""
        stats = self.stats
        return (self.store_bytes(), self.store_evictions(), stats.corrupt, stats.errors)

    def forget(self) -> None:
        """Resolve settings again (team names may have changed)."""
        self._memo.clear()

    def _team(self, team_id: str | None) -> CacheOverride | None:
        if team_id is None:
            return None
        teams = self.config.teams
        found = teams.get(team_id)
        if found is None and teams:
            name = self.team_name(team_id)
            found = teams.get(name) if name is not None else None
        return found

    def _resolve(self, model: str, team_id: str | None) -> Policy:
        top = self.config
        layers: tuple[CacheOverride | None, ...] = (self._team(team_id), self.models.get(model))

        def pick(name: str, default: object) -> object:
            for layer in layers:
                if layer is not None:
                    value = getattr(layer, name)
                    if value is not None:
                        return value
            return default

        return Policy(
            enabled=bool(pick("enabled", top.enabled)),
            mode=str(pick("mode", top.mode)),
            ttl_s=float(pick("ttl_s", top.ttl_s)),  # type: ignore[arg-type]
            threshold=float(pick("threshold", top.threshold)),  # type: ignore[arg-type]
            max_entry_bytes=int(pick("max_entry_bytes", top.max_entry_bytes)),  # type: ignore[call-overload]
            max_temperature=_temperature(layers, top.max_temperature),
            scope=str(pick("scope", top.scope)),
        )

    def generation(self, model: str) -> str:
        return self.generations.get(model, "")


def _temperature(layers: tuple[CacheOverride | None, ...], default: float | None) -> float | None:
    for layer in layers:
        if layer is not None and "max_temperature" in layer.model_fields_set:
            return layer.max_temperature
    return default


def scope_of(policy_scope: str, *, key_id: str, team_id: str | None, org_id: str | None) -> str:
    """The tenant scope of an entry: never wider than asked; a principal without the asked
    level gets the next narrower one (no team: its key)."""
    if policy_scope == "global":
        return "global"
    if policy_scope == "org" and org_id is not None:
        return "org:" + org_id
    if policy_scope in ("org", "team") and team_id is not None:
        return "team:" + team_id
    return "key:" + key_id
