"""The ``cache`` section of the gateway config (docs/caching.md): the response cache, its
process-wide settings, and the overrides per model (``models[].cache``) and per team
(``cache.teams``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["exact", "semantic"]
Scope = Literal["key", "team", "org"]
ModelScope = Literal["key", "team", "org", "global"]

MAX_ENTRY_CAP = 64 * 1024 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacheOverride(_Frozen):
    """Settings a team (``cache.teams``) may change; each omitted one is inherited (from the
    model's ``cache``, else the ``cache`` section)."""

    enabled: bool | None = None
    """Look up and store answers of this team (or model)."""
    mode: Mode | None = None
    """``exact``: the same normalised request only; ``semantic``: also the nearest stored
    prompt above ``threshold`` (needs ``cache.embedding_model``)."""
    ttl_s: Annotated[float, Field(gt=0, le=365 * 86400)] | None = None
    """How long an entry lives, in seconds."""
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    """Semantic mode: the least cosine similarity of a hit."""
    max_entry_bytes: Annotated[int, Field(ge=1, le=MAX_ENTRY_CAP)] | None = None
    """Answers larger than this (encoded) are not stored."""
    max_temperature: Annotated[float, Field(ge=0)] | None = None
    """Requests whose ``temperature`` is above this bypass the cache (their answers are
    meant to vary)."""
    scope: Scope | None = None
    """Who shares entries: one ``key``, one ``team`` or one ``org`` (the widest a team may
    choose)."""


class ModelCacheOverride(CacheOverride):
    """A model's ``cache`` settings: those of a team, and the ``global`` scope (entries
    shared by every tenant; only for answers that are the same for everyone)."""

    scope: ModelScope | None = None  # type: ignore[assignment]


class CacheConfig(_Frozen):
    """The response cache (docs/caching.md). Off by default; ``enabled`` here turns it on
    for every model, or a model's or team's override turns it on for those alone."""

    enabled: bool = False
    backend: Literal["auto", "memory", "redis"] = "auto"
    """Where exact entries live: ``memory`` (this process), ``redis`` (shared by replicas;
    needs ``SLUICE_REDIS_URL``), ``auto`` (Redis when configured, else memory)."""
    max_bytes: Annotated[int, Field(ge=1024, le=1 << 40)] = 256 * 1024 * 1024
    """Memory backend: the bound of all entries together; the least recently used go."""
    max_entry_bytes: Annotated[int, Field(ge=1, le=MAX_ENTRY_CAP)] = 1024 * 1024
    """Answers larger than this (encoded) are not stored."""
    ttl_s: Annotated[float, Field(gt=0, le=365 * 86400)] = 3600.0
    """How long an entry lives, in seconds (``x-sluice-cache-ttl`` may shorten it)."""
    scope: Scope = "org"
    """Who shares entries: ``key``, ``team`` or ``org`` (never wider, unless a model sets
    ``global``)."""
    mode: Mode = "exact"
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.95
    """Semantic mode: the least cosine similarity of a hit."""
    max_temperature: Annotated[float, Field(ge=0)] | None = 1.0
    """Requests with a ``temperature`` above this bypass the cache; ``null``: no rule. A
    request without ``temperature`` is cached."""
    embedding_model: str | None = None
    """The public model the semantic index embeds prompts with (called through the
    gateway, accounted to the caller)."""
    count_rpm: bool = True
    """A hit still counts one request toward the caller's RPM limits (never tokens or
    budget)."""
    teams: dict[str, CacheOverride] = Field(default_factory=dict)
    """Overrides per team, by team id or team name (an id wins when both match)."""

    def any_enabled(self, models: tuple[ModelCacheOverride | None, ...]) -> bool:
        """Whether any request at all may use the cache."""
        return (
            self.enabled
            or any(m is not None and m.enabled for m in models)
            or any(t.enabled for t in self.teams.values())
        )

    def any_semantic(self, models: tuple[ModelCacheOverride | None, ...]) -> bool:
        return (
            self.mode == "semantic"
            or any(m is not None and m.mode == "semantic" for m in models)
            or any(t.mode == "semantic" for t in self.teams.values())
        )
