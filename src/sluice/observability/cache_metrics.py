"""Prometheus series of the response cache: what it did per model (from the usage rows, so
every replica counts its own requests once), what the hits saved, and the store's own state
(bytes held, evictions, entries that did not decode, store failures), sampled from the cache.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from sluice.usage.event import UsageEvent

CacheTotals = Callable[[], tuple[int, int, int, int]]
"""(bytes held, evictions, corrupt entries, store failures) since start."""


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry | None, totals: CacheTotals) -> None:
        """``registry``: ``None`` in multiprocess mode (the default registry's files)."""
        self._totals = totals
        self._seen = (0, 0, 0)
        self.requests = Counter(
            "sluice_cache_requests_total",
            "Requests by what the response cache did (hit, miss, store, bypass).",
            ("model", "result"),
            registry=registry,
        )
        self.saved = Counter(
            "sluice_cache_saved_usd_total",
            "What cache hits would have cost, in USD.",
            ("model", "team"),
            registry=registry,
        )
        self.bytes = Gauge(
            "sluice_cache_bytes",
            "Bytes held by the in-process cache store (0 for Redis).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.evictions = Counter(
            "sluice_cache_evictions_total",
            "Entries evicted to keep the in-process store within its bytes.",
            registry=registry,
        )
        self.corrupt = Counter(
            "sluice_cache_corrupt_total",
            "Entries that did not decode: dropped, never returned.",
            registry=registry,
        )
        self.errors = Counter(
            "sluice_cache_errors_total",
            "Cache store or index calls that failed (each served as a miss).",
            registry=registry,
        )

    def observe(
        self, events: Iterable[UsageEvent], model: Callable[[str | None], str], *, team: bool
    ) -> None:
        results: Tally[tuple[str, str]] = Tally()
        saved: Tally[tuple[str, str]] = Tally()
        for ev in events:
            if ev.cache is None:
                continue
            name = model(ev.model)
            results[(name, ev.cache)] += 1
            if ev.cost_saved_micros:
                saved[(name, (ev.team_id or "") if team else "")] += ev.cost_saved_micros
        for labels, n in results.items():
            self.requests.labels(*labels).inc(n)
        for labels, micros in saved.items():
            self.saved.labels(*labels).inc(micros / 1e6)

    def sample(self) -> None:
        held, evictions, corrupt, errors = self._totals()
        self.bytes.set(held)
        old_evictions, old_corrupt, old_errors = self._seen
        if evictions > old_evictions:
            self.evictions.inc(evictions - old_evictions)
        if corrupt > old_corrupt:
            self.corrupt.inc(corrupt - old_corrupt)
        if errors > old_errors:
            self.errors.inc(errors - old_errors)
        self._seen = (evictions, corrupt, errors)
