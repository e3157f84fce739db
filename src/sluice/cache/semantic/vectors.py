"""One partition's vectors in memory, searched exhaustively by inner product (cosine: every
vector is unit length) with numpy: exact, additions in microseconds, a partition loaded in
milliseconds. docs/caching-semantic.md has the measurements behind the choice (graph indexes
answer faster only far beyond the partition bound, and take seconds to minutes to build).

Rows live in one float32 matrix that grows by half when full; removing a row moves the last
row into its place. Expiry is kept beside each row: a search never returns an expired entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


class Partition:
    """The vectors of one partition (one scope, model, endpoint, parameter digest)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._matrix = np.empty((16, dim), np.float32)
        self._expires = np.empty(16, np.float64)
        """Row ``i``'s expiry (epoch seconds), beside the matrix so a search reads it at once."""
        self._rows: dict[str, int] = {}
        self._meta: list[_Meta] = []
        """Row ``i``'s entry, for the first ``len(self)`` rows of the matrix."""

    def __len__(self) -> int:
        return len(self._meta)

    def __contains__(self, entry_id: str) -> bool:
        return entry_id in self._rows

    def _reserve(self, count: int) -> None:
        if count > len(self._matrix):
            size = max(count, len(self._matrix) * 3 // 2)
            grown = np.empty((size, self.dim), np.float32)
            grown[: len(self)] = self._matrix[: len(self)]
            expires = np.empty(size, np.float64)
            expires[: len(self)] = self._expires[: len(self)]
            self._matrix, self._expires = grown, expires

    def add(
        self, entry_id: str, vector: np.ndarray, *, created_at: float, expires_at: float
    ) -> bool:
        """Keep a vector; ``False`` when the id is known or the vector has another size."""
        if vector.shape != (self.dim,):
            return False
        return self.add_many([entry_id], vector[None, :], [created_at], [expires_at]) == 1

    def add_many(
        self, ids: list[str], vectors: np.ndarray, created: list[float], expires: list[float]
    ) -> int:
        """Keep the rows of ``vectors`` (one per id, of this partition's size); rows whose
        id is known, or came earlier in the call, are skipped. How many were added."""
        fresh: dict[str, int] = {}
        for i, entry_id in enumerate(ids):
            if entry_id not in self._rows and entry_id not in fresh:
                fresh[entry_id] = i
        if not fresh:
            return 0
        picked = list(fresh.values())
        start, end = len(self), len(self) + len(picked)
        self._reserve(end)
        self._matrix[start:end] = vectors if len(picked) == len(ids) else vectors[picked]
        self._expires[start:end] = [expires[i] for i in picked]
        for row, (entry_id, i) in enumerate(fresh.items(), start):
            self._rows[entry_id] = row
            self._meta.append(_Meta(entry_id, created[i], expires[i]))
        return len(picked)

    def remove(self, entry_id: str) -> bool:
        row = self._rows.pop(entry_id, None)
        if row is None:
            return False
        last = len(self) - 1
        if row != last:  # the last row takes the freed place
            moved = self._meta[last]
            self._matrix[row] = self._matrix[last]
            self._expires[row] = self._expires[last]
            self._meta[row] = moved
            self._rows[moved.id] = row
        self._meta.pop()
        return True

    def search(self, query: np.ndarray, *, now: float) -> list[tuple[str, float]]:
        """The nearest live entries, nearest first, as (id, cosine similarity)."""
        count = len(self)
        if count == 0 or query.shape != (self.dim,):
            return []
        scores = self._matrix[:count] @ query
        live = self._expires[:count] > now
        scores[~live] = -np.inf
        take = min(CANDIDATES, count)
        top = np.argpartition(-scores, take - 1)[:take] if take < count else np.arange(count)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._meta[i].id, max(-1.0, min(1.0, float(scores[i])))) for i in top if live[i]]

    def select(self, *, before: float | None = None, expired_at: float | None = None) -> list[str]:
        """Ids created before ``before`` and/or expired at ``expired_at``."""
        return [
            m.id
            for m in self._meta
            if (before is not None and m.created_at < before)
            or (expired_at is not None and m.expires_at <= expired_at)
        ]

    def oldest(self, count: int) -> list[str]:
        """The ``count`` oldest ids."""
        ordered = sorted(self._meta, key=lambda m: (m.created_at, m.id))
        return [m.id for m in ordered[:count]]
