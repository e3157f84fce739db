"""Outcomes remembered per deployment, so most requests never reach Cedar.

The key holds every input the policies read except the live health figures (principal
when read, context, deployment key, static deployment attributes). An entry answers when
its health figures equal the current ones (exact), or differ but were computed less than
``ttl_s`` ago (then a decision may use health up to ``ttl_s`` old). So Cedar runs at most
once per key and ``ttl_s`` while health drifts, whatever the request rate.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    value: T
    live: tuple[object, ...]
    at: float


class OutcomeCache(Generic[T]):
    """Bounded (oldest entry evicted first); single-threaded use (the event loop)."""

    def __init__(self, *, size: int, ttl_s: float) -> None:
        self._entries: dict[Hashable, _Entry[T]] = {}
        self._size = size
        self._ttl_s = ttl_s
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._size > 0

    def get(self, key: Hashable, live: tuple[object, ...], now: float) -> T | None:
        """The remembered value if still good for these health figures at ``now``
        (monotonic seconds)."""
        entry = self._entries.get(key)
        if entry is not None and (entry.live == live or now - entry.at < self._ttl_s):
            self.hits += 1
            return entry.value
        self.misses += 1
        return None

    def put(self, key: Hashable, live: tuple[object, ...], now: float, value: T) -> None:
        entries = self._entries
        if key not in entries and len(entries) >= self._size:
            del entries[next(iter(entries))]
        entries[key] = _Entry(value, live, now)

    def __len__(self) -> int:
        return len(self._entries)
