"""The Responses API routes: ``POST /v1/responses``, ``GET|DELETE /v1/responses/{id}``."""

from __future__ import annotations

import orjson

from sluice.api.dataplane import DataPlane, new_request_id
from sluice.api.render import JSON_CT, Receive, Scope, Send, send_error, send_json
from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.dialects.responses import ResponsesDialect
from sluice.storage.availability import as_dependency_unavailable
from sluice.storage.base import ResponseRepository


class ResponsesRoutes:
    def __init__(self, plane: DataPlane, store: ResponseRepository) -> None:
        self._plane = plane
        self._dialect = ResponsesDialect(store)

    async def create(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(scope, receive, send, self._dialect, prepare=self._dialect.prepare)

    async def by_id(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET`` or ``DELETE`` one stored response of the calling key."""
        base = [(b"x-request-id", new_request_id().encode())]
        response_id = scope["path"].rsplit("/", 1)[-1]
        try:
            principal, _ = self._plane.authenticate(scope)
            if scope["method"] == "GET":
                body = await self._dialect.get(response_id, principal)
            elif scope["method"] == "DELETE":
                body = await self._dialect.delete(response_id, principal)
            else:
                raise GatewayError(
                    ErrorKind.CALLER_METHOD_NOT_ALLOWED,
                    f"no route for {scope['method']} {scope['path']}",
                )
        except GatewayError as exc:
            await send_error(send, exc, base)
            return
        except Exception as exc:  # the database is away: 503; anything else stays a bug
            unavailable = as_dependency_unavailable(exc)
            if unavailable is None:
                raise
            await send_error(send, unavailable, base)
            return
        await send_json(send, 200, orjson.dumps(body), [*base, JSON_CT])
