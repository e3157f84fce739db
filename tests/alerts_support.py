"""A real webhook receiver on loopback and builders for alert services over real storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from sluice.alerts import AlertService, WatchedDeployment, build_alert_service
from sluice.auth.principal import Principal
from sluice.budgets.base import BudgetStore
from sluice.budgets.spec import BudgetSpec
from sluice.clock import FakeClock
from sluice.config.alerts import AlertsConfig
from sluice.routing.breaker import CLOSED_STATE, BreakerState

# 2026-03-10 00:00:00 UTC, a Tuesday: "day" periods start here.
DAY_START = 1_773_100_800.0


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200) and keeps the bodies."""

    url: str = ""
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    hits: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a body was accepted."""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        status = self.statuses.pop(0) if self.statuses else 200
        if status < 300:
            self.bodies.append(orjson.loads(await request.read()))
            self.arrived.set()
        return web.Response(status=status, text="ok" if status < 300 else "no")


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{secret}", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/hook/s3cr3t-token"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def principal_with(*budgets: tuple[str, BudgetSpec], **ids: str) -> Principal:
    return Principal(key_id=ids.pop("key_id", "k1"), name="k", budget_checks=budgets, **ids)


def make_service(
    *,
    repo: Any,
    session: aiohttp.ClientSession,
    budgets: BudgetStore,
    clock: FakeClock,
    principals: list[Principal] | None = None,
    breakers: Any = None,
    deployments: list[WatchedDeployment] | None = None,
    config: dict[str, Any] | None = None,
    waits: FakeClock | None = None,
) -> AlertService:
    """``waits``: the clock the webhook back-off sleeps on (its own by default, so the back-off
    records its waits without moving ``clock``)."""

    def state(key: str) -> BreakerState:
        return breakers.state(key) if breakers is not None else CLOSED_STATE

    return build_alert_service(
        AlertsConfig.model_validate(config or {}),
        repo=repo,
        session=session,
        budgets=budgets,
        principals=lambda: principals or [],
        breaker_state=state,
        deployments=deployments or [],
        clock=clock,
        sleep=(waits or FakeClock()).sleep,
    )
