"""Data-plane handlers as raw ASGI callables (no framework on the hot path).

One generic request handler serves every dialect (OpenAI, Anthropic Messages, Responses).
Each authenticated request produces exactly one usage event, recorded in ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from sluice.api.capture import CapturingSink
from sluice.api.render import (
    JSON_CT,
    AsgiSink,
    BodyTooLarge,
    ClientGone,
    Receive,
    Scope,
    Send,
    read_body,
    send_error,
    send_json,
)
from sluice.auth.cache import KeyCache, token_from_headers
from sluice.auth.principal import Principal
from sluice.errors import BadRequest, ErrorKind, GatewayError, shutting_down
from sluice.ids import random_hex
from sluice.lifecycle import Lifecycle
from sluice.observability.answer import METADATA_HEADER, TRACE_HEADER, wants_metadata
from sluice.observability.tracing import Tracing, new_trace_id, parse_traceparent
from sluice.pipeline import relay
from sluice.pipeline.attempt import record_error
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.routing.policy import SLA_HEADER, parse_sla_header
from sluice.routing.table import ModelTable
from sluice.storage.availability import as_dependency_unavailable
from sluice.tasks import DisconnectWatch
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.bodies import BodyCapture, BodyPolicy
from sluice.usage.event import UsageEvent

log = logging.getLogger("sluice.api")


def new_request_id() -> str:
    return "req_" + random_hex(10)


def _new_ids(traceparent: bytes | None) -> tuple[str, str, tuple[str, str, str] | None]:
    """The request id, the trace id (the caller's, or a new one) and the caller's parsed
    ``traceparent`` (if valid)."""
    parent = parse_traceparent(traceparent) if traceparent else None
    return new_request_id(), new_trace_id() if parent is None else parent[0], parent


Prepare = Callable[[ProviderRequest, Principal], Awaitable[ProviderRequest]]

_OPENAI_CHAT = OpenAIDialect(Endpoint.CHAT)
_OPENAI_COMPLETIONS = OpenAIDialect(Endpoint.COMPLETIONS)
_OPENAI_EMBEDDINGS = OpenAIDialect(Endpoint.EMBEDDINGS)


class DataPlane:
    """The data-plane routes, bound to the process's services."""

    def __init__(
        self,
        svc: relay.Services,
        keys: KeyCache,
        record: Callable[[UsageEvent], None],
        *,
        max_body_bytes: int,
        bodies: BodyPolicy | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        """``bodies``: the body-logging policy when it is on for anyone; ``lifecycle``: where
        the requests in flight are kept for a drain to wait for (or cut)."""
        self._life = lifecycle or Lifecycle()
        self._svc = svc
        self._bodies = bodies
        self._keys = keys
        self._record = record
        self._limit = max_body_bytes

    def _scan(self, scope: Scope) -> _Seen:
        """The request headers the handler reads, in one pass."""
        seen = _Seen()
        for name, value in scope["headers"]:
            if name == b"authorization":
                seen.authorization = value
            elif name == b"x-api-key":
                seen.x_api_key = value
            elif name == b"content-length":
                seen.length = int(value) if value.isdigit() else None
            elif name == b"traceparent":
                seen.traceparent = value
            elif name == METADATA_HEADER:
                seen.metadata = value
        return seen

    def _wants_metadata(self, value: bytes | None) -> bool:
        want = wants_metadata(value, default=self._svc.response_metadata)
        if want is None:
            raise BadRequest(
                "the x-sluice-metadata header must be true or false", param="x-sluice-metadata"
            )
        return want

    def authenticate(self, scope: Scope) -> tuple[Principal, int | None]:
        """The caller and the declared body length."""
        seen = self._scan(scope)
        token = token_from_headers(seen.authorization, seen.x_api_key)
        return self._keys.authenticate(token, scope), seen.length

    async def caller(self, scope: Scope) -> tuple[Principal, int | None]:
        """:meth:`authenticate`, also for IdP access tokens (whose keys may need fetching)."""
        seen = self._scan(scope)
        token = token_from_headers(seen.authorization, seen.x_api_key)
        bearer = self._keys.bearer
        if bearer is not None and token is not None and bearer.accepts(token):
            return await bearer.authenticate(token, scope), seen.length
        return self._keys.authenticate(token, scope), seen.length

    @property
    def table(self) -> ModelTable:
        return self._svc.table

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send, _OPENAI_CHAT)

    async def completions(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send, _OPENAI_COMPLETIONS)

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handle(scope, receive, send, _OPENAI_EMBEDDINGS)

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        dialect: Dialect,
        *,
        forward: tuple[bytes, ...] = (),
        prepare: Prepare | None = None,
    ) -> None:
        """Serve one request in ``dialect``; ``forward`` names request headers passed on to a
        provider that speaks the dialect natively; ``prepare`` completes a parsed request
        with what it refers to (e.g. a previous response)."""
        started = time.perf_counter()
        seen = self._scan(scope)
        request_id, trace_id, parent = _new_ids(seen.traceparent)
        base = [(b"x-request-id", request_id.encode()), (TRACE_HEADER, trace_id.encode())]
        principal = await _authenticated(
            self._keys, scope, seen, send=send, base=base, dialect=dialect
        )
        if principal is None:
            return
        ev = _event(request_id, dialect, principal, trace_id, parent)
        tracing = self._svc.tracing
        span, token = (None, None) if tracing is None else _start_span(tracing, ev, base)
        sink = self._sink(send, ev, principal)
        watch: DisconnectWatch | None = None
        task = self._life.track()  # a drain waits for it, and cancels it at its deadline
        try:
            ev.want_metadata = self._wants_metadata(seen.metadata)
            if seen.length is not None and seen.length > self._limit:
                raise BodyTooLarge
            raw = _kept(sink, await read_body(receive, limit=self._limit))
            watch = DisconnectWatch(receive, sink, target=task)
            req = dialect.parse(raw)
            if prepare is not None:
                req = await prepare(req, principal)
            ev.model = req.model
            ev.end_user = _user(req)
            entry = self._svc.table.resolve(req.model, allowed=principal.may_use)
            await relay.run(
                self._svc,
                ev,
                req,
                entry,
                sink,
                principal=principal,
                dialect=dialect,
                base_headers=base,
                started=started,
                forward_headers=_forwarded(scope, forward) if forward else None,
                sla_ms=_sla(scope) if self._svc.router.policy.enabled else None,
            )
        except GatewayError as exc:
            exc.message = self._svc.redactor(exc.message)  # upstream text may quote secrets
            await _fail(ev, exc, sink=sink, send=send, base=base, dialect=dialect)
        except BodyTooLarge:
            too_large = _too_large(self._limit)
            await _fail(ev, too_large, sink=sink, send=send, base=base, dialect=dialect)
        except ClientGone:
            _disconnected(ev)
        except asyncio.CancelledError:
            await _cancelled(ev, watch, sink=sink, send=send, base=base, dialect=dialect)
        except Exception as exc:
            # A route that reads the database (stored responses) while it is away: a 503.
            err_or_none = as_dependency_unavailable(exc)
            if err_or_none is None:
                log.exception("unhandled error in %s (request %s)", dialect.endpoint, request_id)
                err_or_none = GatewayError(
                    ErrorKind.GATEWAY_INTERNAL, f"internal error ({type(exc).__name__})"
                )
            await _fail(ev, err_or_none, sink=sink, send=send, base=base, dialect=dialect)
        finally:
            _stop(watch, self._life, task)
            ev.latency_ms = (time.perf_counter() - started) * 1000
            if span is not None and tracing is not None:
                tracing.end_request(
                    span, token, ev, self._svc.provider_types.get(ev.provider or "")
                )
            self._record(ev)

    def _sink(self, send: Send, ev: UsageEvent, principal: Principal) -> AsgiSink:
        """The response sink; one that keeps what it sends when body logging covers the
        principal (the capture rides on the usage event to the writer)."""
        if self._bodies is None or not self._bodies.wants(principal.org_id, principal.team_id):
            return AsgiSink(send)
        ev.bodies = BodyCapture(self._bodies.cap)
        return CapturingSink(send, ev.bodies)

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        base = [(b"x-request-id", new_request_id().encode())]
        try:
            if scope["method"] != "GET":
                raise GatewayError(
                    ErrorKind.CALLER_METHOD_NOT_ALLOWED,
                    f"no route for {scope['method']} {scope['path']}",
                )
            principal, _ = await self.caller(scope)
        except GatewayError as exc:
            await send_error(send, exc, base)
            return
        path: str = scope["path"]
        marker = "/models/"
        if marker in path:
            model_id = path.split(marker, 1)[1]
            try:
                entry = self._svc.table.resolve(model_id, allowed=principal.may_use)
            except GatewayError as exc:
                await send_error(send, exc, base)
                return
            body = orjson.dumps(_model_obj(model_id, entry.created))
        else:
            data = [
                _model_obj(name, entry.created)
                for entry in self._svc.table.entries
                if principal.may_use(entry.name)
                for name in (entry.name, *entry.aliases)
            ]
            body = orjson.dumps({"object": "list", "data": data})
        await send_json(send, 200, body, [*base, JSON_CT])


def _stop(watch: DisconnectWatch | None, life: Lifecycle, task: asyncio.Task[Any]) -> None:
    if watch is not None:
        watch.stop()
    life.done(task)


def _start_span(tracing: Tracing, ev: UsageEvent, base: list[tuple[bytes, bytes]]) -> Any:
    span_and_token = tracing.start_request(ev)
    base[1] = (TRACE_HEADER, str(ev.trace_id).encode())  # a root span has its own id
    return span_and_token


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
        f"the request body is larger than the limit of {limit} bytes",
    )


def _event(
    request_id: str,
    dialect: Dialect,
    principal: Principal,
    trace_id: str,
    parent: tuple[str, str, str] | None,
) -> UsageEvent:
    ev = UsageEvent(request_id, time.time(), dialect.endpoint.value, principal.key_id, None)
    ev.user_id, ev.team_id, ev.org_id = principal.user_id, principal.team_id, principal.org_id
    ev.trace_id = trace_id
    if parent is not None:
        ev.parent_span, ev.trace_flags = parent[1], parent[2]
    return ev


async def _cancelled(
    ev: UsageEvent,
    watch: DisconnectWatch | None,
    *,
    sink: AsgiSink,
    send: Send,
    base: list[tuple[bytes, bytes]],
    dialect: Dialect,
) -> None:
    """Cancelled from outside: the client went away (the watch says so), or the server's
    shutdown deadline passed. Either way the request ends here, answered."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    if watch is not None and watch.disconnected:
        _disconnected(ev)
    else:
        stopping = shutting_down("the gateway shut down before the request finished; retry it")
        await _fail(ev, stopping, sink=sink, send=send, base=base, dialect=dialect)


async def _authenticated(
    keys: KeyCache,
    scope: Scope,
    seen: _Seen,
    *,
    send: Send,
    base: list[tuple[bytes, bytes]],
    dialect: Dialect,
) -> Principal | None:
    """The caller, or ``None`` after answering 401/403 (or 429 to an address refused for
    bad keys)."""
    token = token_from_headers(seen.authorization, seen.x_api_key)
    try:
        bearer = keys.bearer  # IdP access tokens (JWTs), only when configured
        if bearer is not None and token is not None and bearer.accepts(token):
            return await bearer.authenticate(token, scope)
        return keys.authenticate(token, scope)
    except GatewayError as exc:
        await send_error(send, exc, base, dialect.error(exc))
        return None


class _Seen:
    __slots__ = ("authorization", "length", "metadata", "traceparent", "x_api_key")

    def __init__(self) -> None:
        self.authorization: bytes | None = None
        self.x_api_key: bytes | None = None
        self.length: int | None = None
        self.traceparent: bytes | None = None
        self.metadata: bytes | None = None


def _model_obj(name: str, created: int) -> dict[str, object]:
    return {"id": name, "object": "model", "created": created, "owned_by": "sluice"}


def _kept(sink: AsgiSink, raw: bytes) -> bytes:
    if isinstance(sink, CapturingSink):
        sink.capture.request = raw
    return raw


def _disconnected(ev: UsageEvent) -> None:
    ev.status = 499
    ev.error_kind = ErrorKind.CLIENT_DISCONNECTED.value
    ev.error_message = "the client disconnected before the answer was complete"


def _user(req: ProviderRequest) -> str | None:
    user = req.body.get("user")
    return user if isinstance(user, str) else None


def _sla(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == SLA_HEADER_BYTES:
            return parse_sla_header(value)
    return None


SLA_HEADER_BYTES = SLA_HEADER.encode()


def _forwarded(scope: Scope, names: tuple[bytes, ...]) -> dict[str, str]:
    return {
        name.decode(): value.decode("latin-1") for name, value in scope["headers"] if name in names
    }


async def _fail(
    ev: UsageEvent,
    exc: GatewayError,
    *,
    sink: AsgiSink,
    send: Send,
    base: list[tuple[bytes, bytes]],
    dialect: Dialect,
) -> None:
    record_error(ev, exc)
    if not sink.started:
        await send_error(send, exc, base, dialect.error(exc))
    elif not sink.ended:
        ev.partial = True  # the client got part of the answer, then the error event
        await sink.end(dialect.stream_error(exc))
