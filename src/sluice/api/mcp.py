"""``/mcp`` (every server the caller may use) and ``/mcp/{server}``: Streamable HTTP to MCP
clients (POST, GET stream, DELETE), as a raw ASGI handler.

The edge checks ``Host``/``Origin``, authenticates the caller's key (never forwarded
upstream), resolves the server and the session, then hands the request to the session's
SDK transport. Refusals made here are JSON-RPC error bodies with a 4xx status.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from mcp.types import INVALID_REQUEST, PARSE_ERROR, InitializeRequestParams
from pydantic import ValidationError

from sluice.api.dataplane import new_request_id
from sluice.api.render import (
    JSON_CT,
    BodyTooLarge,
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
    send_json,
)
from sluice.auth.principal import Principal
from sluice.clock import Clock
from sluice.config.mcp import McpConfig
from sluice.errors import GatewayError
from sluice.mcp.errors import FORBIDDEN, MISDIRECTED, NOT_FOUND, RATE_LIMITED, UNAUTHORIZED
from sluice.mcp.proxy import GatewaySession, View
from sluice.mcp.rows import mcp_row
from sluice.mcp.security import HostOriginCheck
from sluice.mcp.sessions import Sessions
from sluice.mcp.tools import ToolRunner
from sluice.pipeline.sink import Headers
from sluice.usage.event import UsageEvent

SESSION_HEADER = b"mcp-session-id"
METHODS = ("POST", "GET", "DELETE")


class McpRoutes:
    """The MCP endpoints, bound to the process's sessions and tool runner."""

    def __init__(
        self,
        authenticate: Callable[[Scope], Principal],
        sessions: Sessions,
        runner: ToolRunner,
        record: Callable[[UsageEvent], None],
        *,
        config: McpConfig,
        clock: Clock,
        max_body_bytes: int,
    ) -> None:
        """``authenticate``: the caller's principal from the request's key (raises the
        gateway's 401/403 ``GatewayError``)."""
        self._authenticate = authenticate
        self._sessions = sessions
        self._runner = runner
        self._record = record
        self._config = config
        self._clock = clock
        self._limit = max_body_bytes
        self._check = HostOriginCheck(config.allowed_hosts, config.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path != "/mcp" and not path.startswith("/mcp/"):
            await _error(send, 404, NOT_FOUND, f"no route for {path}")
            return
        server = path[5:] or None
        seen = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _READ}
        host, origin = seen.get("host"), seen.get("origin")
        if not self._check.host_ok(host, scope):
            await _error(send, 421, MISDIRECTED, f"Host {host!r} is not served here")
            return
        if not self._check.origin_ok(origin, host):
            await _error(send, 403, FORBIDDEN, f"Origin {origin!r} is not allowed")
            return
        try:
            principal = self._authenticate(scope)
        except GatewayError as exc:
            code = {401: UNAUTHORIZED, 429: RATE_LIMITED}.get(exc.status, FORBIDDEN)
            await _error(send, exc.status, code, exc.message)
            return
        view = self._view(principal, server)
        if view is None:
            await _error(send, 404, NOT_FOUND, f"unknown mcp server {server!r}")
            return
        method: str = scope["method"]
        if method not in METHODS:
            await _error(send, 405, INVALID_REQUEST, f"{method} is not supported on {path}")
            return
        await self._serve(scope, receive, send, principal=principal, view=view, seen=seen)

    def _view(self, principal: Principal, server: str | None) -> View | None:
        sep = self._config.separator
        if server is None:
            names = sorted(n for n in self._runner.servers() if principal.mcp.may_use_server(n))
            return View(tuple(names), prefixed=True, separator=sep)
        if "/" in server or self._runner.server(principal, server) is None:
            return None
        return View((server,), prefixed=False, separator=sep)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        principal: Principal,
        view: View,
        seen: dict[str, str],
    ) -> None:
        method: str = scope["method"]
        session_id = seen.get("mcp-session-id")
        session: GatewaySession | None = None
        if method == "POST":
            content_type = seen.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                await _error(send, 415, INVALID_REQUEST, "Content-Type must be application/json")
                return
            try:
                body = await read_body(receive, limit=self._limit)
            except BodyTooLarge:
                await _error(send, 413, INVALID_REQUEST, "the request body is too large")
                return
            except ClientGone:
                return
            try:
                message = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                await _error(send, 400, PARSE_ERROR, f"the body is not JSON: {exc}")
                return
            if isinstance(message, list):
                await _error(send, 400, INVALID_REQUEST, "JSON-RPC batches are not supported")
                return
            if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
                await _error(send, 400, INVALID_REQUEST, "the body is not a JSON-RPC 2.0 message")
                return
            if session_id is None:
                if message.get("method") != "initialize":
                    await _error(
                        send,
                        400,
                        INVALID_REQUEST,
                        "missing Mcp-Session-Id header: start a session with initialize",
                    )
                    return
                session = await self._start(principal, view, len(body), _init_params(message))
            receive = _replay(body, receive)
        if session_id is not None:
            session = await self._sessions.get(session_id, principal, view)
            if session is None:
                await _error(send, 404, NOT_FOUND, "unknown or expired session")
                return
        if session is None:
            await _error(send, 400, INVALID_REQUEST, "missing Mcp-Session-Id header")
            return
        counted = method != "GET"
        if method == "DELETE":
            send = self._forgetting(session.id, send)
        session.busy += counted
        try:
            await session.transport.handle_request(scope, receive, send)
        finally:
            session.busy -= counted
            session.last_used = self._clock.now()
        if method == "DELETE":
            await self._sessions.close(session.id)

    def _forgetting(self, session_id: str, send: Send) -> Send:
        """A ``send`` that removes the session's shared record before a DELETE is answered
        with success, so the client never sees a deleted session on another replica."""

        async def forgetting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self._sessions.forget(session_id)
            await send(message)

        return forgetting

    async def _start(
        self, principal: Principal, view: View, size: int, params: InitializeRequestParams | None
    ) -> GatewaySession:
        started, mono = self._clock.now(), self._clock.monotonic()
        session = await self._sessions.create(principal, view, params)
        row = mcp_row(
            principal,
            "mcp.session",
            request_id=new_request_id(),
            created_at=started,
            server=view.key or None,
            bytes_in=size,
        )
        row.latency_ms = (self._clock.monotonic() - mono) * 1000.0
        self._record(row)
        return session


_READ = frozenset({b"host", b"origin", b"content-type", SESSION_HEADER})


def _init_params(message: dict[str, object]) -> InitializeRequestParams | None:
    """The ``initialize`` params, ``None`` when invalid (the SDK then refuses the request)."""
    try:
        return InitializeRequestParams.model_validate(message.get("params"))
    except ValidationError:
        return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already-read body once, then the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _error(send: Send, status: int, code: int, message: str) -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}})
    headers: Headers = [JSON_CT]
    await send_json(send, status, body, headers)
