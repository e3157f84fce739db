"""The Batches API routes (OpenAI-compatible): ``POST /v1/batches``, ``GET /v1/batches``
(``after``, ``limit``), ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``; the same
without ``/v1``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from sluice.api.dataplane import new_request_id
from sluice.api.render import BodyTooLarge, Receive, Scope, Send, answer_json, read_body
from sluice.auth.principal import Principal
from sluice.batches.model import render
from sluice.batches.service import BatchService
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.parse import parse_json

Caller = Callable[[Scope], Awaitable[tuple[Principal, int | None]]]

MAX_CREATE_BYTES = 64 * 1024
"""A create request is a few ids and the metadata."""


class BatchRoutes:
    def __init__(self, caller: Caller, service: BatchService) -> None:
        self._caller = caller
        self._service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        base = [(b"x-request-id", new_request_id().encode())]
        await answer_json(send, base, lambda: self._produce(scope, receive))

    async def _produce(self, scope: Scope, receive: Receive) -> object:
        path: str = scope["path"]
        tail = path.removeprefix("/v1").removeprefix("/batches")
        method = scope["method"]
        if tail and not tail.startswith("/"):
            raise _no_route(ErrorKind.CALLER_NOT_FOUND, scope)
        principal, length = await self._caller(scope)
        parts = [p for p in tail.split("/") if p]
        service = self._service
        if not parts:
            if method == "POST":
                body = await _body(receive, length)
                return render(await service.create(principal, body))
            if method == "GET":
                return await self._list(scope, principal)
        elif len(parts) == 1 and method == "GET":
            return render(await service.get(principal, parts[0]))
        elif len(parts) == 2 and parts[1] == "cancel" and method == "POST":
            return render(await service.cancel(principal, parts[0]))
        elif len(parts) > 2 or (len(parts) == 2 and parts[1] != "cancel"):
            raise _no_route(ErrorKind.CALLER_NOT_FOUND, scope)
        raise _no_route(ErrorKind.CALLER_METHOD_NOT_ALLOWED, scope)

    async def _list(self, scope: Scope, principal: Principal) -> dict[str, Any]:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        raw_limit = query.get("limit", "20")
        if not raw_limit.isdigit():
            raise BadRequest("limit must be a whole number", param="limit")
        rows, more = await self._service.page(
            principal, after=query.get("after") or None, limit=int(raw_limit)
        )
        data = [render(b) for b in rows]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }


async def _body(receive: Receive, length: int | None) -> dict[str, Any]:
    try:
        if length is not None and length > MAX_CREATE_BYTES:
            raise BodyTooLarge
        raw = await read_body(receive, limit=MAX_CREATE_BYTES)
    except BodyTooLarge:
        raise GatewayError(
            ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
            f"the request body is larger than {MAX_CREATE_BYTES} bytes",
        ) from None
    return parse_json(raw)


def _no_route(kind: ErrorKind, scope: Scope) -> GatewayError:
    return GatewayError(kind, f"no route for {scope['method']} {scope['path']}")
