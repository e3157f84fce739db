"""One gateway MCP server over a view of upstream servers, for one client session.

``/mcp/{server}`` is a view of one server with names unchanged; ``/mcp`` is a view of every
server the caller may use, tool and prompt names prefixed ``server{separator}name`` and
resources routed by the URI -> server map built when they are listed. Requests are handled
by the SDK's low-level ``Server`` (which correlates the client's JSON-RPC ids) and forwarded
to upstream ``ClientSession``s (which correlate theirs), opened on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from mcp import ClientSession
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.shared.context import RequestContext
from mcp.shared.exceptions import McpError
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.session import RequestResponder
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequest,
    CallToolResult,
    ClientRequest,
    CompleteRequest,
    CompleteResult,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestParams,
    ElicitResult,
    EmptyResult,
    ErrorData,
    GetPromptRequest,
    GetPromptResult,
    InitializeRequestParams,
    ListPromptsRequest,
    ListPromptsResult,
    ListResourcesRequest,
    ListResourcesResult,
    ListResourceTemplatesRequest,
    ListResourceTemplatesResult,
    ListRootsRequest,
    ListRootsResult,
    ListToolsRequest,
    ListToolsResult,
    LoggingMessageNotificationParams,
    PaginatedRequestParams,
    Prompt,
    PromptListChangedNotification,
    PromptReference,
    ReadResourceRequest,
    ReadResourceResult,
    RequestId,
    Resource,
    ResourceListChangedNotification,
    ResourceTemplate,
    ResourceTemplateReference,
    ResourceUpdatedNotification,
    RootsListChangedNotification,
    ServerNotification,
    ServerRequest,
    ServerResult,
    SetLevelRequest,
    SubscribeRequest,
    Tool,
    ToolListChangedNotification,
    UnsubscribeRequest,
)
from pydantic import BaseModel

from sluice.auth.principal import Principal
from sluice.config.mcp import McpServerConfig
from sluice.mcp.errors import NOT_FOUND, UPSTREAM_UNAVAILABLE, rpc_error
from sluice.mcp.tools import ToolRunner, request
from sluice.mcp.upstream import Hooks, Upstreams

log = logging.getLogger("sluice.mcp")

ResultT = TypeVar("ResultT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class View:
    """The upstream servers one gateway endpoint presents, and how names are shown."""

    servers: tuple[str, ...]
    prefixed: bool
    """``/mcp``: names are ``server{separator}name``; ``/mcp/{server}``: names unchanged."""
    separator: str = "__"

    @property
    def key(self) -> str:
        """What a session is bound to: the server's name, or ``""`` for ``/mcp``."""
        return "" if self.prefixed else self.servers[0]

    def public(self, server: str, name: str) -> str:
        return f"{server}{self.separator}{name}" if self.prefixed else name

    def split(self, public: str) -> tuple[str, str] | None:
        """``(server, name)`` of a presented name, ``None`` when no server of the view has it."""
        if not self.prefixed:
            return self.servers[0], public
        best = max(
            (s for s in self.servers if public.startswith(s + self.separator)),
            key=len,
            default=None,
        )
        return None if best is None else (best, public[len(best) + len(self.separator) :])


@dataclass(eq=False)
class _Slot:
    """One upstream session of this gateway session, held open by its own task."""

    ready: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    session: ClientSession | None = None
    dead: bool = False
    tools: dict[str, Tool] | None = None
    inflight: list[RequestId] = field(default_factory=list)
    """Client request ids being served on this upstream: a server->client request goes on
    that request's stream when there is exactly one."""


class GatewaySession:
    """One client session: its SDK transport and server, and its upstream sessions.

    :meth:`run` owns everything (it is the task the upstream sessions are entered and exited
    in); :meth:`close` ends it."""

    def __init__(
        self,
        session_id: str,
        principal: Principal,
        view: View,
        *,
        runner: ToolRunner,
        upstreams: Upstreams,
        now: float,
        restored: InitializeRequestParams | None = None,
    ) -> None:
        """``restored``: the client's ``initialize`` params of a session created on another
        replica; the session then starts initialised (the client does not initialise again)."""
        self.id = session_id
        self.principal = principal
        self.view = view
        self.last_used = now
        self.busy = 0
        """Client requests being served (a GET stream excluded): a busy session is not idle."""
        self.transport = StreamableHTTPServerTransport(mcp_session_id=session_id)
        self.started = anyio.Event()
        self.closed = anyio.Event()
        self._runner = runner
        self._upstreams = upstreams
        self._restored = restored
        self._stop = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: ServerSession | None = None
        self._slots: dict[str, _Slot] = {}
        self._uris: dict[str, str] = {}
        self._templates: dict[str, list[str]] = {}
        self.server: Server[Any, Any] = Server("sluice")
        self._register()

    # -- life ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until closed; every upstream session is closed on the way out."""
        try:
            async with self.transport.connect() as (read, write), anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._serve, read, write)
                self.started.set()
                await self._stop.wait()
                tg.cancel_scope.cancel()
        except Exception:
            log.exception("mcp session ended with an error")
        finally:
            self._stop.set()
            self.started.set()
            self.closed.set()

    async def _serve(self, read: Any, write: Any) -> None:
        try:
            await self.server.run(
                read, write, self._init_options(), stateless=self._restored is not None
            )
        finally:
            self._stop.set()

    async def close(self) -> None:
        """End the session: its streams, then its upstream sessions."""
        if not self.transport.is_terminated:
            await self.transport.terminate()
        self._stop.set()
        with anyio.move_on_after(5.0):
            await self.closed.wait()

    def _init_options(self) -> InitializationOptions:
        options = self.server.create_initialization_options(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
        )
        if options.capabilities.resources is not None:
            options.capabilities.resources.subscribe = True
        return options

    # -- upstream sessions --------------------------------------------------------------

    async def _upstream(self, name: str) -> tuple[ClientSession, _Slot, McpServerConfig]:
        config = self._runner.server(self.principal, name)
        if config is None or name not in self.view.servers:
            raise rpc_error(NOT_FOUND, f"unknown mcp server {name!r}")
        slot = self._slots.get(name)
        if slot is None or slot.dead:
            slot = self._slots[name] = _Slot()
            assert self._tg is not None
            self._tg.start_soon(self._hold, name, slot)
        with anyio.move_on_after(config.timeout_s + 1.0):
            await slot.ready.wait()
        if slot.session is None or slot.dead:
            self._drop(name, slot)
            raise rpc_error(UPSTREAM_UNAVAILABLE, f"mcp server {name!r} is unavailable")
        return slot.session, slot, config

    async def _hold(self, name: str, slot: _Slot) -> None:
        with slot.scope:
            try:
                async with self._upstreams.open(name, self._hooks(slot)) as session:
                    slot.session = session
                    slot.ready.set()
                    await anyio.sleep_forever()
            except Exception:
                log.warning("mcp server %r: upstream session failed", name, exc_info=True)
            finally:
                slot.dead = True
                slot.ready.set()

    def _drop(self, name: str, slot: _Slot) -> None:
        slot.dead = True
        slot.scope.cancel()
        if self._slots.get(name) is slot:
            del self._slots[name]

    @property
    def client_params(self) -> InitializeRequestParams | None:
        """What the client sent in ``initialize`` (here or, restored, on another replica)."""
        if self._restored is not None:
            return self._restored
        return self._client.client_params if self._client is not None else None

    def _hooks(self, slot: _Slot) -> Hooks:
        """Callbacks for the client capabilities this session's client declared, only."""
        params = self.client_params
        caps = params.capabilities if params is not None else None

        async def sampling(
            _ctx: RequestContext[ClientSession, Any], p: CreateMessageRequestParams
        ) -> CreateMessageResult | ErrorData:
            return await self._ask(slot, CreateMessageRequest(params=p), CreateMessageResult)

        async def elicitation(
            _ctx: RequestContext[ClientSession, Any], p: ElicitRequestParams
        ) -> ElicitResult | ErrorData:
            return await self._ask(slot, ElicitRequest(params=p), ElicitResult)

        async def roots(_ctx: RequestContext[ClientSession, Any]) -> ListRootsResult | ErrorData:
            return await self._ask(slot, ListRootsRequest(), ListRootsResult)

        async def logging_(p: LoggingMessageNotificationParams) -> None:
            if self._client is not None:
                await self._client.send_log_message(
                    level=p.level, data=p.data, logger=p.logger, related_request_id=_only(slot)
                )

        async def message(m: RequestResponder[Any, Any] | ServerNotification | Exception) -> None:
            if isinstance(m, ServerNotification):
                await self._relay(slot, m)

        return Hooks(
            sampling=sampling if caps is not None and caps.sampling is not None else None,
            elicitation=elicitation if caps is not None and caps.elicitation is not None else None,
            list_roots=roots if caps is not None and caps.roots is not None else None,
            logging=logging_,
            message_handler=message,
        )

    async def _ask(self, slot: _Slot, req: Any, result_type: type[ResultT]) -> ResultT | ErrorData:
        """Relay an upstream's request to the client, on the related request's stream when
        it is known, else on the GET stream."""
        if self._client is None:
            return ErrorData(code=INVALID_PARAMS, message="no client session")
        related = _only(slot)
        meta = ServerMessageMetadata(related_request_id=related) if related is not None else None
        try:
            return await self._client.send_request(ServerRequest(req), result_type, metadata=meta)
        except McpError as exc:
            return exc.error

    async def _relay(self, slot: _Slot, note: ServerNotification) -> None:
        client, root = self._client, note.root
        if client is None:
            return
        if isinstance(root, ResourceUpdatedNotification):
            await client.send_resource_updated(root.params.uri)
        elif isinstance(root, ToolListChangedNotification):
            slot.tools = None
            await client.send_tool_list_changed()
        elif isinstance(root, ResourceListChangedNotification):
            await client.send_resource_list_changed()
        elif isinstance(root, PromptListChangedNotification):
            await client.send_prompt_list_changed()

    async def _forward(self, server: str, req: Any, result_type: type[ResultT]) -> ResultT:
        # A fresh request of the same kind: the received one carries the client's JSON-RPC
        # envelope (``jsonrpc``, ``id``) as extra fields, which are not the upstream's.
        req = type(req)(method=req.method, params=req.params)
        session, slot, config = await self._upstream(server)
        rid = self.server.request_context.request_id
        slot.inflight.append(rid)
        try:
            result, _ = await request(
                session,
                ClientRequest(req),
                result_type,
                server=config,
                max_bytes=self._runner.max_result_bytes,
            )
        except McpError as exc:
            if exc.error.code == UPSTREAM_UNAVAILABLE:
                self._drop(server, slot)
            raise
        finally:
            slot.inflight.remove(rid)
        return result

    async def _pages(
        self,
        server: str,
        make: Callable[[PaginatedRequestParams | None], Any],
        result_type: type[ResultT],
        items: Callable[[ResultT], list[Any]],
    ) -> list[Any]:
        out: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self._forward(
                server, make(PaginatedRequestParams(cursor=cursor) if cursor else None), result_type
            )
            out.extend(items(page))
            cursor = getattr(page, "nextCursor", None)
            if not cursor:
                return out

    async def _each(self, fn: Callable[[str], Awaitable[list[Any]]]) -> list[Any]:
        """``fn`` over every server of the view; on ``/mcp`` a failing server is left out."""
        out: list[Any] = []
        for name in self.view.servers:
            try:
                out.extend(await fn(name))
            except McpError:
                if not self.view.prefixed:
                    raise
                log.warning("mcp server %r left out of a listing", name, exc_info=True)
        return out

    # -- handlers -----------------------------------------------------------------------

    def _register(self) -> None:
        handlers: dict[type, Callable[[Any], Awaitable[ServerResult]]] = {
            ListToolsRequest: self._list_tools,
            CallToolRequest: self._call_tool,
            ListResourcesRequest: self._list_resources,
            ListResourceTemplatesRequest: self._list_templates,
            ReadResourceRequest: self._read_resource,
            SubscribeRequest: self._subscribe,
            UnsubscribeRequest: self._subscribe,
            ListPromptsRequest: self._list_prompts,
            GetPromptRequest: self._get_prompt,
            CompleteRequest: self._complete,
            SetLevelRequest: self._set_level,
        }
        for kind, handler in handlers.items():
            self.server.request_handlers[kind] = self._entered(handler)
        self.server.notification_handlers[RootsListChangedNotification] = self._roots_changed

    def _entered(
        self, handler: Callable[[Any], Awaitable[ServerResult]]
    ) -> Callable[[Any], Awaitable[ServerResult]]:
        async def wrapped(req: Any) -> ServerResult:
            self._client = self.server.request_context.session
            return await handler(req)

        return wrapped

    async def _list_tools(self, _req: ListToolsRequest) -> ServerResult:
        async def one(name: str) -> list[Tool]:
            session, slot, _ = await self._upstream(name)
            tools = await self._runner.list_tools(self.principal, name, session=session)
            slot.tools = {t.name: t for t in tools}
            return [t.model_copy(update={"name": self.view.public(name, t.name)}) for t in tools]

        return ServerResult(ListToolsResult(tools=await self._each(one)))

    async def _call_tool(self, req: CallToolRequest) -> ServerResult:
        target = self.view.split(req.params.name)
        if target is None:
            raise rpc_error(INVALID_PARAMS, f"unknown tool {req.params.name!r}")
        server, tool = target
        session, slot, _ = await self._upstream(server)
        ctx = self.server.request_context
        token = ctx.meta.progressToken if ctx.meta is not None else None
        client = ctx.session

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            assert token is not None
            await client.send_progress_notification(
                token, progress, total, message, related_request_id=str(ctx.request_id)
            )

        schema = slot.tools.get(tool) if slot.tools is not None else None
        slot.inflight.append(ctx.request_id)
        try:
            result: CallToolResult = await self._runner.call_tool(
                self.principal,
                server,
                tool,
                req.params.arguments,
                session=session,
                progress=progress if token is not None else None,
                schema=schema,
            )
        except McpError as exc:
            if exc.error.code == UPSTREAM_UNAVAILABLE:
                self._drop(server, slot)
            raise
        finally:
            slot.inflight.remove(ctx.request_id)
        return ServerResult(result)

    async def _list_resources(self, _req: ListResourcesRequest) -> ServerResult:
        return ServerResult(ListResourcesResult(resources=await self._each(self._resources_of)))

    async def _resources_of(self, name: str) -> list[Resource]:
        found: list[Resource] = await self._pages(
            name,
            lambda p: ListResourcesRequest(params=p),
            ListResourcesResult,
            lambda r: r.resources,
        )
        for resource in found:
            self._uris[str(resource.uri)] = name
        return found

    async def _list_templates(self, _req: ListResourceTemplatesRequest) -> ServerResult:
        found = await self._each(self._templates_of)
        return ServerResult(ListResourceTemplatesResult(resourceTemplates=found))

    async def _templates_of(self, name: str) -> list[ResourceTemplate]:
        found: list[ResourceTemplate] = await self._pages(
            name,
            lambda p: ListResourceTemplatesRequest(params=p),
            ListResourceTemplatesResult,
            lambda r: r.resourceTemplates,
        )
        self._templates[name] = [t.uriTemplate.split("{", 1)[0] for t in found]
        return found

    async def _route_uri(self, uri: str) -> str:
        if not self.view.prefixed:
            return self.view.servers[0]
        for attempt in range(2):
            if uri in self._uris:
                return self._uris[uri]
            for name, prefixes in self._templates.items():
                if any(p and uri.startswith(p) for p in prefixes):
                    return name
            if attempt == 0:
                await self._each(self._resources_of)
                await self._each(self._templates_of)
        raise rpc_error(INVALID_PARAMS, f"unknown resource uri {uri!r}")

    async def _read_resource(self, req: ReadResourceRequest) -> ServerResult:
        server = await self._route_uri(str(req.params.uri))
        return ServerResult(await self._forward(server, req, ReadResourceResult))

    async def _subscribe(self, req: SubscribeRequest | UnsubscribeRequest) -> ServerResult:
        server = await self._route_uri(str(req.params.uri))
        return ServerResult(await self._forward(server, req, EmptyResult))

    async def _list_prompts(self, _req: ListPromptsRequest) -> ServerResult:
        async def one(name: str) -> list[Prompt]:
            found: list[Prompt] = await self._pages(
                name,
                lambda p: ListPromptsRequest(params=p),
                ListPromptsResult,
                lambda r: r.prompts,
            )
            return [p.model_copy(update={"name": self.view.public(name, p.name)}) for p in found]

        return ServerResult(ListPromptsResult(prompts=await self._each(one)))

    async def _get_prompt(self, req: GetPromptRequest) -> ServerResult:
        target = self.view.split(req.params.name)
        if target is None:
            raise rpc_error(INVALID_PARAMS, f"unknown prompt {req.params.name!r}")
        server, name = target
        params = req.params.model_copy(update={"name": name})
        forwarded = GetPromptRequest(params=params)
        return ServerResult(await self._forward(server, forwarded, GetPromptResult))

    async def _complete(self, req: CompleteRequest) -> ServerResult:
        ref = req.params.ref
        if isinstance(ref, PromptReference):
            target = self.view.split(ref.name)
            if target is None:
                raise rpc_error(INVALID_PARAMS, f"unknown prompt {ref.name!r}")
            server = target[0]
            ref = ref.model_copy(update={"name": target[1]})
        else:
            assert isinstance(ref, ResourceTemplateReference)
            server = await self._route_uri(ref.uri)
        forwarded = CompleteRequest(params=req.params.model_copy(update={"ref": ref}))
        return ServerResult(await self._forward(server, forwarded, CompleteResult))

    async def _set_level(self, req: SetLevelRequest) -> ServerResult:
        async def one(name: str) -> list[Any]:
            await self._forward(name, req, EmptyResult)
            return []

        await self._each(one)
        return ServerResult(EmptyResult())

    async def _roots_changed(self, _note: RootsListChangedNotification) -> None:
        for slot in list(self._slots.values()):
            if slot.session is not None and not slot.dead:
                await slot.session.send_roots_list_changed()


def _only(slot: _Slot) -> RequestId | None:
    return slot.inflight[0] if len(slot.inflight) == 1 else None
