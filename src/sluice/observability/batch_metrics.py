"""Prometheus series of the batch worker: lines ended (by outcome), lines running, batches
ended (by status). The requests of batch lines are also in the request series, like any
request (their usage rows carry the batch id). Labels come from closed sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BatchMetrics:
    """The worker's :class:`~sluice.batches.worker.Observer`."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        """``registry``: ``None`` in multiprocess mode (the default registry's files)."""
        self.lines = Counter(
            "sluice_batch_lines_total",
            "Batch lines ended (completed, failed) or put back to wait (budget, rate_limit, "
            "again).",
            ("outcome",),
            registry=registry,
        )
        self.running_lines = Gauge(
            "sluice_batch_lines_running",
            "Batch lines running in this process.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.batches = Counter(
            "sluice_batches_ended_total",
            "Batches ended, by final status.",
            ("status",),
            registry=registry,
        )

        self.delegated_batches = Counter(
            "sluice_batches_delegated_total",
            "Batches delegated to a provider's batch API, by step reached (submitted, "
            "collected, refused).",
            ("status",),
            registry=registry,
        )

    def delegated(self, status: str) -> None:
        self.delegated_batches.labels(status).inc()

    def line(self, outcome: str) -> None:
        self.lines.labels(outcome).inc()

    def running(self, lines: int) -> None:
        self.running_lines.set(lines)

    def ended(self, status: str) -> None:
        self.batches.labels(status).inc()
