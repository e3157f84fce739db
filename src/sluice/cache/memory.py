"""The exact store of one process: entries in memory, bounded in bytes, least recently used
first out."""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from sluice.cache.base import Selector
from sluice.clock import Clock

ENTRY_OVERHEAD = 200
"""Bytes counted per entry besides its value (key, bookkeeping), so many tiny entries are
bounded too."""


class _Entry(NamedTuple):
    value: bytes
    scope: str
    model: str
    stored_at: float
    expires_at: float
    size: int


class MemoryAnswers:
    """:class:`~sluice.cache.base.AnswerStore` in this process. ``max_bytes`` bounds the
    values plus :data:`ENTRY_OVERHEAD` per entry; storing past it evicts the least recently
    used entries (``evictions`` counts them). Expired entries are dropped when read, and
    when eviction walks past them."""

    def __init__(self, clock: Clock, *, max_bytes: int) -> None:
        self._clock = clock
        self._max = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.bytes = 0
        """Bytes held now (values and overhead)."""
        self.evictions = 0
        """Entries evicted to stay within ``max_bytes`` since start."""

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock.now():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def put(self, key: str, value: bytes, *, ttl_s: float, scope: str, model: str) -> None:
        size = len(value) + len(key) + ENTRY_OVERHEAD
        if size > self._max:
            return  # could never fit: keep what is there
        if key in self._entries:
            self._remove(key)
        now = self._clock.now()
        self._entries[key] = _Entry(value, scope, model, now, now + ttl_s, size)
        self.bytes += size
        while self.bytes > self._max:
            old, entry = next(iter(self._entries.items()))
            self._remove(old)
            if entry.expires_at > now:
                self.evictions += 1

    async def delete(self, key: str) -> None:
        if key in self._entries:
            self._remove(key)

    async def drop(self, selector: Selector) -> int:
        gone = [k for k, e in self._entries.items() if _selected(e, selector)]
        for key in gone:
            self._remove(key)
        return len(gone)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self.bytes -= entry.size


def _selected(entry: _Entry, selector: Selector) -> bool:
    return (
        (selector.model is None or entry.model == selector.model)
        and (selector.scope is None or entry.scope == selector.scope)
        and (selector.older_than is None or entry.stored_at < selector.older_than)
    )
