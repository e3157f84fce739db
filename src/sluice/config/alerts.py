"""The ``alerts:`` section of the gateway config: budget thresholds, breaker events, webhooks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.config.secrets import SecretRef

AlertEvent = Literal["budget", "breaker"]
"""What a webhook subscribes to: budget thresholds, or breaker opened / recovered."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WebhookConfig(_Frozen):
    """One receiver of alerts: a URL taking a Slack-compatible JSON ``POST``."""

    url: SecretRef
    """``env:NAME`` or a literal ``http(s)://`` URL. Webhook URLs carry their credential
    (Slack's do), so the URL is never logged, shown or stored with an alert."""
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """How delivery errors and the test route name this webhook; ``webhook-N`` (its
    position, from 1) when omitted."""
    events: Annotated[tuple[AlertEvent, ...], Field(min_length=1)] = ("budget", "breaker")
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    """Deadline of one delivery attempt (connect, send, answer)."""
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Extra attempts after a connection error, a timeout, a 429 or a 5xx answer; a
    4xx answer is final."""
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 1.0
    """Wait before the first retry, doubling for each next one (at most 30 s)."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretRef) -> SecretRef:
        if value.env_name is None:
            raw = value.resolve() or ""
            if not raw.startswith(("http://", "https://")):
                raise ValueError("url must be env:NAME or start with http:// or https://")
        return value


class AlertsConfig(_Frozen):
    """When alerts fire and where they are sent. Every alert is also kept in the database
    and listed by ``GET /api/v1/alerts``, with or without webhooks."""

    budget_thresholds_pct: tuple[Annotated[int, Field(ge=1, le=1000)], ...] = (50, 80, 100)
    """Shares of a budget's limit (in percent) that fire an alert once per budget period
    each."""
    check_interval_s: Annotated[float, Field(gt=0, le=3600)] = 15.0
    """How often every configured budget's spend is compared with its thresholds."""
    breaker_poll_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """How often the deployments' circuit breakers are looked at (in memory, no I/O)."""
    breaker_resolved: bool = True
    """Also alert when an opened breaker has closed again."""
    webhooks: tuple[WebhookConfig, ...] = ()

    @field_validator("budget_thresholds_pct")
    @classmethod
    def _distinct(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(value)) != len(value):
            raise ValueError("thresholds must be distinct")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        names = self.webhook_names()
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValueError(f"webhooks[{i}].name: {name!r} is already used")
        return self

    def webhook_names(self) -> list[str]:
        return [w.name or f"webhook-{i}" for i, w in enumerate(self.webhooks, 1)]
