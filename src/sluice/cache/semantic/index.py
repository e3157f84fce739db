"""The semantic index: prompts matched by meaning, persisted in the database.

Where things live:

* the database (``Storage.semantic``) holds every entry: scope, model, endpoint, parameter
  digest, embedding model, prompt, vector, answer, creation and expiry times. It is the
  truth: a restart or another replica reads it.
* memory holds, per partition (scope, model, endpoint, parameter digest, embedding model),
  the vectors of its newest entries (at most ``max_entries``), loaded on the partition's
  first lookup. Answers stay in the database: a hit reads its answer by id, which also
  proves the entry still exists (another replica may have dropped it) and has not expired.
* another replica's additions reach this one when a lookup finds its partition older than
  ``refresh_s``: the rows created since the last read (less ``lookback_s``, for commits that
  land late and clocks a little apart) are added.

Bounds: ``max_entries`` per partition (the oldest go, in memory and in the database),
``max_vectors`` in memory over all partitions (the least recently used partitions are
unloaded; they load again on their next lookup), ``max_total`` in the database (enforced
by :meth:`SemanticCache.sweep`, with expiry), and the size of an answer and of a prompt.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from sluice.cache.base import Embed, Probe, Selector, SemanticHit, Vector
from sluice.cache.semantic.vectors import Partition, pack
from sluice.clock import Clock
from sluice.ids import random_hex
from sluice.storage.base import EntryVector, SemanticEntry, SemanticRepository

log = logging.getLogger("sluice.cache")


MAX_PARTITION_ENTRIES = 20_000
"""A lookup scans its whole partition: about 0.7 ms per 10,000 vectors of 384 dimensions
on one core (docs/caching-semantic.md)."""


@dataclass(frozen=True, slots=True)
class SemanticLimits:
    """How much the semantic index keeps."""

    max_entries: int = 10_000
    """Entries per partition (database and memory); the oldest go first. At most
    :data:`MAX_PARTITION_ENTRIES`: a lookup scans its partition."""
    max_vectors: int = 200_000
    """Vectors in memory over all partitions (``4 * dim`` bytes each, plus id and times)."""
    max_partitions: int = 10_000
    """Partitions in memory (their vectors count toward ``max_vectors`` too)."""
    max_total: int = 1_000_000
    """Entries in the database over all partitions (enforced by the sweep)."""
    max_value_bytes: int = 1_048_576
    """Largest answer stored; a larger one is not stored."""
    max_prompt_chars: int = 32_768
    """Longest prompt stored; a longer one is not stored."""
    refresh_s: float = 2.0
    """A partition older than this reads the rows other replicas added, on its next lookup."""
    lookback_s: float = 30.0
    """How far before the last read a refresh looks (commits that land late, clock skew)."""

    def __post_init__(self) -> None:
        for name in (
            "max_entries",
            "max_vectors",
            "max_partitions",
            "max_total",
            "max_value_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_entries > MAX_PARTITION_ENTRIES:
            raise ValueError(f"max_entries must be at most {MAX_PARTITION_ENTRIES}")
        if self.max_entries > self.max_vectors:
            raise ValueError("max_entries must not exceed max_vectors")


@dataclass(slots=True)
class _Loaded:
    scope: str
    model: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    vectors: Partition | None = None
    read_at: float | None = None
    """Wall-clock time of the last database read (``None``: never read)."""
    read_mono: float = 0.0


OFF_LOOP_ROWS = 512
"""A partition loaded with more rows than this is decoded in a worker thread."""


def _add(partition: Partition, rows: list[EntryVector]) -> int:
    """Decode ``rows`` as one matrix (no array per row) into ``partition``; rows of
    another size are skipped. How many were new."""
    size = partition.dim * 4
    rows = [r for r in rows if len(r.vector) == size]
    if not rows:
        return 0
    data = b"".join(r.vector for r in rows)
    matrix = np.frombuffer(data, dtype="<f4").reshape(-1, partition.dim)
    return partition.add_many(
        [r.id for r in rows], matrix, [r.created_at for r in rows], [r.expires_at for r in rows]
    )


def _build(rows: list[EntryVector]) -> Partition:
    """A partition of ``rows`` (not empty), sized by the first."""
    partition = Partition(len(rows[0].vector) // 4)
    _add(partition, rows)
    return partition


def partition_of(probe: Probe, embedder: str) -> str:
    """The partition's digest: entries match only within one."""
    parts = (probe.scope, probe.model, probe.endpoint, probe.params, embedder)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class SemanticCache:
    """:class:`sluice.cache.base.SemanticIndex` over the database and an in-memory index."""

    def __init__(
        self,
        repo: SemanticRepository,
        *,
        embedding_model: str,
        clock: Clock,
        limits: SemanticLimits | None = None,
    ) -> None:
        """``embedding_model``: the public name of the model that embeds the prompts (the
        ``embed`` given to :meth:`find`); entries of another embedding model never match."""
        self._repo = repo
        self.embedding_model = embedding_model
        self._clock = clock
        self.limits = limits or SemanticLimits()
        self._parts: OrderedDict[str, _Loaded] = OrderedDict()
        self.stored_vectors = 0
        """Vectors in memory now."""

    async def find(
        self, probe: Probe, *, embed: Embed, threshold: float
    ) -> tuple[SemanticHit | None, Vector | None]:
        vector = await embed(probe.text)
        if vector is None:
            return None, None
        try:
            return await self._nearest(probe, vector, threshold), vector
        except Exception:  # the database away: a miss, never the request's error
            log.warning("semantic cache lookup failed", exc_info=True)
            return None, vector

    async def _nearest(self, probe: Probe, vector: Vector, threshold: float) -> SemanticHit | None:
        loaded = await self._partition(probe)
        if loaded.vectors is None:
            return None
        now = self._clock.now()
        for entry_id, similarity in loaded.vectors.search(np.asarray(vector, np.float32), now=now):
            if similarity < threshold:
                break
            value = await self._repo.value(entry_id, now=now)
            if value is not None:
                return SemanticHit(value, similarity, entry_id)
            self._forget(loaded, [entry_id])  # dropped elsewhere, or expired
        return None

    async def add(self, probe: Probe, vector: Vector, value: bytes, *, ttl_s: float) -> None:
        limits = self.limits
        if (
            len(value) > limits.max_value_bytes
            or len(probe.text) > limits.max_prompt_chars
            or not ttl_s > 0
        ):
            return
        now = self._clock.now()
        partition = partition_of(probe, self.embedding_model)
        entry = SemanticEntry(
            random_hex(16), partition, probe.scope, probe.model, probe.endpoint, probe.params,
            self.embedding_model, probe.text, pack(vector), value, now, now + ttl_s,
        )  # fmt: skip
        try:
            await self._repo.add(entry)
            loaded = self._parts.get(partition)
            if loaded is None or loaded.read_at is None:
                return  # read from the database at its first lookup
            # memory first, with no await in between: a drop running meanwhile sees it whole
            old: list[str] = []
            surplus = len(loaded.vectors or ()) + 1 - limits.max_entries
            if surplus > 0 and loaded.vectors is not None:  # the oldest make room
                old = loaded.vectors.oldest(surplus)
                self._forget(loaded, old)
            self._index(loaded, [EntryVector(entry.id, entry.vector, now, entry.expires_at)])
            self._bound(keep=partition)
            if old:
                await self._repo.delete_ids(old)
        except Exception:
            log.warning("semantic cache store failed", exc_info=True)

    async def drop(self, selector: Selector) -> int:
        removed = await self._repo.drop(
            model=selector.model, scope=selector.scope, older_than=selector.older_than
        )
        for key, loaded in list(self._parts.items()):
            if (selector.model is not None and loaded.model != selector.model) or (
                selector.scope is not None and loaded.scope != selector.scope
            ):
                continue
            if selector.older_than is None:
                self._unload(key)
            elif loaded.vectors is not None:
                self._forget(loaded, loaded.vectors.select(before=selector.older_than))
        return removed

    async def sweep(self) -> int:
        """Remove expired entries (database and memory) and the oldest beyond
        ``max_total``; how many left the database."""
        now = self._clock.now()
        removed = await self._repo.sweep(now=now, keep=self.limits.max_total)
        for loaded in self._parts.values():
            if loaded.vectors is not None:
                self._forget(loaded, loaded.vectors.select(expired_at=now))
        return removed

    async def _partition(self, probe: Probe) -> _Loaded:
        key = partition_of(probe, self.embedding_model)
        loaded = self._parts.get(key)
        if loaded is None:
            loaded = self._parts[key] = _Loaded(probe.scope, probe.model)
        self._parts.move_to_end(key)
        mono = self._clock.monotonic()
        if loaded.read_at is not None and mono - loaded.read_mono < self.limits.refresh_s:
            return loaded
        async with loaded.lock:
            if loaded.read_at is not None and mono - loaded.read_mono < self.limits.refresh_s:
                return loaded  # another lookup read it meanwhile
            now = self._clock.now()
            since = None if loaded.read_at is None else loaded.read_at - self.limits.lookback_s
            rows = await self._repo.vectors(
                key, now=now, since=since, limit=self.limits.max_entries
            )
            if self._parts.get(key) is not loaded:  # unloaded meanwhile (a drop)
                self._parts[key] = loaded
            if loaded.vectors is None and len(rows) > OFF_LOOP_ROWS:
                # decoding thousands of rows takes a while: in a thread, not on the event
                # loop; the partition is not in use before (nothing else touches it)
                built = await asyncio.to_thread(_build, rows)
                if self._parts.get(key) is not loaded:
                    return loaded  # dropped meanwhile: what was read may be gone
                loaded.vectors = built
                self.stored_vectors += len(built)
            else:
                self._index(loaded, rows)
            loaded.read_at, loaded.read_mono = now, mono
        self._bound(keep=key)
        return loaded

    def _index(self, loaded: _Loaded, rows: list[EntryVector]) -> None:
        if not rows:
            return
        if loaded.vectors is None:
            loaded.vectors = _build(rows)
            self.stored_vectors += len(loaded.vectors)
        else:
            self.stored_vectors += _add(loaded.vectors, rows)
        surplus = len(loaded.vectors or ()) - self.limits.max_entries
        if surplus > 0 and loaded.vectors is not None:  # other replicas' additions
            self._forget(loaded, loaded.vectors.oldest(surplus))

    def _forget(self, loaded: _Loaded, ids: list[str]) -> None:
        if loaded.vectors is not None:
            for entry_id in ids:
                self.stored_vectors -= int(loaded.vectors.remove(entry_id))

    def _unload(self, key: str) -> None:
        loaded = self._parts.pop(key, None)
        if loaded is not None and loaded.vectors is not None:
            self.stored_vectors -= len(loaded.vectors)
            # a lookup still holding it (awaiting the database) then changes nothing here
            loaded.vectors, loaded.read_at = None, None

    def _bound(self, *, keep: str) -> None:
        """Unload the least recently used partitions while memory holds too many vectors
        or partitions."""
        limits = self.limits
        for key in list(self._parts):
            if (
                self.stored_vectors <= limits.max_vectors
                and len(self._parts) <= limits.max_partitions
            ):
                return
            if key != keep:
                self._unload(key)
