"""Prometheus metrics.

Request series come from usage events, a batch at a time (a usage-writer observer): the
request path touches no metric. Gauges (active streams, breaker states, queue depth) and the
writer's counters are sampled from their owners once a second and at every scrape.

Several workers (``sluice serve --workers N``): ``prometheus_client``'s multiprocess mode.
``sluice serve`` makes a fresh directory per run and exports it as ``PROMETHEUS_MULTIPROC_DIR``
(read by ``prometheus_client`` when it is imported in each worker) and
``SLUICE_METRICS_DIR``; a scrape, whichever worker answers it, adds up every worker's files.

Labels are bounded: ``model`` is the public model name (``<prefix>*`` for wildcard routes,
``other`` for names the gateway does not serve), ``provider`` and ``deployment`` come from
the config, ``status`` and ``error_kind`` from closed sets, ``team`` from the directory
(``""`` for none; off with ``observability.metrics.team_label: false``). Key ids only with
``observability.metrics.key_label: true`` (``sluice_key_*`` series). MCP rows feed the
``sluice_mcp_*`` series only (``sluice.observability.mcp_metrics``).
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sluice.observability.batch_metrics import BatchMetrics
from sluice.observability.cache_metrics import CacheMetrics, CacheTotals
from sluice.observability.mcp_metrics import McpMetrics
from sluice.usage.event import MCP_ENDPOINTS, UsageEvent

log = logging.getLogger("sluice.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BREAKER_VALUES: Mapping[str, int] = {"closed": 0, "half_open": 1, "open": 2}
RATE_LIMITED = "policy_rate_limited"
BUDGET_REJECTED = "policy_budget_exceeded"
OTHER_MODEL = "other"


@dataclass(frozen=True, slots=True)
class Sources:
    """Where the sampled values come from (all cheap, synchronous reads)."""

    active_streams: Callable[[], int]
    queue_depth: Callable[[], int]
    writer_totals: Callable[[], tuple[int, int, int, int]]
    """(rows written, flush errors, rows dropped, rows dead-lettered) since start."""
    breakers: Callable[[], Iterable[tuple[str, str]]]
    """(deployment key, state name) of every configured deployment."""
    cache: CacheTotals | None = None
    """The response cache's own totals (``None``: no cache configured)."""


class Metrics:
    """Every series of the gateway, over one registry (or the multiprocess directory)."""

    def __init__(
        self,
        *,
        model_label: Callable[[str], str | None],
        provider_of: Mapping[str, str],
        multiprocess_dir: str | None = None,
        team_label: bool = True,
        key_label: bool = False,
    ) -> None:
        self._model_label = model_label
        self._provider_of = provider_of
        self._dir = multiprocess_dir
        self._team = team_label
        self._key = key_label
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "sluice_requests_total",
            "Client requests by outcome.",
            ("model", "provider", "status", "error_kind", "team"),
            registry=reg,
        )
        self.duration = Histogram(
            "sluice_request_duration_seconds",
            "Whole request time as the client saw it.",
            ("model", "provider"),
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.ttft = Histogram(
            "sluice_time_to_first_token_seconds",
            "Streams: time from the request to the first byte of the answer.",
            ("model", "provider"),
            buckets=TTFT_BUCKETS,
            registry=reg,
        )
        self.tokens = Counter(
            "sluice_tokens_total",
            "Tokens by direction (cached is the part of input read from a prompt cache).",
            ("model", "provider", "direction"),
            registry=reg,
        )
        self.cost = Counter(
            "sluice_cost_usd_total",
            "What answers cost, in USD.",
            ("model", "provider", "team"),
            registry=reg,
        )
        self.rate_limited = Counter(
            "sluice_rate_limited_total",
            "Requests refused by a gateway rate limit.",
            ("model",),
            registry=reg,
        )
        self.budget_rejected = Counter(
            "sluice_budget_rejected_total",
            "Requests refused by a budget.",
            ("model",),
            registry=reg,
        )
        self.attempts = Counter(
            "sluice_upstream_attempts_total",
            "Upstream attempts (retries and fallbacks included) by outcome (ok or error kind).",
            ("provider", "deployment", "outcome"),
            registry=reg,
        )
        self.active_streams = Gauge(
            "sluice_active_streams",
            "Streams being relayed now.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.breaker = Gauge(
            "sluice_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open (worst worker).",
            ("deployment",),
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.queue_depth = Gauge(
            "sluice_usage_queue_depth",
            "Usage rows waiting to be written.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.flush_errors = Counter(
            "sluice_usage_flush_errors_total", "Failed usage-row flushes.", registry=reg
        )
        self.rows_written = Counter(
            "sluice_usage_rows_written_total", "Usage rows written.", registry=reg
        )
        self.rows_dropped = Counter(
            "sluice_usage_rows_dropped_total",
            "Usage rows dropped: the buffer was full (database down for long), or a row "
            "the database refused could not be kept as a dead letter either.",
            registry=reg,
        )
        self.dead_letters = Counter(
            "sluice_usage_dead_letters",
            "Usage rows the database refused for their data, kept as dead letters "
            "(see /api/v1/usage/dead-letters).",
            registry=reg,
        )
        self.key_requests: Counter | None = None
        self.key_cost: Counter | None = None
        if key_label:
            self.key_requests = Counter(
                "sluice_key_requests_total", "Requests per gateway key.", ("key",), registry=reg
            )
            self.key_cost = Counter(
                "sluice_key_cost_usd_total", "Cost per gateway key, USD.", ("key",), registry=reg
            )
        self.mcp = McpMetrics(reg)
        """MCP rows are counted there, never in the model series."""
        self.batches = BatchMetrics(reg)
        """The batch worker's lines and batches."""
        self._reg = reg
        self.cache: CacheMetrics | None = None
        """The response cache's series, once a cache is attached."""
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._totals = (0, 0, 0, 0)
        self._sources: Sources | None = None

    def attach(self, sources: Sources) -> None:
        self._sources = sources
        if sources.cache is not None and self.cache is None:
            self.cache = CacheMetrics(self._reg, sources.cache)

    def _model(self, name: str | None) -> str:
        return (self._model_label(name) if name else None) or OTHER_MODEL

    def _histograms(self, model: str, provider: str) -> tuple[Any, Any]:
        pair = self._children.get((model, provider))
        if pair is None:
            pair = (self.duration.labels(model, provider), self.ttft.labels(model, provider))
            self._children[(model, provider)] = pair
        return pair

    def observe(self, events: Iterable[UsageEvent]) -> None:
        """Count a batch of finished requests (called by the usage writer)."""
        requests: Tally[tuple[str, str, str, str, str]] = Tally()
        tokens: Tally[tuple[str, str, str]] = Tally()
        cost: Tally[tuple[str, str, str]] = Tally()
        refused: Tally[tuple[str, str]] = Tally()
        attempts: Tally[tuple[str, str, str]] = Tally()
        keys: Tally[str] = Tally()
        key_cost: Tally[str] = Tally()
        mcp: list[UsageEvent] = []
        cached: list[UsageEvent] = []
        for ev in events:
            if ev.endpoint in MCP_ENDPOINTS:
                mcp.append(ev)
                continue
            if ev.cache is not None:
                cached.append(ev)
            model = self._model(ev.model)
            provider = ev.provider or ""
            team = (ev.team_id or "") if self._team else ""
            requests[(model, provider, str(ev.status), ev.error_kind or "", team)] += 1
            duration, ttft = self._histograms(model, provider)
            duration.observe(ev.latency_ms / 1000)
            if ev.streamed and ev.ttft_ms is not None:
                ttft.observe(ev.ttft_ms / 1000)
            if ev.prompt_tokens:
                tokens[(model, provider, "input")] += ev.prompt_tokens
            if ev.completion_tokens:
                tokens[(model, provider, "output")] += ev.completion_tokens
            if ev.cached_tokens:
                tokens[(model, provider, "cached")] += ev.cached_tokens
            if ev.cost_micros:
                cost[(model, provider, team)] += ev.cost_micros
            if ev.error_kind in (RATE_LIMITED, BUDGET_REJECTED):
                refused[(ev.error_kind, model)] += 1
            self._count_attempts(ev, attempts)
            if self._key and ev.key_id:
                keys[ev.key_id] += 1
                if ev.cost_micros:
                    key_cost[ev.key_id] += ev.cost_micros
        for request_labels, n in requests.items():
            self.requests.labels(*request_labels).inc(n)
        for token_labels, n in tokens.items():
            self.tokens.labels(*token_labels).inc(n)
        for cost_labels, micros in cost.items():
            self.cost.labels(*cost_labels).inc(micros / 1e6)
        for (kind, model), n in refused.items():
            target = self.rate_limited if kind == RATE_LIMITED else self.budget_rejected
            target.labels(model).inc(n)
        for attempt_labels, n in attempts.items():
            self.attempts.labels(*attempt_labels).inc(n)
        self._apart(mcp, cached)
        if self.key_requests is not None and self.key_cost is not None:
            for key, n in keys.items():
                self.key_requests.labels(key).inc(n)
            for key, micros in key_cost.items():
                self.key_cost.labels(key).inc(micros / 1e6)

    def _apart(self, mcp: list[UsageEvent], cached: list[UsageEvent]) -> None:
        """The series kept apart from the model ones: MCP rows, the response cache."""
        if mcp:
            self.mcp.observe(mcp)
        if cached and self.cache is not None:
            self.cache.observe(cached, self._model, team=self._team)

    def _count_attempts(self, ev: UsageEvent, out: Tally[tuple[str, str, str]]) -> None:
        failed = ev.attempt_errors or ()
        for item in failed:
            deployment, _, kind = item.rpartition(": ")
            out[(self._provider_of.get(deployment, ""), deployment, kind)] += 1
        if ev.attempts > len(failed) and ev.deployment:
            outcome = ev.error_kind or "ok"
            out[(ev.provider or "", ev.deployment, outcome)] += 1

    def sample(self) -> None:
        """Copy the gauges and the writer's counters from their owners."""
        src = self._sources
        if src is None:
            return
        self.active_streams.set(src.active_streams())
        self.queue_depth.set(src.queue_depth())
        for deployment, state in src.breakers():
            self.breaker.labels(deployment).set(BREAKER_VALUES.get(state, 0))
        written, errors, dropped, dead = src.writer_totals()
        old_written, old_errors, old_dropped, old_dead = self._totals
        if written > old_written:
            self.rows_written.inc(written - old_written)
        if errors > old_errors:
            self.flush_errors.inc(errors - old_errors)
        if dropped > old_dropped:
            self.rows_dropped.inc(dropped - old_dropped)
        if dead > old_dead:
            self.dead_letters.inc(dead - old_dead)
        self._totals = (written, errors, dropped, dead)
        if self.cache is not None:
            self.cache.sample()

    def render(self) -> bytes:
        """The exposition text: this process's registry, or every worker's files."""
        if self._dir is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def close(self) -> None:
        """Remove this worker's live gauges from the multiprocess directory."""
        if self._dir is None:
            return
        import os

        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid(), self._dir)  # type: ignore[no-untyped-call]
