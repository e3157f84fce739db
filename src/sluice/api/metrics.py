"""``GET /metrics``: the Prometheus text format, behind ``SLUICE_METRICS_AUTH``."""

from __future__ import annotations

import asyncio

from sluice.api.render import Receive, Scope, Send, send_error, send_json
from sluice.auth.cache import KeyCache, token_from_headers
from sluice.errors import ErrorKind, GatewayError
from sluice.observability.metrics import CONTENT_TYPE, Metrics


class MetricsRoute:
    """``auth``: ``admin`` (master or admin key), ``key`` (any valid key) or ``none``."""

    def __init__(self, metrics: Metrics, keys: KeyCache, *, auth: str) -> None:
        self._metrics = metrics
        self._keys = keys
        self._auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            self._authorize(scope)
        except GatewayError as exc:
            await send_error(send, exc, [])
            return
        self._metrics.sample()
        # Reading every worker's files is file I/O: keep it off the event loop.
        body = await asyncio.to_thread(self._metrics.render)
        await send_json(send, 200, body, [(b"content-type", CONTENT_TYPE.encode())])

    def _authorize(self, scope: Scope) -> None:
        if self._auth == "none":
            return
        authorization = x_api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"x-api-key":
                x_api_key = value
        principal = self._keys.authenticate(token_from_headers(authorization, x_api_key), scope)
        if self._auth == "admin" and not principal.is_admin:
            raise GatewayError(
                ErrorKind.CALLER_FORBIDDEN,
                "/metrics needs the master key or an admin key (SLUICE_METRICS_AUTH=admin)",
            )
