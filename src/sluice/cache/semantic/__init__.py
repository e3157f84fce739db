"""The semantic response cache's index (docs/caching-semantic.md).

:func:`build_semantic_index` is what the composition root calls; :func:`run_sweeps` is the
background task (in the lifespan's task group) that removes expired entries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sluice.cache.semantic.embed import PipelineEmbedder
from sluice.cache.semantic.index import SemanticCache, SemanticLimits
from sluice.clock import Clock
from sluice.pipeline.services import Services
from sluice.storage.semantic import SemanticRepository
from sluice.usage.event import UsageEvent

__all__ = ["SemanticCache", "SemanticLimits", "build_semantic_index", "run_sweeps"]

log = logging.getLogger("sluice.cache")


def build_semantic_index(
    *,
    services: Services,
    repo: SemanticRepository,
    record: Callable[[UsageEvent], None],
    embedding_model: str,
    clock: Clock,
    limits: SemanticLimits | None = None,
    embed_timeout_s: float = 5.0,
) -> SemanticCache:
    """The semantic index over ``repo`` (``Storage.semantic``), embedding prompts with the
    gateway's public model ``embedding_model`` through the pipeline (usage rows to
    ``record``, the usage writer's)."""
    embedder = PipelineEmbedder(services, embedding_model, record=record, timeout_s=embed_timeout_s)
    return SemanticCache(repo, embedder, clock=clock, limits=limits)


async def run_sweeps(index: SemanticCache, *, clock: Clock, interval_s: float = 60.0) -> None:
    """Sweep every ``interval_s`` until cancelled; a failed sweep is logged and retried at
    the next interval."""
    while True:
        await clock.sleep(interval_s)
        try:
            await index.sweep()
        except Exception:
            log.warning("semantic cache sweep failed", exc_info=True)
