"""Alerts: budget thresholds and circuit-breaker events, recorded once in the database
(whichever replica sees them first) and sent to webhooks as Slack-compatible JSON.

Parts: :mod:`~sluice.alerts.budget` and :mod:`~sluice.alerts.breaker` (the watches),
:mod:`~sluice.alerts.webhook` (delivery), :mod:`~sluice.alerts.payload` (the body),
:mod:`~sluice.alerts.service` (the loops). Semantics: ``docs/alerts.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import aiohttp

from sluice.alerts.breaker import BreakerWatch, WatchedDeployment
from sluice.alerts.budget import BudgetOwner, BudgetWatch, owners_of
from sluice.alerts.model import ALERT_KINDS, Alert, AlertKind, AlertQuery, AlertRepository
from sluice.alerts.service import AlertService
from sluice.alerts.webhook import Sleep, WebhookSender
from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetStore
from sluice.clock import Clock
from sluice.config.alerts import AlertsConfig
from sluice.routing.breaker import BreakerState

__all__ = [
    "ALERT_KINDS",
    "Alert",
    "AlertKind",
    "AlertQuery",
    "AlertRepository",
    "AlertService",
    "BreakerWatch",
    "BudgetOwner",
    "BudgetWatch",
    "WatchedDeployment",
    "WebhookSender",
    "build_alert_service",
    "owners_of",
]


def build_alert_service(
    config: AlertsConfig,
    *,
    repo: AlertRepository,
    session: aiohttp.ClientSession,
    budgets: BudgetStore,
    principals: Callable[[], Iterable[Principal]],
    breaker_state: Callable[[str], BreakerState],
    deployments: Sequence[WatchedDeployment],
    clock: Clock,
    sleep: Sleep | None = None,
) -> AlertService:
    """The alert service for one process, from the ``alerts:`` config section. Webhook
    retries back off on ``clock`` unless ``sleep`` is given."""
    sender = WebhookSender(
        session,
        list(zip(config.webhook_names(), config.webhooks, strict=True)),
        sleep=sleep or clock.sleep,
    )
    return AlertService(
        repo,
        sender,
        budgets=BudgetWatch(
            repo,
            budgets,
            lambda: owners_of(principals()),
            thresholds=config.budget_thresholds_pct,
            clock=clock,
        ),
        breakers=BreakerWatch(
            repo, breaker_state, deployments, clock=clock, resolved=config.breaker_resolved
        ),
        clock=clock,
        check_interval_s=config.check_interval_s,
        breaker_poll_s=config.breaker_poll_s,
    )
