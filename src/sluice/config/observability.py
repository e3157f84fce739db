"""The ``observability`` section of the gateway config (process-level switches such as the
log format and the OTLP endpoint are settings, ``SLUICE_*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MetricsConfig(BaseModel):
    """Label choices of the Prometheus series (label sets stay bounded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_label: bool = True
    """Label requests and cost with the caller's team id (``""`` when none)."""
    key_label: bool = False
    """Also export ``sluice_key_requests_total`` / ``sluice_key_cost_usd_total`` per key id
    (one series per key: only for deployments with few keys)."""


class ObservabilityConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    response_metadata: bool = False
    """Every OpenAI-shaped answer carries the ``sluice`` metadata object, as if the client
    sent ``x-sluice-metadata: true`` (a client's ``false`` still turns it off)."""
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
