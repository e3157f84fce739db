"""The Anthropic-compatible routes: ``POST /v1/messages`` and ``/v1/messages/count_tokens``."""

from __future__ import annotations

import orjson

from sluice.api.dataplane import DataPlane, new_request_id
from sluice.api.render import (
    JSON_CT,
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    read_body,
    send_error,
    send_json,
)
from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.dialects.messages import MessagesDialect, count_tokens

FORWARDED = (b"anthropic-version", b"anthropic-beta")
"""Request headers passed on when the provider speaks Messages natively."""


class MessagesRoutes:
    def __init__(self, plane: DataPlane, *, max_body_bytes: int) -> None:
        self._plane = plane
        self._dialect = MessagesDialect()
        self._limit = max_body_bytes

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, self._dialect, forward=FORWARDED)

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The gateway's own estimate; no upstream call, no usage row."""
        base = [(b"x-request-id", new_request_id().encode())]
        dialect = self._dialect
        try:
            principal, length = await self._plane.caller(scope)
            if length is not None and length > self._limit:
                raise BodyTooLarge
            raw = await read_body(receive, limit=self._limit)
            tokens = count_tokens(raw)
            model = orjson.loads(raw)["model"]
            self._plane.table.resolve(model, allowed=principal.may_use)
        except GatewayError as exc:
            await send_error(send, exc, base, dialect.error(exc))
            return
        except BodyTooLarge:
            too_large = GatewayError(
                ErrorKind.CALLER_PAYLOAD_TOO_LARGE, "the request body is too large"
            )
            await send_error(send, too_large, base, dialect.error(too_large))
            return
        await send_json(send, 200, orjson.dumps({"input_tokens": tokens}), [*base, JSON_CT])
