"""The composition root: ``create_app(settings)`` wires every part into one ASGI app.

Data-plane paths are dispatched from a dict to raw ASGI handlers; everything else goes to the
FastAPI control plane. Nothing is opened until the ASGI lifespan starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import orjson

from sluice.api.batches import BatchRoutes
from sluice.api.dataplane import DataPlane, new_request_id
from sluice.api.files import FilesRoutes
from sluice.api.health import DeploymentHealth, Readiness, live
from sluice.api.media import MediaRoutes
from sluice.api.messages import MessagesRoutes
from sluice.api.metrics import MetricsRoute
from sluice.api.render import Receive, Scope, Send, send_error
from sluice.api.responses import ResponsesRoutes
from sluice.api.usage import UsageRoute
from sluice.clock import Clock
from sluice.config import GatewayConfig
from sluice.control.plane import ControlPlane
from sluice.errors import ErrorKind, GatewayError, dependency_unavailable, shutting_down
from sluice.files.base import FileAccess
from sluice.lifecycle import Lifecycle, Phase, SigtermHook
from sluice.lifespan import open_process
from sluice.pipeline.dialects.messages import error_body as anthropic_error_body
from sluice.runtime import Runtime
from sluice.settings import Settings, load_settings

if TYPE_CHECKING:
    from sluice.api.dataplane import Run
    from sluice.mcp.tools import ToolRunner
    from sluice.pipeline.mcp_loop import ToolRunner as McpToolRunner

log = logging.getLogger("sluice")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def data_routes(
    plane: DataPlane,
    messages: MessagesRoutes,
    responses: ResponsesRoutes,
    ready: Readiness,
    health: DeploymentHealth,
) -> dict[str, tuple[str, Handler]]:
    routes: dict[str, tuple[str, Handler]] = {
        "/health/live": ("GET", live),
        "/health/ready": ("GET", ready),
        "/health": ("GET", health),
    }
    for path, method, handler in (
        ("/chat/completions", "POST", plane.chat),
        ("/completions", "POST", plane.completions),
        ("/embeddings", "POST", plane.embeddings),
        ("/models", "GET", plane.models),
        ("/messages", "POST", messages.messages),
        ("/messages/count_tokens", "POST", messages.count_tokens),
        ("/responses", "POST", responses.create),
    ):
        routes[path] = routes["/v1" + path] = (method, handler)
    return routes


class SluiceApp:
    """The ASGI application. ``runtime`` and ``control`` are set while the lifespan runs."""

    def __init__(
        self,
        settings: Settings,
        config: GatewayConfig | None = None,
        *,
        clock: Clock | None = None,
        tool_runner: McpToolRunner | None = None,
        files: FileAccess | None = None,
    ) -> None:
        """``tool_runner``: what runs MCP tools for ``/v1/responses`` ``mcp`` tools;
        ``files``: what batches read their input from and write their output to."""
        self._files = files
        self.settings = settings
        self._config = config
        self._clock = clock
        self._tool_runner = tool_runner
        self.runtime: Runtime | None = None
        self.control: ControlPlane | None = None
        self._routes: dict[str, tuple[str, Handler]] = {}
        self._control: Handler | None = None
        self._console: Handler | None = None
        self._prefixes: tuple[tuple[tuple[str, ...], Handler], ...] = ()
        self._life = Lifecycle()
        self._hook: SigtermHook | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._preimport: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if self._life.phase is not _READY and path not in PROBES:
                await _refuse(self._life, scope, send)  # starting, or draining
                return
            route = self._routes.get(path)
            if route is not None and route[0] == scope["method"]:
                await route[1](scope, receive, send)
            elif route is not None:
                await send_error(send, _no_route(ErrorKind.CALLER_METHOD_NOT_ALLOWED, scope), [])
            elif (prefixed := self._prefixed(path)) is not None:
                await prefixed(scope, receive, send)
            elif path.startswith("/api") and self._control is not None:
                await self._control(scope, receive, send)
            elif (
                path == "/ui" or path.startswith("/ui/") or path == "/favicon.ico"
            ) and self._console is not None:
                await self._console(scope, receive, send)
            elif path == "/" and self._console is not None:
                await _to_console(send)
            else:
                await send_error(send, _no_route(ErrorKind.CALLER_NOT_FOUND, scope), [])
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def _prefixed(self, path: str) -> Handler | None:
        for prefixes, handler in self._prefixes:
            if path.startswith(prefixes):
                return handler
        return None

    async def startup(self) -> Runtime:
        """Open the runtime and bind the routes (also used by in-process tests)."""
        self._stack = contextlib.AsyncExitStack()
        self._life = Lifecycle()
        process = await self._stack.enter_async_context(
            open_process(
                self.settings,
                self._config,
                clock=self._clock,
                migrate=self.settings.migrate_on_start,
                lifecycle=self._life,
                files=self._files,
            )
        )
        rt, control = process.runtime, process.control
        checks: dict[str, Callable[[], Awaitable[object]]] = {"database": rt.storage.ping}
        if rt.redis is not None:
            checks["redis"] = rt.redis.ping
        ready = Readiness(checks, self._life)
        plane = DataPlane(
            rt.services,
            rt.keys,
            rt.usage.record,
            max_body_bytes=self.settings.max_body_bytes,
            bodies=rt.body_policy,
            lifecycle=self._life,
            catalogue=control.catalog.catalogue_fields,
        )
        messages = MessagesRoutes(plane, max_body_bytes=self.settings.max_body_bytes)
        responses = ResponsesRoutes(
            plane,
            rt.storage.responses,
            max_body_bytes=self.settings.max_body_bytes,
            mcp=_once(lambda: self._mcp_loop(rt, control.mcp.runner)),
        )
        health = DeploymentHealth(rt.router, lambda scope: plane.authenticate(scope)[0])
        self._routes = data_routes(plane, messages, responses, ready, health)
        media = MediaRoutes(plane, max_upload_bytes=self.settings.max_upload_bytes)
        for path, handler in media.routes():
            self._routes[path] = self._routes["/v1" + path] = ("POST", handler)
        self._routes["/v2/rerank"] = ("POST", media.rerank)  # Cohere's v2 clients
        if rt.observability is not None:
            metrics = MetricsRoute(
                rt.observability.metrics, rt.keys, auth=self.settings.metrics_auth
            )
            self._routes["/metrics"] = ("GET", metrics)
        usage = UsageRoute(
            plane.authenticate,
            limiter=rt.limiter,
            budgets=rt.budgets,
            store=rt.storage.analytics,
            clock=rt.clock,
        )
        self._routes["/usage"] = self._routes["/v1/usage"] = ("GET", usage)
        self._prefixes = (
            (("/v1/models/", "/models/"), plane.models),
            (("/v1/responses/", "/responses/"), responses.by_id),
        )
        self._prefixes += ((("/mcp",), _Lazy(lambda: self._mcp(rt, plane, control.mcp.runner))),)
        if rt.config.batches.enabled:
            batches = BatchRoutes(plane.caller, control.batches)
            self._prefixes += ((("/v1/batches", "/batches"), batches),)
        files = FilesRoutes(control.files, plane.caller, lifecycle=self._life)
        self._prefixes += ((("/v1/files", "/files"), files),)
        if control.scim is not None:  # unset: /scim/v2 is not a route (404)
            self._prefixes += (((SCIM_PREFIX,), _Lazy(lambda: _build(SCIM, control))),)
        self._control = _Lazy(lambda: _build(ADMIN, control))
        self._console = _Lazy(lambda: _build(CONSOLE, control))
        self.runtime, self.control = rt, control
        # Everything allocated so far (modules, config, the runtime) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise stall the loop
        # for tens of milliseconds under load. No collection first: start-up leaves next to
        # no cyclic garbage, and a full pass over the imported modules costs ~80 ms of start.
        gc.freeze()
        self._preimport = asyncio.get_running_loop().call_later(PREIMPORT_DELAY_S, _start_preimport)
        self._hook = SigtermHook(lambda: rt.tasks.spawn(self._drain(), name="drain"))
        self._hook.install()
        return rt

    def _mcp(self, rt: Runtime, plane: DataPlane, runner: ToolRunner) -> Handler:
        """The MCP endpoints over the process's tool runner (built with the control plane,
        shared with ``/v1/responses`` and the console); their sessions live in the
        lifespan's task group. Built by the first request to ``/mcp``: the MCP SDK loads
        then, not at start-up."""
        from sluice.api.mcp import McpRoutes
        from sluice.mcp.records import RedisSessionStore
        from sluice.mcp.sessions import Sessions

        config = rt.config.mcp
        store = None
        if rt.redis is not None:  # replicas: sessions are rebuilt from records in Redis
            store = RedisSessionStore(rt.redis, ttl_s=config.session_idle_s)
        sessions = Sessions(
            runner, rt.mcp, clock=rt.clock, idle_s=config.session_idle_s, store=store
        )
        rt.tasks.spawn(sessions.run(), name="mcp-sessions")
        rt.tasks.spawn(sessions.sweep_forever(), name="mcp-session-sweep")
        routes = McpRoutes(
            lambda scope: plane.authenticate(scope)[0],
            sessions,
            runner,
            rt.usage.record,
            config=config,
            clock=rt.clock,
            max_body_bytes=self.settings.max_body_bytes,
        )
        return routes

    def _mcp_loop(self, rt: Runtime, runner: McpToolRunner) -> Run:
        """The Responses MCP tool loop over the gateway's own tool runner (tests may pass
        another to ``SluiceApp``) and the registry's servers; built by the first request
        that offers an ``mcp`` tool."""
        from sluice.pipeline.mcp_loop import McpTools, run_loop

        tools = McpTools(
            runner=self._tool_runner or runner,
            servers=rt.mcp.servers,
            config=rt.config.mcp,
            record=rt.usage.record,
            store=rt.storage.responses,
        )
        return functools.partial(run_loop, tools=tools)

    async def _drain(self) -> None:
        """SIGTERM: refuse new requests, let those in flight end, then let the server stop."""
        await self._life.drain(grace_s=self.settings.shutdown_grace_s)
        if self._hook is not None:
            self._hook.release()

    async def shutdown(self) -> None:
        if self._preimport is not None:
            self._preimport.cancel()
        if self._hook is not None:
            self._hook.uninstall()
            self._hook = None
        self._life.phase = Phase.DRAINING
        if self._stack is not None:
            await self._stack.aclose()
        self.runtime = self.control = None

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    # One line for people; the traceback only when debugging.
                    log.error(
                        "start-up failed: %s",
                        str(exc) or type(exc).__name__,
                        exc_info=log.isEnabledFor(logging.DEBUG),
                    )
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


# The control plane (FastAPI admin API, console) as (module, factory): imported after
# start-up, off the data plane's path to its first answer, and built on first use.
ADMIN = ("sluice.api.admin", "build_admin_app")
CONSOLE = ("sluice.console.app", "build_console")
SCIM = ("sluice.api.scim", "build_scim_app")
SCIM_PREFIX = "/scim/v2/"


PREIMPORT_DELAY_S = 1.0
"""The control plane's import waits this long after start, so it does not compete with the
first requests for the interpreter."""


def _start_preimport() -> None:
    threading.Thread(target=_preimport, name="sluice-preimport", daemon=True).start()


def _preimport() -> None:
    """Import the control plane on a thread once the gateway serves: the event loop keeps
    answering meanwhile, and the first admin or console request finds it loaded."""
    for name, _ in (ADMIN, CONSOLE):
        try:
            importlib.import_module(name)
        except Exception:  # pragma: no cover - the request that needs it reports the error
            log.debug("pre-import of %s failed", name, exc_info=True)


def _build(where: tuple[str, str], *args: object) -> Handler:
    module, factory = where
    built: Handler = getattr(importlib.import_module(module), factory)(*args)
    return built


_T = TypeVar("_T")


def _once(build: Callable[[], _T]) -> Callable[[], _T]:
    """``build``, run on the first call only; later calls return what it built."""
    built: list[_T] = []

    def get() -> _T:
        if not built:
            built.append(build())
        return built[0]

    return get


class _Lazy:
    """An ASGI app built on its first request."""

    __slots__ = ("_app", "_build")

    def __init__(self, build: Callable[[], Handler]) -> None:
        self._build = build
        self._app: Handler | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            app = self._app = self._build()
        await app(scope, receive, send)


async def _to_console(send: Send) -> None:
    await send({"type": "http.response.start", "status": 307, "headers": [(b"location", b"/ui")]})
    await send({"type": "http.response.body", "body": b""})


_READY = Phase.READY
"""Read from the module, not the class: an enum member read from its class costs ~8 times
more (on every request)."""
PROBES = frozenset({"/health/live", "/health/ready"})
"""Answered whatever the phase: liveness, and readiness (which says why it is not ready)."""
_ANTHROPIC_PATHS = frozenset(
    {"/messages", "/v1/messages", "/messages/count_tokens", "/v1/messages/count_tokens"}
)


async def _refuse(life: Lifecycle, scope: Scope, send: Send) -> None:
    """503 for a request that arrives while the process does not serve: starting (its
    database not reached yet) or draining after SIGTERM. In the route's own error shape."""
    if life.phase is Phase.DRAINING:
        exc = shutting_down("the gateway is shutting down; retry the request")
    else:
        exc = dependency_unavailable(
            f"the gateway is starting and waiting for {life.waiting_for}; retry the request"
        )
    path: str = scope["path"]
    body = None
    if path in _ANTHROPIC_PATHS:
        body = orjson.dumps(anthropic_error_body(exc))
    await send_error(send, exc, [(b"x-request-id", new_request_id().encode())], body)


def _no_route(kind: ErrorKind, scope: Scope) -> GatewayError:
    return GatewayError(kind, f"no route for {scope['method']} {scope['path']}")


def create_app(settings: Settings | None = None, config: GatewayConfig | None = None) -> SluiceApp:
    return SluiceApp(settings or load_settings(), config)
