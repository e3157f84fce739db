"""Webhook delivery: one JSON ``POST`` per webhook, a deadline per attempt, retries with
back-off. Errors are described without the URL (webhook URLs carry their credential)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiohttp
import orjson

from sluice.alerts.model import Alert, Delivery
from sluice.alerts.payload import slack_payload
from sluice.config.alerts import AlertEvent, WebhookConfig

Sleep = Callable[[float], Awaitable[None]]
MAX_BACKOFF_S = 30.0
_READ_LIMIT = 64 * 1024

EVENT_OF: dict[str, AlertEvent | None] = {
    "budget": "budget",
    "breaker_open": "breaker",
    "breaker_resolved": "breaker",
    "test": None,
}
"""The webhook event an alert kind belongs to; ``None``: every webhook (test alerts)."""


@dataclass(frozen=True, slots=True)
class Attempted:
    """What delivering to one webhook came to."""

    ok: bool
    attempts: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What delivering one alert to every webhook it goes to came to."""

    delivery: Delivery
    attempts: int
    last_error: str | None
    webhooks: tuple[str, ...]
    """The names of the webhooks it was sent to (or tried)."""


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class WebhookSender:
    """Posts alerts to the configured webhooks through the process's shared session.

    ``sleep`` waits between attempts (tests pass one that does not wait on wall time).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        webhooks: Sequence[tuple[str, WebhookConfig]],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = session
        self._webhooks = list(webhooks)
        self._sleep = sleep

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._webhooks]

    def targets(self, alert: Alert, *, only: str | None = None) -> list[tuple[str, WebhookConfig]]:
        """The webhooks subscribed to the alert's kind (``only``: just that one, by name)."""
        event = EVENT_OF[alert.kind]
        return [
            (name, hook)
            for name, hook in self._webhooks
            if (only is None or name == only) and (event is None or event in hook.events)
        ]

    async def deliver(self, alert: Alert, *, only: str | None = None) -> DeliveryResult:
        """Send ``alert`` to each of its webhooks in turn; never raises for a delivery
        failure (it is the result)."""
        targets = self.targets(alert, only=only)
        if not targets:
            return DeliveryResult("no_webhook", 0, None, ())
        body = orjson.dumps(slack_payload(alert))
        attempts, errors = 0, []
        for name, hook in targets:
            outcome = await self.post(hook, body)
            attempts += outcome.attempts
            if not outcome.ok:
                errors.append(f"{name}: {outcome.error}")
        names = tuple(name for name, _ in targets)
        if errors:
            return DeliveryResult("failed", attempts, "; ".join(errors), names)
        return DeliveryResult("sent", attempts, None, names)

    async def post(self, hook: WebhookConfig, body: bytes) -> Attempted:
        """``body`` to one webhook: up to ``1 + hook.retries`` attempts of at most
        ``hook.timeout_s`` each. Connection errors, timeouts, 429 and 5xx are retried
        (after ``backoff_s``, doubling, or the answer's ``Retry-After``; at most 30 s);
        other answers are final."""
        url = hook.url.resolve()
        if not url:
            return Attempted(False, 0, f"environment variable {hook.url.env_name} is not set")
        if not url.startswith(("http://", "https://")):
            return Attempted(False, 0, "the URL does not start with http:// or https://")
        error = "not attempted"
        wait: float | None = None
        for attempt in range(hook.retries + 1):
            if attempt:
                backoff = hook.backoff_s * 2 ** (attempt - 1)
                await self._sleep(min(MAX_BACKOFF_S, max(backoff, wait or 0.0)))
            wait = None
            try:
                async with asyncio.timeout(hook.timeout_s):
                    async with self._session.post(
                        url,
                        data=body,
                        headers={"content-type": "application/json"},
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=hook.timeout_s),
                    ) as resp:
                        await resp.content.read(_READ_LIMIT)
                        status = resp.status
                        wait = _retry_after(resp.headers.get("retry-after"))
            except TimeoutError:
                error = f"timed out after {hook.timeout_s:g} s"
                continue
            except aiohttp.ClientConnectorError as exc:
                error = f"could not connect to {exc.host}:{exc.port}"
                continue
            except aiohttp.ClientError as exc:
                error = f"connection failed ({type(exc).__name__})"
                continue
            if 200 <= status < 300:
                return Attempted(True, attempt + 1)
            error = f"HTTP {status}"
            if status != 429 and status < 500:
                return Attempted(False, attempt + 1, error)
        return Attempted(False, hook.retries + 1, error)
