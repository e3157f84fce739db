"""The alert service: the two watches on their intervals, and delivery off their loops.

Runs in the lifespan's task group (:meth:`AlertService.run`); nothing here is on the data
plane. An alert is delivered by the replica whose insert recorded it, from an in-process
queue, so a slow webhook delays other alerts' delivery but never a check or a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace

from sluice.alerts.breaker import BreakerWatch
from sluice.alerts.budget import BudgetWatch
from sluice.alerts.model import Alert, AlertRepository
from sluice.alerts.webhook import DeliveryResult, WebhookSender
from sluice.clock import Clock
from sluice.outage import OutageLog
from sluice.tasks import spawn_in

log = logging.getLogger("sluice.alerts")

QUEUE_SIZE = 1000


class AlertService:
    def __init__(
        self,
        repo: AlertRepository,
        sender: WebhookSender,
        *,
        budgets: BudgetWatch,
        breakers: BreakerWatch,
        clock: Clock,
        check_interval_s: float,
        breaker_poll_s: float,
    ) -> None:
        self.repo = repo
        self.sender = sender
        self._budgets = budgets
        self._breakers = breakers
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._breaker_poll_s = breaker_poll_s
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_SIZE)

    async def check_budgets(self) -> list[Alert]:
        """One budget pass; what it recorded is queued for delivery."""
        return await self._queued(await self._budgets.check())

    async def check_breakers(self) -> list[Alert]:
        """One look at every breaker; what it recorded is queued for delivery."""
        return await self._queued(await self._breakers.check())

    async def _queued(self, alerts: list[Alert]) -> list[Alert]:
        for alert in alerts:
            log.warning("alert %s: %s", alert.kind, alert.message)
            try:
                self._queue.put_nowait(alert)
            except asyncio.QueueFull:
                await self._record(alert, DeliveryResult("failed", 0, "delivery queue full", ()))
        return alerts

    async def deliver(self, alert: Alert, *, only: str | None = None) -> Alert:
        """Send one alert to its webhooks and record how that went; the updated alert."""
        result = await self.sender.deliver(alert, only=only)
        return await self._record(alert, result)

    async def _record(self, alert: Alert, result: DeliveryResult) -> Alert:
        if result.delivery == "failed":
            log.warning("alert %s was not delivered: %s", alert.id, result.last_error)
        at = self._clock.now() if result.delivery == "sent" else None
        if alert.id is not None:
            await self.repo.record_delivery(
                alert.id,
                delivery=result.delivery,
                attempts=result.attempts,
                last_error=result.last_error,
                at=at,
            )
        return replace(
            alert,
            delivery=result.delivery,
            attempts=result.attempts,
            last_error=result.last_error,
            delivered_at=at,
        )

    async def drain(self) -> None:
        """Deliver everything queued now (what the delivery loop does; for tests and for
        shutdown)."""
        while not self._queue.empty():
            await self.deliver(self._queue.get_nowait())

    async def send_test(self, *, only: str | None = None) -> Alert:
        """Record a test alert and deliver it now, to every webhook or to ``only``."""
        names = ", ".join([only] if only else self.sender.names) or "no webhook"
        alert = await self.repo.insert_if_absent(
            Alert(
                kind="test",
                dedupe_key=f"test:{os.urandom(8).hex()}",
                message=f"test alert from the Sluice admin API (to {names})",
                created_at=self._clock.now(),
            )
        )
        assert alert is not None  # a fresh random key never exists
        return await self.deliver(alert, only=only)

    async def run(self) -> None:
        """Check budgets every ``check_interval_s``, breakers every ``breaker_poll_s``, and
        deliver what they record, until cancelled."""
        async with asyncio.TaskGroup() as group:
            budgets = self._every(self._check_interval_s, self.check_budgets, task="budgets")
            breakers = self._every(self._breaker_poll_s, self.check_breakers, task="breakers")
            spawn_in(group, budgets, name="alerts-budgets")
            spawn_in(group, breakers, name="alerts-breakers")
            await self._deliver_loop()

    async def _every(
        self, interval_s: float, step: Callable[[], Awaitable[object]], *, task: str
    ) -> None:
        outage = OutageLog(
            log, f"alert check ({task})", meanwhile="retrying every interval", clock=self._clock
        )
        while True:
            try:
                await step()
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
            _raise_if_cancelled()
            await asyncio.sleep(interval_s)

    async def _deliver_loop(self) -> None:
        outage = OutageLog(
            log, "alert delivery", meanwhile="deliveries are not recorded", clock=self._clock
        )
        while True:
            alert = await self._queue.get()
            try:
                await self.deliver(alert)
            except Exception as exc:
                outage.failed(exc)
            else:
                outage.succeeded()
            _raise_if_cancelled()


def _raise_if_cancelled() -> None:
    """Honour a cancellation a client library lost (redis-py on Python 3.11 can drop one
    that lands as a reply arrives, CPython gh-86296), so shutdown never waits on this loop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
