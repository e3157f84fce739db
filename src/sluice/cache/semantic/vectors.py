"""One partition's vectors in memory, searched by inner product (cosine: every vector is
unit length) with usearch's HNSW index (docs/caching-semantic.md says why usearch).

An entry's id is the database's (a string); usearch keys are integers, so a partition maps
the two. Expiry is kept beside each vector: a search never returns an expired entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from usearch.index import Index

EXACT_BELOW = 2048
"""Partitions smaller than this are searched exhaustively (exact, and as fast there)."""
CANDIDATES = 8
"""Nearest entries a search returns at most (the caller checks each in the database)."""


@dataclass(slots=True)
class _Meta:
    id: str
    created_at: float
    expires_at: float


def pack(vector: tuple[float, ...]) -> bytes:
    """A vector as the database keeps it: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


class Partition:
    """The vectors of one partition (one scope, model, endpoint, parameter digest)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._index = Index(ndim=dim, metric="ip", dtype="f32")
        self._keys: dict[str, int] = {}
        self._meta: dict[int, _Meta] = {}
        self._next = 1

    def __len__(self) -> int:
        return len(self._meta)

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._keys

    def add(
        self, entry_id: str, vector: np.ndarray, *, created_at: float, expires_at: float
    ) -> bool:
        """Index a vector; ``False`` when the id is known or the vector has another size."""
        if entry_id in self._keys or vector.shape != (self.dim,):
            return False
        key = self._next
        self._next += 1
        self._index.add(key, vector)
        self._keys[entry_id] = key
        self._meta[key] = _Meta(entry_id, created_at, expires_at)
        return True

    def add_many(self, rows: list[tuple[str, np.ndarray, float, float]]) -> int:
        """Index (id, vector, created_at, expires_at) rows in one call (the index's bulk
        insertion); rows with a known id or another size are skipped. How many were added."""
        fresh = [r for r in rows if r[0] not in self._keys and r[1].shape == (self.dim,)]
        if not fresh:
            return 0
        keys = np.arange(self._next, self._next + len(fresh), dtype=np.uint64)
        self._next += len(fresh)
        self._index.add(keys, np.stack([r[1] for r in fresh]), threads=1)
        for key, (entry_id, _, created_at, expires_at) in zip(keys.tolist(), fresh, strict=True):
            self._keys[entry_id] = key
            self._meta[key] = _Meta(entry_id, created_at, expires_at)
        return len(fresh)

    def remove(self, entry_id: str) -> bool:
        key = self._keys.pop(entry_id, None)
        if key is None:
            return False
        del self._meta[key]
        self._index.remove(key)
        return True

    def search(self, query: np.ndarray, *, now: float) -> list[tuple[str, float]]:
        """The nearest live entries, nearest first, as (id, cosine similarity)."""
        if not self._meta or query.shape != (self.dim,):
            return []
        count = min(CANDIDATES, len(self._meta))
        found = self._index.search(query, count, exact=len(self._meta) < EXACT_BELOW)
        out: list[tuple[str, float]] = []
        for key, distance in zip(found.keys.tolist(), found.distances.tolist(), strict=True):
            meta = self._meta.get(int(key))
            if meta is not None and meta.expires_at > now:
                out.append((meta.id, max(-1.0, min(1.0, 1.0 - float(distance)))))
        return out

    def select(self, *, before: float | None = None, expired_at: float | None = None) -> list[str]:
        """Ids created before ``before`` and/or expired at ``expired_at``."""
        return [
            m.id
            for m in self._meta.values()
            if (before is not None and m.created_at < before)
            or (expired_at is not None and m.expires_at <= expired_at)
        ]

    def oldest(self, count: int) -> list[str]:
        """The ``count`` oldest ids."""
        ordered = sorted(self._meta.values(), key=lambda m: (m.created_at, m.id))
        return [m.id for m in ordered[:count]]
