"""What the database keeps of the semantic cache: prompts, their embeddings and answers.

Entries are grouped in partitions: one per (tenant scope, public model, endpoint, parameter
digest, embedding model). A lookup reads one partition only, so an entry of another tenant
can never match, however near its prompt is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SemanticEntry:
    id: str
    partition: str
    """A digest of the fields below that a lookup must match exactly."""
    scope: str
    model: str
    endpoint: str
    params: str
    embedder: str
    """The embedding model that computed ``vector``."""
    prompt: str
    vector: bytes
    """The prompt's embedding: little-endian float32, unit length."""
    value: bytes
    """The stored answer (opaque)."""
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class EntryVector:
    """An entry as the in-memory index keeps it (no prompt, no answer)."""

    id: str
    vector: bytes
    created_at: float
    expires_at: float


class SemanticRepository(Protocol):
    """Semantic cache entries; every call is its own transaction."""

    async def add(self, entry: SemanticEntry) -> None: ...

    async def vectors(
        self, partition: str, *, now: float, since: float | None = None, limit: int
    ) -> list[EntryVector]:
        """The live entries (``expires_at > now``) of ``partition``, newest first, at most
        ``limit``; with ``since``, only those created at or after it."""
        ...

    async def value(self, entry_id: str, *, now: float) -> bytes | None:
        """The answer of a live entry; ``None`` when it was dropped or has expired."""
        ...

    async def count(self, partition: str) -> int:
        """Entries stored in ``partition``, expired ones included."""
        ...

    async def delete_ids(self, ids: list[str]) -> int:
        """Remove these entries; how many were removed."""
        ...

    async def oldest(self, partition: str, *, keep: int) -> list[str]:
        """The ids of ``partition``'s entries beyond its ``keep`` newest."""
        ...

    async def drop(self, *, model: str | None, scope: str | None, older_than: float | None) -> int:
        """Remove the entries of ``model`` and ``scope`` created before ``older_than``
        (each ``None``: any); how many."""
        ...

    async def sweep(self, *, now: float, keep: int) -> int:
        """Remove the expired entries, then the oldest beyond ``keep`` in all; how many."""
        ...
