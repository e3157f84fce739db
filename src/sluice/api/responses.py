"""The Responses API routes: ``POST /v1/responses``, ``GET|DELETE /v1/responses/{id}``."""

from __future__ import annotations

from sluice.api.dataplane import DataPlane, new_request_id
from sluice.api.render import Receive, Scope, Send, answer_json
from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.dialects.responses import ResponsesDialect
from sluice.storage.base import ResponseRepository

FORWARDED = (b"openai-beta",)
"""Request headers passed on when the provider has its own Responses API."""


class ResponsesRoutes:
    def __init__(self, plane: DataPlane, store: ResponseRepository) -> None:
        self._plane = plane
        self._dialect = ResponsesDialect(store)

    async def create(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(
            scope, receive, send, self._dialect, forward=FORWARDED, prepare=self._dialect.prepare
        )

    async def by_id(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET`` or ``DELETE`` one stored response of the calling key."""
        base = [(b"x-request-id", new_request_id().encode())]
        response_id = scope["path"].rsplit("/", 1)[-1]

        async def produce() -> object:
            principal, _ = self._plane.authenticate(scope)
            if scope["method"] == "GET":
                return await self._dialect.get(response_id, principal)
            if scope["method"] == "DELETE":
                return await self._dialect.delete(response_id, principal)
            raise GatewayError(
                ErrorKind.CALLER_METHOD_NOT_ALLOWED,
                f"no route for {scope['method']} {scope['path']}",
            )

        await answer_json(send, base, produce)
