"""An alert, its delivery state, and the storage seam that keeps each alert once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

AlertKind = Literal["budget", "breaker_open", "breaker_resolved", "test"]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)

Delivery = Literal["pending", "sent", "failed", "superseded", "no_webhook"]
"""``pending``: waiting to be sent (or its replica stopped first); ``sent``: every webhook
answered 2xx; ``failed``: a webhook did not, after its retries (``last_error`` says which and
why); ``superseded``: a higher threshold of the same budget fired in the same check, and only
that one was sent; ``no_webhook``: no webhook subscribes to this kind of alert."""


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator should hear about, recorded once (``dedupe_key``) however many
    replicas notice it."""

    kind: AlertKind
    dedupe_key: str
    """Unique across all alerts: ``budget:{scope}:{period}:{start}:{pct}``,
    ``breaker_open:{deployment}:{cool-down end ms}``, ``breaker_resolved:{open alert id}``."""
    message: str
    """One plain line for people (the webhook's ``text``)."""
    created_at: float
    scope: str | None = None
    """The budget's scope (``key:ID``, ``user:ID``, ``team:ID``, ``org:ID``)."""
    org_id: str | None = None
    """The organisation the scope belongs to (who may see the alert, see docs/alerts.md)."""
    team_id: str | None = None
    user_id: str | None = None
    deployment: str | None = None
    """The deployment key of a breaker alert."""
    period: str | None = None
    period_start: int | None = None
    """Epoch seconds the budget period started (0 for ``total``)."""
    threshold_pct: int | None = None
    limit_micros: int | None = None
    spent_micros: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    delivery: Delivery = "pending"
    attempts: int = 0
    """Delivery attempts over every webhook."""
    last_error: str | None = None
    delivered_at: float | None = None


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """A page of alerts, newest first. ``None`` filters match everything."""

    kinds: tuple[str, ...] | None = None
    scope: str | None = None
    since: float | None = None
    before_id: int | None = None
    limit: int = 100
    budget_only: bool = False
    """Only budget alerts (what non-admins may see)."""
    visible_orgs: frozenset[str] | None = None
    """With the next three: an alert matches when its org, team, user or scope is in one of
    them. ``None`` for all four: no visibility filter (admins)."""
    visible_teams: frozenset[str] | None = None
    visible_users: frozenset[str] | None = None
    visible_scopes: frozenset[str] | None = None


class AlertRepository(Protocol):
    """Alerts in the database. Every method is its own transaction."""

    async def insert_if_absent(self, alert: Alert) -> Alert | None:
        """Insert unless an alert with the same ``dedupe_key`` exists (a unique constraint
        decides between concurrent replicas). The stored alert, with its ``id``, when this
        call inserted it; ``None`` when it existed already."""
        ...

    async def record_delivery(
        self,
        alert_id: int,
        *,
        delivery: Delivery,
        attempts: int,
        last_error: str | None,
        at: float | None,
    ) -> None:
        """Set an alert's delivery outcome (``at``: when it was delivered, or ``None``)."""
        ...

    async def latest_breaker(self, deployment: str) -> Alert | None:
        """The newest ``breaker_open`` or ``breaker_resolved`` alert of a deployment."""
        ...

    async def list(self, query: AlertQuery) -> list[Alert]: ...
