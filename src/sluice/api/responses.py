"""The Responses API routes: ``POST /v1/responses``, ``GET|DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items``, ``POST /v1/responses/{id}/cancel``,
``POST /v1/responses/compact`` and ``POST /v1/responses/input_tokens``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from sluice.api.dataplane import DataPlane, Run, new_request_id
from sluice.api.render import BodyTooLarge, Receive, Scope, Send, answer_json, read_body
from sluice.auth.principal import Principal
from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.context import RequestContext
from sluice.pipeline.dialects import responses_items as ri
from sluice.pipeline.dialects.responses import ResponsesDialect
from sluice.pipeline.dialects.responses_compact import CompactDialect
from sluice.pipeline.dialects.responses_tools import has_mcp
from sluice.pipeline.outcome import Outcome
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.storage.base import ResponseRepository, StoredResponse


def _no_route(scope: Scope) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_METHOD_NOT_ALLOWED, f"no route for {scope['method']} {scope['path']}"
    )


FORWARDED = (b"openai-beta",)
"""Request headers passed on when the provider has its own Responses API."""


class ResponsesRoutes:
    def __init__(
        self,
        plane: DataPlane,
        store: ResponseRepository,
        *,
        max_body_bytes: int,
        mcp: Callable[[], Run] | None = None,
    ) -> None:
        """``mcp``: builds the tool loop that serves a request offering ``mcp`` tools, on the
        first such request (it loads the MCP SDK, which other requests never need);
        ``None``: those tools are dropped, named in ``x-sluice-warning``, as other tools
        chat cannot carry."""
        self._plane = plane
        self._store = store
        self._dialect = ResponsesDialect(store)
        self._compact = CompactDialect(self._dialect)
        self._limit = max_body_bytes
        self._run: Run = serve
        if mcp is not None:
            loop = mcp

            async def run(svc: Services, ctx: RequestContext) -> Outcome:
                if not has_mcp(ctx.request.body.get("tools")):
                    return await serve(svc, ctx)
                return await loop()(svc, ctx)

            self._run = run

    async def create(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._plane.handle(
            scope,
            receive,
            send,
            self._dialect,
            forward=FORWARDED,
            prepare=self._dialect.prepare,
            run=self._run,
        )

    async def by_id(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Everything under ``/v1/responses/``: the two fixed routes, then one stored
        response of the calling key (``GET``/``DELETE``), its input items or its cancel."""
        path: str = scope["path"]
        tail = path.split("/responses/", 1)[1]
        if tail == "compact" and scope["method"] == "POST":
            await self._plane.handle(
                scope, receive, send, self._compact, prepare=self._compact.prepare
            )
            return
        base = [(b"x-request-id", new_request_id().encode())]
        if tail == "input_tokens":
            await answer_json(send, base, lambda: self._input_tokens(scope, receive))
            return
        response_id, _, action = tail.partition("/")

        async def produce() -> object:
            principal, _ = await self._plane.caller(scope)
            method = scope["method"]
            if action == "" and method == "GET":
                return await self._dialect.get(response_id, principal)
            if action == "" and method == "DELETE":
                return await self._dialect.delete(response_id, principal)
            if action == "input_items" and method == "GET":
                query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
                return ri.input_items(await self._stored(response_id, principal), query)
            if action == "cancel" and method == "POST":
                ri.cancel(await self._stored(response_id, principal))
            raise _no_route(scope)

        await answer_json(send, base, produce)

    async def _stored(self, response_id: str, principal: Principal) -> StoredResponse:
        stored = await self._store.get(response_id, key_id=principal.key_id)
        if stored is None:
            raise GatewayError(ErrorKind.CALLER_NOT_FOUND, f"no response {response_id!r}")
        return stored

    async def _input_tokens(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        """The gateway's own estimate, like ``/v1/messages/count_tokens``: no upstream
        call, no usage row."""
        if scope["method"] != "POST":
            raise _no_route(scope)
        principal, length = await self._plane.caller(scope)
        try:
            if length is not None and length > self._limit:
                raise BodyTooLarge
            raw = await read_body(receive, limit=self._limit)
        except BodyTooLarge:
            raise GatewayError(
                ErrorKind.CALLER_PAYLOAD_TOO_LARGE, "the request body is too large"
            ) from None
        model, body = ri.count_request(raw)
        self._plane.table.resolve(model, allowed=principal.may_use)
        history: list[dict[str, Any]] = []
        previous = body.get("previous_response_id")
        if isinstance(previous, str) and previous:
            stored = await self._stored(previous, principal)
            if not (stored.conversation and stored.conversation[0].get("native")):
                history = stored.conversation
        return {"object": "response.input_tokens", "input_tokens": ri.input_tokens(body, history)}
