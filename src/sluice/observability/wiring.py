"""Builds the process's observability from settings and config, for the lifespan: the
redactor (and the log filter that uses it), metrics with their sources, tracing, the access
log, and the ``GET /metrics`` endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sluice.config.model import GatewayConfig
from sluice.observability.cache_metrics import CacheTotals
from sluice.observability.live import Live
from sluice.observability.logging import AccessLog, install_redaction
from sluice.observability.metrics import Metrics, Sources
from sluice.observability.redact import Redactor
from sluice.observability.tracing import Tracing, build_tracing
from sluice.routing.breaker import Breakers
from sluice.routing.table import ModelTable
from sluice.settings import Settings
from sluice.usage.event import UsageEvent
from sluice.usage.writer import UsageWriter

log = logging.getLogger("sluice.observability")

SAMPLE_INTERVAL_S = 1.0


def config_secrets(config: GatewayConfig) -> list[str]:
    """Every credential value the config resolves to (masked by value in logs)."""
    out: list[str] = []
    for provider in config.providers.values():
        for ref in provider.secret_refs():
            value = ref.resolve()
            if value:
                out.append(value)
        out.extend(provider.headers.values())
    return out


@dataclass
class Observability:
    """Owned by the runtime; :meth:`close` at shutdown."""

    redactor: Redactor
    metrics: Metrics
    tracing: Tracing | None
    live: Live
    access_log: bool
    _closed: bool = field(default=False, repr=False)

    def observers(self) -> list[Callable[[list[UsageEvent]], None]]:
        """Usage-writer observers, in order: redaction first (rows, metrics and log lines
        see masked text), then metrics, then the access log."""
        out: list[Callable[[list[UsageEvent]], None]] = [self._redact, self.metrics.observe]
        if self.access_log:
            out.append(AccessLog())
        return out

    def _redact(self, events: list[UsageEvent]) -> None:
        redact = self.redactor
        for ev in events:
            if ev.error_message:
                ev.error_message = redact(ev.error_message)
            if ev.error_param:
                ev.error_param = redact(ev.error_param)

    async def sample_forever(self) -> None:
        """Copy gauges into the metrics every second (for the other workers' scrapes)."""
        while True:
            try:
                self.metrics.sample()
            except Exception:
                log.warning("metrics sampling failed", exc_info=True)
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.tracing is not None:
            self.tracing.shutdown()
        self.metrics.close()


def _multiprocess_dir(settings: Settings) -> str | None:
    if not settings.metrics_dir:
        return None
    from prometheus_client import values

    if values.ValueClass is values.MutexValue:
        log.error(
            "SLUICE_METRICS_DIR is set but PROMETHEUS_MULTIPROC_DIR was not set when the "
            "process started; serving this process's metrics only"
        )
        return None
    return settings.metrics_dir


def build_observability(
    settings: Settings,
    config: GatewayConfig,
    *,
    table: ModelTable,
    writer: UsageWriter,
    breakers: Breakers,
    cache: CacheTotals | None = None,
) -> Observability:
    """``cache``: the response cache's totals, when one is configured."""
    redactor = Redactor(config_secrets(config))
    if settings.master_key:
        redactor.add([settings.master_key])
    if settings.secret_key:
        redactor.add([settings.secret_key.get_secret_value()])
    install_redaction(redactor)
    deployments = [d for e in table.entries for d in e.deployments]
    mc = config.observability.metrics
    metrics = Metrics(
        model_label=table.canonical,
        provider_of={d.key: d.provider_name for d in deployments},
        multiprocess_dir=_multiprocess_dir(settings),
        team_label=mc.team_label,
        key_label=mc.key_label,
    )
    live = Live()

    def breaker_states() -> Iterable[tuple[str, str]]:
        return [(d.key, breakers.state(d.key).state) for d in deployments]

    metrics.attach(
        Sources(
            active_streams=lambda: live.streams,
            queue_depth=lambda: writer.pending,
            writer_totals=lambda: (
                writer.written,
                writer.flush_errors,
                writer.dropped,
                writer.dead_lettered,
            ),
            breakers=breaker_states,
            cache=cache,
        )
    )
    tracing = None
    with contextlib.suppress(Exception):
        tracing = build_tracing(settings.otlp_endpoint, service_name=settings.otel_service_name)
    if settings.otlp_endpoint and tracing is None:
        log.error("could not set up OTLP export to %s; tracing is off", settings.otlp_endpoint)
    obs = Observability(
        redactor=redactor,
        metrics=metrics,
        tracing=tracing,
        live=live,
        access_log=settings.access_log,
    )
    for observer in obs.observers():
        writer.observe(observer)
    return obs
