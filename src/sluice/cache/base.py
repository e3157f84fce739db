"""The response cache's seams: where answers are kept (:class:`AnswerStore`, exact) and where
prompts are matched by meaning (:class:`SemanticIndex`).

An answer is stored as opaque bytes (the cache stage encodes and decodes it); a store never
reads them. Every entry belongs to one tenant scope (``org:<id>``, ``team:<id>``, ``key:<id>``
or ``global``) and one public model: lookups never cross either, and invalidation selects by
them (:class:`Selector`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

Vector = tuple[float, ...]
"""An embedding, normalised to unit length."""

Embed = Callable[[str], Awaitable[Vector | None]]
"""Embeds a prompt for the request being served (through the pipeline, accounted to its
caller: ``sluice.pipeline.cache_embed``); ``None`` when the embedding could not be had."""


@dataclass(frozen=True, slots=True)
class Selector:
    """Which entries an invalidation drops; every field set narrows (all ``None``: all)."""

    model: str | None = None
    """The public model name."""
    scope: str | None = None
    """A tenant scope exactly (``org:<id>``, ``team:<id>``, ``key:<id>``, ``global``)."""
    older_than: float | None = None
    """Epoch seconds: entries stored before this time."""


class AnswerStore(Protocol):
    """Exact-match entries: a key (a digest of scope, model and normalised request) to the
    encoded answer. Backends: memory (bounded in bytes, LRU) and Redis (shared by replicas).

    A store failure (Redis down) raises :class:`sluice.errors.GatewayError`
    (``gateway_dependency_unavailable``); the cache stage turns it into a miss, never an error."""

    async def get(self, key: str) -> bytes | None:
        """The entry's bytes, or ``None`` (absent or expired)."""
        ...

    async def put(self, key: str, value: bytes, *, ttl_s: float, scope: str, model: str) -> None:
        """Store ``value`` for ``ttl_s`` seconds; ``scope`` and ``model`` index it for
        :meth:`drop`. May evict older entries to stay within the store's bound."""
        ...

    async def delete(self, key: str) -> None:
        """Remove one entry (absent: nothing happens)."""
        ...

    async def drop(self, selector: Selector) -> int:
        """Remove the selected entries; returns how many were removed."""
        ...


@dataclass(frozen=True, slots=True)
class Probe:
    """A request as the semantic index matches it."""

    scope: str
    model: str
    """The public model the request resolved to."""
    endpoint: str
    """The dialect's endpoint (``chat``, ``messages``, ...): answers are never shared across."""
    params: str
    """A digest of every answer-changing field except the prompt: only entries with the same
    digest match (compatible parameters)."""
    text: str
    """The prompt text that is embedded."""


@dataclass(frozen=True, slots=True)
class SemanticHit:
    value: bytes
    """The stored answer, as given to :meth:`SemanticIndex.add`."""
    similarity: float
    """Cosine similarity of the probe's prompt to the stored one, in [-1, 1]."""
    entry_id: str


class SemanticIndex(Protocol):
    """Prompts matched by meaning, persisted in the database so a restart or another replica
    finds them. The prompt is embedded by ``embed`` (the configured embedding model called
    through the pipeline, accounted to the request's caller)."""

    async def find(
        self, probe: Probe, *, embed: Embed, threshold: float
    ) -> tuple[SemanticHit | None, Vector | None]:
        """The nearest live entry of the probe's scope, model, endpoint and params whose
        similarity is at least ``threshold``, and the probe's embedding (``None`` when it
        could not be computed: then this is a miss, and :meth:`add` is skipped)."""
        ...

    async def add(self, probe: Probe, vector: Vector, value: bytes, *, ttl_s: float) -> None:
        """Remember ``value`` as the answer to ``probe`` (embedded as ``vector``)."""
        ...

    async def drop(self, selector: Selector) -> int:
        """Remove the selected entries (database and in-memory index); how many."""
        ...
