"""Liveness and readiness probes (no authentication; they reveal nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from sluice.api.render import JSON_CT, Receive, Scope, Send, send_json

PROBE_TIMEOUT_S = 2.0


async def live(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, b'{"status":"ok"}', [JSON_CT])


class Readiness:
    """Ready when accepting traffic and every configured backing service answers."""

    def __init__(self, checks: dict[str, Callable[[], Awaitable[object]]]) -> None:
        self._checks = checks
        self.accepting = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        report: dict[str, str] = {}
        ok = self.accepting
        for name, check in self._checks.items():
            try:
                async with asyncio.timeout(PROBE_TIMEOUT_S):
                    await check()
                report[name] = "ok"
            except Exception as exc:
                ok = False
                report[name] = f"unavailable ({type(exc).__name__})"
        body = {"status": "ready" if ok else "not ready", **report}
        if not self.accepting:
            body["status"] = "shutting down"
        await send_json(send, 200 if ok else 503, orjson.dumps(body), [JSON_CT])
