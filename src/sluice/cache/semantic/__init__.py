"""The semantic response cache's index (docs/caching-semantic.md).

:func:`build_semantic_index` is what the composition root calls; :func:`run_sweeps` is the
background task (in the lifespan's task group) that removes expired entries. The prompts'
embeddings come from ``sluice.pipeline.cache_embed`` (the cache stage hands them to
:meth:`SemanticCache.find` as its ``embed``).
"""

from __future__ import annotations

import logging

from sluice.cache.semantic.index import SemanticCache, SemanticLimits
from sluice.clock import Clock
from sluice.storage.base import SemanticRepository

__all__ = ["SemanticCache", "SemanticLimits", "build_semantic_index", "run_sweeps"]

log = logging.getLogger("sluice.cache")


def build_semantic_index(
    *,
    repo: SemanticRepository,
    embedding_model: str,
    clock: Clock,
    limits: SemanticLimits | None = None,
) -> SemanticCache:
    """The semantic index over ``repo`` (``Storage.semantic``) for prompts embedded by the
    gateway's public model ``embedding_model``."""
    return SemanticCache(repo, embedding_model=embedding_model, clock=clock, limits=limits)


async def run_sweeps(index: SemanticCache, *, clock: Clock, interval_s: float = 60.0) -> None:
    """Sweep every ``interval_s`` until cancelled; a failed sweep is logged and retried at
    the next interval."""
    while True:
        await clock.sleep(interval_s)
        try:
            await index.sweep()
        except Exception:
            log.warning("semantic cache sweep failed", exc_info=True)
