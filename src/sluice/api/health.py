"""Liveness and readiness probes (no authentication; they reveal nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from sluice.api.render import JSON_CT, Receive, Scope, Send, send_error, send_json
from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError
from sluice.lifecycle import Lifecycle, Phase
from sluice.routing.report import deployment_report
from sluice.routing.router import Router

PROBE_TIMEOUT_S = 2.0


async def live(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, b'{"status":"ok"}', [JSON_CT])


class Readiness:
    """Ready when the process serves (not starting, not draining: ``sluice.lifecycle``) and
    every configured backing service answers. The body names what is missing."""

    def __init__(
        self, checks: dict[str, Callable[[], Awaitable[object]]], lifecycle: Lifecycle
    ) -> None:
        self._checks = checks
        self._lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        life = self._lifecycle
        if life.phase is Phase.DRAINING:  # answer at once: the drain is what matters
            body: dict[str, str] = {"status": "shutting down"}
            await send_json(send, 503, orjson.dumps(body), [JSON_CT])
            return
        report: dict[str, str] = {}
        ok = life.ready
        for name, check in self._checks.items():
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await check()
                report[name] = "ok"
            except Exception as exc:
                ok = False
                report[name] = f"unavailable ({type(exc).__name__})"
        if life.phase is Phase.STARTING:
            # The cause stays in the log: an unauthenticated probe reveals no address.
            body = {"status": "starting", "waiting_for": life.waiting_for}
        else:
            body = {"status": "ready" if ok else "not ready"}
        body.update(report)
        await send_json(send, 200 if ok else 503, orjson.dumps(body), [JSON_CT])


class DeploymentHealth:
    """``GET /health`` (admin): every deployment with its breaker, cool-down, in-flight
    count, latency averages and error rate as this process sees them."""

    def __init__(self, router: Router, authenticate: Callable[[Scope], Principal]) -> None:
        self._router = router
        self._authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            principal = self._authenticate(scope)
            if not principal.is_admin:
                raise GatewayError(ErrorKind.CALLER_FORBIDDEN, "GET /health needs an admin key")
        except GatewayError as exc:
            await send_error(send, exc, [])
            return
        body = deployment_report(self._router)
        await send_json(send, 200, orjson.dumps(body), [JSON_CT])
