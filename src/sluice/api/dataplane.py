"""Data-plane handlers as raw ASGI callables (no framework on the hot path).

One generic request handler serves every dialect (OpenAI, Anthropic Messages, Responses).
The handler is the edge of the pipeline: it authenticates, reads and parses the body, admits
the request (:func:`sluice.pipeline.access.admit`), hands the context to the one pipeline
entry (:func:`sluice.pipeline.run.serve`) and records the usage row built from the outcome:
exactly one per authenticated request, in ``finally``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

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
from sluice.files.multipart import too_large as upload_too_large
from sluice.ids import random_hex
from sluice.lifecycle import Lifecycle
from sluice.observability.answer import METADATA_HEADER, TRACE_HEADER, wants_metadata
from sluice.observability.tracing import start_trace
from sluice.pipeline.access import admit
from sluice.pipeline.context import Arrival, RequestContext
from sluice.pipeline.dialects.base import Dialect
from sluice.pipeline.dialects.openai import OpenAIDialect
from sluice.pipeline.outcome import Outcome, disconnected, usage_row
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.routing.policy import SLA_HEADER, parse_sla_header
from sluice.routing.table import ModelTable
from sluice.storage.availability import as_dependency_unavailable
from sluice.tasks import DisconnectWatch, WatchQueue
from sluice.types import Endpoint, ProviderRequest
from sluice.usage.bodies import BodyCapture, BodyPolicy
from sluice.usage.event import UsageEvent

log = logging.getLogger("sluice.api")


_new = tuple.__new__
"""Builds a ``NamedTuple`` from every field in order: a third cheaper than its generated
constructor's call (the context and arrival are built on every request)."""


def new_request_id() -> str:
    return "req_" + random_hex(10)


Prepare = Callable[[ProviderRequest, Principal], Awaitable[ProviderRequest]]
Run = Callable[[Services, RequestContext], Awaitable[Outcome]]
"""How an admitted request is served: :func:`serve`, or a route's own use case over it
(the Responses MCP tool loop)."""

_CACHE_NONE = b"none"
_OPENAI_CHAT = OpenAIDialect(Endpoint.CHAT)
_OPENAI_COMPLETIONS = OpenAIDialect(Endpoint.COMPLETIONS)
_OPENAI_EMBEDDINGS = OpenAIDialect(Endpoint.EMBEDDINGS)


class DataPlane:
    """The data-plane routes, bound to the process's services."""

    def __init__(
        self,
        svc: Services,
        keys: KeyCache,
        record: Callable[[UsageEvent], None],
        *,
        max_body_bytes: int,
        bodies: BodyPolicy | None = None,
        lifecycle: Lifecycle | None = None,
        catalogue: Callable[[str], Mapping[str, object]] | None = None,
    ) -> None:
        """``catalogue``: the extra fields ``/v1/models`` shows for a public model
        (capabilities, context window, prices, status; the control plane's catalogue)."""
        self._catalogue = catalogue
        """``bodies``: the body-logging policy when it is on for anyone; ``lifecycle``: where
        the requests in flight are kept for a drain to wait for (or cut)."""
        self._life = lifecycle or Lifecycle()
        self._watches = WatchQueue()
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
        run: Run = serve,
        upload_limit: int | None = None,
    ) -> None:
        """Serve one request in ``dialect``; ``forward`` names request headers passed on to a
        provider that speaks the dialect natively; ``prepare`` completes a parsed request
        with what it refers to (e.g. a previous response); ``run`` serves the admitted
        request (it answers on the context's sink and returns the outcome whose usage row
        this handler records)."""
        started = time.perf_counter()
        seen = self._scan(scope)
        request_id = new_request_id()
        trace = start_trace(seen.traceparent)
        base = [(b"x-request-id", request_id.encode()), (TRACE_HEADER, trace.trace_id.encode())]
        principal = await _authenticated(
            self._keys, scope, seen, send=send, base=base, dialect=dialect
        )
        if principal is None:
            return
        svc = self._svc
        tracing = svc.tracing
        endpoint = str(dialect.endpoint)  # its value, a plain str (cheaper than .value)
        span = token = None
        if tracing is not None:
            span, token, trace = tracing.start_request(request_id, endpoint, trace)
            base[1] = (TRACE_HEADER, trace.trace_id.encode())  # a root span has its own id
        arrival = _new(Arrival, (request_id, time.time(), started, endpoint, principal, trace))
        sink, capture = (  # body logging off for everyone: no call
            (AsgiSink(send), None) if self._bodies is None else self._sink(send, principal)
        )
        watch: DisconnectWatch | None = None
        task = self._life.track()  # a drain waits for it, and cancels it at its deadline
        asked: ProviderRequest | None = None
        want = False
        outcome: Outcome | None = None
        try:
            want = (
                svc.response_metadata
                if seen.metadata is None  # the header is rare: no call without it
                else self._wants_metadata(seen.metadata)
            )
            limit = self._limit if upload_limit is None else upload_limit
            if seen.length is not None and seen.length > limit:
                raise BodyTooLarge
            raw = await read_body(receive, limit=limit)
            if capture is not None:
                capture.request = raw
            watch = DisconnectWatch(receive, sink, target=task, queue=self._watches)
            req = dialect.parse(raw)
            if prepare is not None:
                req = await prepare(req, principal)
            asked = req
            ctx = _new(
                RequestContext,
                (
                    arrival,
                    dialect,
                    req,
                    admit(svc.table, principal, req),
                    sink,
                    asyncio.get_running_loop().time() + svc.total_timeout_s,
                    base,
                    _forwarded(scope, forward) if forward else None,
                    want,
                    _sla(scope) if svc.router.policy.enabled else None,
                    scope["headers"],
                    _CACHE_NONE,
                ),
            )
            outcome = await run(svc, ctx)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, BodyTooLarge) and upload_limit is not None:
                exc = upload_too_large(upload_limit)
            outcome = await self._failed(exc, arrival, sink, send=send, base=base, dialect=dialect)
        finally:
            if watch is not None:
                watch.stop()
            self._life.done(task)
            row = usage_row(
                arrival,
                outcome or _unanswered(),
                request=asked,
                want_metadata=want,
                bodies=capture,
            )
            if span is not None and tracing is not None:
                tracing.end_request(span, token, row, svc.provider_types.get(row.provider or ""))
            self._record(row)

    async def _failed(
        self,
        exc: BaseException,
        arrival: Arrival,
        sink: AsgiSink,
        *,
        send: Send,
        base: list[tuple[bytes, bytes]],
        dialect: Dialect,
    ) -> Outcome:
        """Answer what ended a request before the pipeline ran (the pipeline answers its
        own), and say so in its outcome."""
        if isinstance(exc, GatewayError):
            exc.message = self._svc.redactor(exc.message)
            error = exc
        elif isinstance(exc, BodyTooLarge):
            error = _too_large(self._limit)
        elif isinstance(exc, ClientGone):
            return Outcome(disconnected())
        elif isinstance(exc, asyncio.CancelledError):
            # Cancelled from outside: the client went away (the sink says so), or the
            # server's shutdown deadline passed. Either way the request ends here.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if sink.gone:
                return Outcome(disconnected())
            error = shutting_down("the gateway shut down before the request finished; retry it")
        else:
            # A route that reads the database (stored responses) while it is away: a 503.
            unavailable = as_dependency_unavailable(exc)
            if unavailable is None:
                log.exception(
                    "unhandled error in %s (request %s)",
                    dialect.endpoint,
                    arrival.request_id,
                    exc_info=exc,
                )
                unavailable = GatewayError(
                    ErrorKind.GATEWAY_INTERNAL, f"internal error ({type(exc).__name__})"
                )
            error = unavailable
        await send_error(send, error, base, dialect.error(error))
        return Outcome(error)

    def _sink(self, send: Send, principal: Principal) -> tuple[AsgiSink, BodyCapture | None]:
        """The response sink; one that keeps what it sends when body logging covers the
        principal (the capture rides on the usage row to the writer)."""
        if self._bodies is None or not self._bodies.wants(principal.org_id, principal.team_id):
            return AsgiSink(send), None
        capture = BodyCapture(self._bodies.cap)
        return CapturingSink(send, capture), capture

    def _model_obj(self, name: str, model: str, created: int) -> dict[str, object]:
        """OpenAI's model object, with the catalogue's fields added."""
        return _model_obj(name, created) | _extra(self._catalogue, model)

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
            body = orjson.dumps(self._model_obj(model_id, entry.name, entry.created))
        else:
            data = [
                self._model_obj(name, entry.name, entry.created)
                for entry in self._svc.table.entries
                if principal.may_use(entry.name)
                for name in (entry.name, *entry.aliases)
            ]
            body = orjson.dumps({"object": "list", "data": data})
        await send_json(send, 200, body, [*base, JSON_CT])


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        ErrorKind.CALLER_PAYLOAD_TOO_LARGE,
        f"the request body is larger than the limit of {limit} bytes",
    )


def _unanswered() -> Outcome:
    """What is recorded when something outside every handler ended the request (a second
    cancellation while it answered the first)."""
    return Outcome(GatewayError(ErrorKind.GATEWAY_INTERNAL, "the request ended unanswered"))


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


def _extra(
    catalogue: Callable[[str], Mapping[str, object]] | None, model: str
) -> dict[str, object]:
    if catalogue is None:
        return {}
    try:
        return dict(catalogue(model))
    except LookupError:
        return {}


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
