"""The webhook body: Slack-compatible JSON (``text`` always, Block Kit ``blocks`` for Slack)
plus the alert's structured fields under ``sluice`` for other receivers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.alerts.model import Alert, AlertKind

_TITLES: dict[AlertKind, str] = {
    "budget": "Budget threshold reached",
    "breaker_open": "Circuit breaker opened",
    "breaker_resolved": "Circuit breaker recovered",
    "test": "Test alert",
}


def iso(ts: float | int | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def structured(alert: Alert) -> dict[str, Any]:
    """The alert as plain JSON values (no delivery state: it is being delivered)."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "created_at": iso(alert.created_at),
        "scope": alert.scope,
        "org_id": alert.org_id,
        "team_id": alert.team_id,
        "user_id": alert.user_id,
        "deployment": alert.deployment,
        "period": alert.period,
        "period_start": iso(alert.period_start) if alert.period_start is not None else None,
        "threshold_pct": alert.threshold_pct,
        "limit_usd": alert.limit_micros / 1e6 if alert.limit_micros is not None else None,
        "spent_usd": alert.spent_micros / 1e6 if alert.spent_micros is not None else None,
        "details": alert.details,
    }


def _facts(alert: Alert) -> list[tuple[str, str]]:
    rows: list[tuple[str, str | None]] = [
        ("Scope", alert.scope),
        ("Deployment", alert.deployment),
        ("Period", alert.period),
        ("Threshold", f"{alert.threshold_pct}%" if alert.threshold_pct is not None else None),
    ]
    return [(label, value) for label, value in rows if value]


def slack_payload(alert: Alert) -> dict[str, Any]:
    """``{"text", "blocks", "sluice"}``: Slack shows ``blocks`` and uses ``text`` for
    notifications; receivers that are not Slack read ``text`` or ``sluice``."""
    title = _TITLES[alert.kind]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _escape(alert.message)}},
    ]
    facts = _facts(alert)
    if facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"}
                    for label, value in facts
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Sluice alert {alert.id} · {iso(alert.created_at)}"}
            ],
        }
    )
    return {"text": f"[Sluice] {alert.message}", "blocks": blocks, "sluice": structured(alert)}


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
