"""An in-memory :class:`~sluice.cache.base.SemanticIndex` for tests: the nearest entry of
the same scope, model, endpoint and parameters above the threshold, by the vectors the
stage's ``embed`` gives (in tests: :func:`bag_of_words`, deterministic, no model)."""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field

from sluice.cache.base import Embed, Probe, Selector, SemanticHit, Vector

_WORD = re.compile(r"[a-z0-9]+")
DIM = 64


def bag_of_words(text: str) -> Vector:
    counts = Counter(zlib.crc32(w.encode()) % DIM for w in _WORD.findall(text.lower()))
    raw = [float(counts.get(i, 0)) for i in range(DIM)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return tuple(v / norm for v in raw)


@dataclass
class _Entry:
    probe: Probe
    vector: Vector
    value: bytes
    stored_at: float
    entry_id: str


@dataclass
class FakeSemanticIndex:
    entries: list[_Entry] = field(default_factory=list)
    finds: int = 0
    clock: float = 0.0

    async def find(
        self, probe: Probe, *, embed: Embed, threshold: float
    ) -> tuple[SemanticHit | None, Vector | None]:
        self.finds += 1
        vector = await embed(probe.text)
        if vector is None:
            return None, None
        best: tuple[float, _Entry] | None = None
        for entry in self.entries:
            p = entry.probe
            if (p.scope, p.model, p.endpoint, p.params) != (
                probe.scope,
                probe.model,
                probe.endpoint,
                probe.params,
            ):
                continue
            similarity = sum(a * b for a, b in zip(vector, entry.vector, strict=True))
            if similarity >= threshold and (best is None or similarity > best[0]):
                best = (similarity, entry)
        if best is None:
            return None, vector
        return SemanticHit(best[1].value, best[0], best[1].entry_id), vector

    async def add(self, probe: Probe, vector: Vector, value: bytes, *, ttl_s: float) -> None:
        self.entries.append(_Entry(probe, vector, value, self.clock, str(len(self.entries))))

    async def drop(self, selector: Selector) -> int:
        keep = [
            e
            for e in self.entries
            if not (
                (selector.model is None or e.probe.model == selector.model)
                and (selector.scope is None or e.probe.scope == selector.scope)
                and (selector.older_than is None or e.stored_at < selector.older_than)
            )
        ]
        dropped = len(self.entries) - len(keep)
        self.entries = keep
        return dropped


async def embed_words(svc: object, ctx: object, model: str, text: str) -> Vector:
    """A ``Services.cache_embed`` for tests: no model call, a bag of words."""
    return bag_of_words(text)
