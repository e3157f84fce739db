"""The MCP tool loop of ``POST /v1/responses``: a request offering ``mcp`` tools is served by
the gateway running the model/tool loop itself.

The servers' tools are listed (through the :class:`ToolRunner`, which applies the caller's
access lists), offered to the model as function tools, and every round of the model is one
request through the one pipeline entry (:func:`sluice.pipeline.run.serve`: limits, budget,
routing, its own usage row). The model's calls of MCP tools are run through the runner
(access check, rate limit, one ``mcp.tool`` usage row each) and their results go back to
the model, until it answers without calling one, or ``mcp.max_tool_rounds`` rounds ran tools
(then the response is ``incomplete``, reason ``max_tool_rounds``).

Rounds run non-streamed; with ``stream: true`` the client gets the Responses events as the
loop goes (each tool list and call as it happens, then the final answer's items). Requests
without ``mcp`` tools never enter this module
(``sluice.api.responses`` checks once, with
:func:`~sluice.pipeline.dialects.responses_tools.has_mcp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from mcp import ClientSession, McpError, types

from sluice.auth.principal import Principal
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.mcp.external import open_external
from sluice.pipeline.context import RequestContext
from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects import responses_mcp as rm
from sluice.pipeline.dialects.responses import Turn
from sluice.pipeline.dialects.responses_tools import MCP, ChatTools
from sluice.pipeline.mcp_stream import EventStream, RoundSink
from sluice.pipeline.outcome import Outcome, usage_row
from sluice.pipeline.run import serve
from sluice.pipeline.services import Services
from sluice.storage.base import ResponseRepository, StoredResponse
from sluice.types import Endpoint, ProviderRequest, Usage
from sluice.usage.event import UsageEvent

MAX_TOOL_ROUNDS_REASON = "max_tool_rounds"
_CLIENT_CALLS = frozenset({"function_call", "custom_tool_call", "local_shell_call"})


class ToolRunner(Protocol):
    """Runs MCP tools for a principal (``sluice.mcp.tools.ToolRunner`` implements it)."""

    async def list_tools(
        self,
        principal: Principal,
        server: str,
        *,
        session: ClientSession | None = None,
        external: McpServerConfig | None = None,
    ) -> list[types.Tool]:
        """The tools of ``server`` this principal may use (filters applied). ``external``:
        a server of this request only (``mcp.allow_external``), reached over ``session``."""
        ...

    async def call_tool(
        self,
        principal: Principal,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        session: ClientSession | None = None,
        external: McpServerConfig | None = None,
    ) -> types.CallToolResult:
        """Run one tool: access check, rate limit, one usage row. Raises ``GatewayError``
        when the gateway refuses it, ``McpError`` for the server's JSON-RPC errors.
        ``session``, ``external``: as for :meth:`list_tools`."""
        ...


@dataclass(frozen=True, slots=True)
class McpTools:
    """What the loop needs from the process, built once by the composition root."""

    runner: ToolRunner
    servers: Callable[[], Mapping[str, McpServerConfig]]
    """The gateway's MCP servers by name (config and admin-managed)."""
    config: McpConfig
    record: Callable[[UsageEvent], None]
    """Where the usage rows of the rounds before the last go (the usage writer)."""
    store: ResponseRepository


async def run_loop(svc: Services, ctx: RequestContext, tools: McpTools) -> Outcome:
    """Serve a Responses request that offers ``mcp`` tools: the model/tool loop."""
    return await _Loop(svc, ctx, tools).run()


def _function_name(name: str, label: str, taken: set[str]) -> str:
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "tool"
    if clean in taken:
        clean = re.sub(r"[^A-Za-z0-9_-]", "_", f"{label}__{name}")[:60]
        base, n = clean, 2
        while clean in taken:
            clean, n = f"{base}_{n}", n + 1
    taken.add(clean)
    return clean


def _input_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


class _Loop:
    def __init__(self, svc: Services, ctx: RequestContext, tools: McpTools) -> None:
        self._svc = svc
        self._ctx = ctx
        self._deps = tools
        self._body = ctx.request.body
        self._turn: Turn = ctx.request.context
        self._names: dict[str, tuple[str, str]] = {}
        """Function name offered to the model → (server label, tool name)."""
        self._offered: list[dict[str, Any]] = []
        self._items: list[dict[str, Any]] = []
        """Output items so far (tool lists, calls, the model's text between calls)."""
        self._extra: list[dict[str, Any]] = []
        """Input items the next round adds: the model's calls and their results."""
        self._usage = Usage()
        self._id = rf.new_id("resp")
        self._created = int(time.time())
        self._events: EventStream | None = None
        self._others: list[Any] = []
        """The request's tools that are not ``mcp`` tools (offered unchanged)."""
        self._arrival = ctx.arrival
        """The arrival of the round running (its usage row's request id, times)."""
        self._specs: dict[str, rm.McpSpec] = {}
        self._tools: dict[tuple[str, str], types.Tool] = {}
        """The tools offered, by (server label, tool name)."""
        self._external: dict[str, tuple[McpServerConfig, ClientSession]] = {}
        """This request's external servers by label, and their open sessions."""
        self._input: list[Any] = _input_list(self._body["input"])
        """The request's input items (approval answers taken out) that every round sends."""

    @property
    def _principal(self) -> Principal:
        return self._ctx.arrival.principal

    async def run(self) -> Outcome:
        """Serve the request; the external servers it connected to are closed at the end."""
        async with contextlib.AsyncExitStack() as stack:
            return await self._serve(stack)

    async def _serve(self, stack: contextlib.AsyncExitStack) -> Outcome:
        ctx = self._ctx
        await self._list(stack)
        approvals = await self._approvals()
        if ctx.request.stream:
            self._events = EventStream(ctx.sink, self._shell("in_progress"))
            await self._events.start(ctx.base_headers)
            for item in self._items:
                await self._events.list_tools(item)
        await self._answer(approvals)
        rounds = self._deps.config.max_tool_rounds
        n = 0
        while True:
            n += 1
            sink = RoundSink(ctx.sink)
            outcome = await self._round(n, sink)
            if outcome.error is not None:
                await self._fail(outcome.error, sink)
                return outcome
            data = orjson.loads(sink.body)
            output = data.get("output") if isinstance(data.get("output"), list) else []
            calls = [it for it in output if self._is_mcp_call(it)]
            if not calls:
                return await self._finish(outcome, data, output, sink, incomplete=False)
            if n > rounds:
                return await self._finish(outcome, data, output, sink, incomplete=True)
            asked = [it for it in calls if self._needs_approval(it)]
            # The loop ends here when the client has something to do: run one of its own
            # tools (the model called one too) or approve calls. This round's calls that
            # need no approval run first; its other items end the answer.
            ends = bool(asked) or any(
                it.get("type") in _CLIENT_CALLS for it in output if it not in calls
            )
            if not ends:
                self._record(outcome)
            last: list[dict[str, Any]] = []
            for item in output:
                if item in asked:
                    last.append(self._approval_request(item))
                elif self._is_mcp_call(item):
                    await self._call(item)
                elif ends:
                    last.append(item)
                else:
                    await self._emit(item)
            if ends:
                return await self._finish(outcome, data, last, sink, incomplete=False)

    def _is_mcp_call(self, item: Any) -> bool:
        return (
            isinstance(item, dict)
            and item.get("type") == "function_call"
            and item.get("name") in self._names
        )

    async def _list(self, stack: contextlib.AsyncExitStack) -> None:
        """List the tools of every ``mcp`` tool's server (400 for a bad ``mcp`` tool);
        connect to the external ones (closed by ``stack``)."""
        deps = self._deps
        servers = deps.servers()
        specs = rm.mcp_specs(
            self._body["tools"],
            servers={name: cfg.url for name, cfg in servers.items()},
            may_use=self._principal.mcp.may_use_server,
            allow_external=deps.config.allow_external,
        )
        others = [
            t for t in self._body["tools"] if not (isinstance(t, dict) and t.get("type") == MCP)
        ]
        taken = {str(t.get("name")) for t in others if isinstance(t, dict) and t.get("name")}
        for spec in specs:
            self._specs[spec.label] = spec
            try:
                async with asyncio.timeout_at(self._ctx.deadline):
                    if spec.external is not None:
                        await self._connect(stack, spec)
                    listed = await deps.runner.list_tools(
                        self._principal, spec.label, **self._upstream(spec.label)
                    )
            except GatewayError:
                raise
            except (McpError, OSError, TimeoutError) as exc:
                raise GatewayError(
                    ErrorKind.PROVIDER_UNAVAILABLE,
                    f"the MCP server {spec.label!r} could not list its tools ({exc})",
                    param=f"tools[{spec.index}].server_label",
                ) from exc
            tools = [t for t in listed if spec.allowed is None or t.name in spec.allowed]
            self._items.append(rm.list_item(spec.label, tools))
            for tool in tools:
                self._tools[spec.label, tool.name] = tool
                name = _function_name(tool.name, spec.label, taken)
                self._names[name] = (spec.label, tool.name)
                self._offered.append(rm.function_tool(name, tool))
        self._others = others

    async def _connect(self, stack: contextlib.AsyncExitStack, spec: rm.McpSpec) -> None:
        assert spec.external is not None
        timeout_s = self._deps.config.external_timeout_s
        session = await stack.enter_async_context(
            open_external(spec.external, timeout_s=timeout_s, where=f"tools[{spec.index}]")
        )
        self._external[spec.label] = (spec.external.config(timeout_s=timeout_s), session)

    def _upstream(self, label: str) -> dict[str, Any]:
        """The runner's keyword arguments for a server: its session if external."""
        found = self._external.get(label)
        return {} if found is None else {"external": found[0], "session": found[1]}

    def _needs_approval(self, call: dict[str, Any]) -> bool:
        label, name = self._names[call["name"]]
        return self._specs[label].approval.needed(self._tools[label, name])

    def _approval_request(self, call: dict[str, Any]) -> dict[str, Any]:
        """The ``mcp_approval_request`` item of a call the client must approve first; its
        id is the call's id when the approval comes back."""
        label, name = self._names[call["name"]]
        return rm.approval_request(label, name, str(call.get("arguments") or "{}"))

    async def _approvals(self) -> list[tuple[dict[str, Any], bool]]:
        """The calls the request approves or denies (``mcp_approval_response`` items
        answering the ``mcp_approval_request`` items of ``previous_response_id``), checked
        before anything runs; taken out of the input."""
        answers = [
            (i, it)
            for i, it in enumerate(self._input)
            if isinstance(it, dict) and it.get("type") == rm.APPROVAL_RESPONSE
        ]
        if not answers:
            return []
        asked = await self._asked()
        out: list[tuple[dict[str, Any], bool]] = []
        for i, answer in answers:
            where = f"input[{i}]"
            request = asked.get(answer.get("approval_request_id"))
            if request is None:
                raise BadRequest(
                    f"'{where}.approval_request_id' names no approval request of the "
                    "previous response",
                    param=f"{where}.approval_request_id",
                )
            approve = answer.get("approve")
            if not isinstance(approve, bool):
                raise BadRequest(f"'{where}.approve' must be a boolean", param=f"{where}.approve")
            wanted = (request.get("server_label"), request.get("name"))
            name = next((f for f, pair in self._names.items() if pair == wanted), None)
            if name is None:
                raise BadRequest(
                    f"'{where}.approval_request_id': the tool {wanted[1]!r} of {wanted[0]!r} "
                    "is not offered by this request's mcp tools",
                    param=f"{where}.approval_request_id",
                )
            call = {
                "call_id": request["id"],
                "name": name,
                "arguments": str(request.get("arguments") or "{}"),
            }
            out.append((call, approve))
        answered = {id(it) for _, it in answers}
        self._input = [it for it in self._input if id(it) not in answered]
        return out

    async def _answer(self, approvals: list[tuple[dict[str, Any], bool]]) -> None:
        """Run the approved calls and tell the model which were denied, before the
        request's other input."""
        if not approvals:
            return
        for call, approve in approvals:
            if approve:
                await self._call(call)
            else:
                self._extra += rm.denied(call["call_id"], call["name"], call["arguments"])
        self._input, self._extra = self._extra + self._input, []

    async def _asked(self) -> dict[Any, dict[str, Any]]:
        """The approval requests of the previous response, by id."""
        previous = self._body.get("previous_response_id")
        stored = (
            await self._deps.store.get(previous, key_id=self._turn.key_id)
            if isinstance(previous, str)
            else None
        )
        output = stored.body.get("output") if stored is not None else None
        return {
            it.get("id"): it
            for it in (output if isinstance(output, list) else [])
            if isinstance(it, dict) and it.get("type") == rm.APPROVAL_REQUEST
        }

    def _tool_choice(self) -> Any:
        choice = self._body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == MCP:
            wanted = (choice.get("server_label"), choice.get("name"))
            for name, pair in self._names.items():
                if pair == wanted:
                    return {"type": "function", "name": name}
            return "required" if self._names else "auto"
        return choice

    async def _round(self, n: int, sink: RoundSink) -> Outcome:
        ctx = self._ctx
        body = {
            **self._body,
            "input": self._input + self._extra,
            "tools": self._others + self._offered,
            "stream": False,
            "store": False,
        }
        if body.get("tool_choice") is not None:
            body["tool_choice"] = self._tool_choice()
        if not body["tools"]:
            del body["tools"]
            body.pop("tool_choice", None)
        turn = self._turn
        req = ProviderRequest(
            Endpoint.RESPONSES,
            body,
            orjson.dumps(body),
            ctx.request.model,
            False,
            False,
            Turn(turn.key_id, turn.history, turn.previous_native),
        )
        arrival = ctx.arrival
        if n > 1:
            arrival = arrival._replace(
                request_id=f"{arrival.request_id}.{n}",
                created_at=time.time(),
                started=time.perf_counter(),
            )
        else:
            arrival = arrival._replace(request_id=f"{arrival.request_id}.1")
        self._arrival = arrival
        return await serve(self._svc, ctx._replace(arrival=arrival, request=req, sink=sink))

    def _record(self, outcome: Outcome) -> None:
        """The usage row of a round that called tools (not the last: that one is the
        request's own, written by the caller from the outcome :meth:`run` returns, under the
        request's id); request id ``<request id>.<round>``."""
        row = usage_row(self._arrival, outcome, request=self._ctx.request, want_metadata=False)
        self._deps.record(row)
        self._add_usage(outcome)

    def _add_usage(self, outcome: Outcome) -> None:
        u, more = self._usage, outcome.usage
        if more is not None:
            self._usage = Usage(
                u.prompt_tokens + more.prompt_tokens,
                u.completion_tokens + more.completion_tokens,
                u.cached_tokens + more.cached_tokens,
                u.cache_write_tokens + more.cache_write_tokens,
                u.estimated or more.estimated,
            )

    async def _emit(self, item: dict[str, Any]) -> None:
        """One of the model's own items (its text between tool calls)."""
        self._items.append(item)
        if item.get("type") == "message":
            self._extra.append(item)
        if self._events is not None:
            await self._events.item(item)

    async def _call(self, call: dict[str, Any]) -> None:
        """Run one MCP tool call; its item and result join the output and the next
        round's input."""
        label, tool = self._names[call["name"]]
        arguments = str(call.get("arguments") or "{}")
        item = rm.call_item(label, tool, arguments)
        self._items.append(item)
        if self._events is not None:
            await self._events.call_started(item)
        try:
            args = orjson.loads(arguments)
            if not isinstance(args, dict):
                raise ValueError("not an object")
        except ValueError:
            item["error"] = rm.http_error(400, "the tool's arguments are not a JSON object")
        else:
            await self._run(item, label, tool, args)
        item["status"] = "failed" if item["error"] is not None else "completed"
        if self._events is not None:
            await self._events.call_ended(item)
        call_id = str(call.get("call_id") or call.get("id") or item["id"])
        self._extra.append(
            {
                "type": "function_call",
                "call_id": call_id,
                "name": call["name"],
                "arguments": arguments,
            }
        )
        output = item["output"] if item["error"] is None else rm.error_text(item["error"])
        self._extra.append({"type": "function_call_output", "call_id": call_id, "output": output})

    async def _run(self, item: dict[str, Any], label: str, tool: str, args: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout_at(self._ctx.deadline):
                result = await self._deps.runner.call_tool(
                    self._principal, label, tool, args, **self._upstream(label)
                )
        except GatewayError as exc:
            item["error"] = rm.http_error(exc.status, self._svc.redactor(exc.message))
        except McpError as exc:
            item["error"] = rm.protocol_error(exc.error.code, self._svc.redactor(exc.error.message))
        except TimeoutError:
            item["error"] = rm.http_error(504, "the tool call passed the request's deadline")
        except OSError as exc:
            item["error"] = rm.http_error(502, f"the MCP server went away ({type(exc).__name__})")
        else:
            if result.isError:
                item["error"] = rm.execution_error(result)
            else:
                item["output"] = rm.result_text(result)

    def _shell(self, status: str) -> dict[str, Any]:
        body = self._body
        shell: dict[str, Any] = {
            "id": self._id,
            "object": "response",
            "created_at": self._created,
            "status": status,
            "model": self._ctx.request.model,
            "output": [],
            "error": None,
            "incomplete_details": None,
            "tools": body.get("tools", []),
            "tool_choice": body.get("tool_choice", "auto"),
            "parallel_tool_calls": True,
            "store": body.get("store", True),
            "usage": None,
        }
        for name in ("instructions", "metadata", "previous_response_id", "user", "text"):
            if body.get(name) is not None:
                shell[name] = body[name]
        return shell

    async def _finish(
        self,
        outcome: Outcome,
        data: dict[str, Any],
        output: list[dict[str, Any]],
        sink: RoundSink,
        *,
        incomplete: bool,
    ) -> Outcome:
        """Answer with every item of the loop and the last round's; save it when asked."""
        self._add_usage(outcome)
        final = {**data, **self._shell(str(data.get("status") or "completed"))}
        last: list[dict[str, Any]] = []
        for item in output:
            if self._is_mcp_call(item):  # past the bound: listed, not run
                label, tool = self._names[item["name"]]
                pending = rm.call_item(label, tool, str(item.get("arguments") or "{}"))
                pending["status"] = "incomplete"
                last.append(pending)
            else:
                last.append(item)
        final["output"] = self._items + last
        final["usage"] = rf.usage_obj(self._usage)
        final["incomplete_details"] = data.get("incomplete_details")
        if incomplete:
            final["status"] = "incomplete"
            final["incomplete_details"] = {"reason": MAX_TOOL_ROUNDS_REASON}
        if final["store"]:
            await self._save(final, last)
        if self._events is not None:
            for item in last:
                await self._events.item(item)
            await self._events.finish(final)
        else:
            await self._ctx.sink.json(200, orjson.dumps(final), sink.headers)
        return outcome

    async def _save(self, final: dict[str, Any], last: list[dict[str, Any]]) -> None:
        turn = self._turn
        tools = ChatTools()
        answer = [it for it in last if it.get("type") not in (rm.CALL, rm.APPROVAL_REQUEST)]
        conversation = (
            turn.history
            + rf.input_messages(self._input + self._extra, tools=tools)
            + (rf.output_messages(answer, tools) if answer or not last else [])
        )
        await self._deps.store.save(
            StoredResponse(
                self._id, turn.key_id, float(self._created), self._ctx.request.model,
                conversation, final,
            )
        )  # fmt: skip

    async def _fail(self, error: GatewayError, sink: RoundSink) -> None:
        """A round failed: its error goes to the client (in-band once the stream began)."""
        ctx = self._ctx
        if error.kind is ErrorKind.CLIENT_DISCONNECTED or ctx.sink.gone:
            return
        if self._events is not None:
            await ctx.sink.end(ctx.dialect.stream_error(error))
        elif sink.failure is not None:
            exc, body, headers = sink.failure
            await ctx.sink.error(exc, body, headers)
        else:
            await ctx.sink.error(error, ctx.dialect.error(error), ctx.base_headers)
