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
without ``mcp`` tools never enter this module (:func:`serve_responses` checks once).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from mcp import McpError, types

from sluice.auth.principal import Principal
from sluice.config.mcp import McpConfig, McpServerConfig
from sluice.errors import ErrorKind, GatewayError
from sluice.pipeline.context import RequestContext
from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects import responses_mcp as rm
from sluice.pipeline.dialects.responses import Turn
from sluice.pipeline.dialects.responses_tools import ChatTools
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

    async def list_tools(self, principal: Principal, server: str) -> list[types.Tool]:
        """The tools of ``server`` this principal may use (filters applied)."""
        ...

    async def call_tool(
        self, principal: Principal, server: str, tool: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        """Run one tool: access check, rate limit, one usage row. Raises ``GatewayError``
        when the gateway refuses it, ``McpError`` for the server's JSON-RPC errors."""
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


async def serve_responses(svc: Services, ctx: RequestContext, tools: McpTools) -> Outcome:
    """Serve a Responses request: the tool loop when it offers ``mcp`` tools, else
    :func:`serve` unchanged."""
    if not rm.has_mcp(ctx.request.body.get("tools")):
        return await serve(svc, ctx)
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

    @property
    def _principal(self) -> Principal:
        return self._ctx.arrival.principal

    async def run(self) -> Outcome:
        ctx = self._ctx
        await self._list()
        if ctx.request.stream:
            self._events = EventStream(ctx.sink, self._shell("in_progress"))
            await self._events.start(ctx.base_headers)
            for item in self._items:
                await self._events.list_tools(item)
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
            self._record(outcome)
            for item in output:
                if self._is_mcp_call(item):
                    await self._call(item)
                else:
                    await self._emit(item)
            if any(it.get("type") in _CLIENT_CALLS for it in output if it not in calls):
                # The model also called one of the client's own tools: the client runs it.
                return await self._finish(outcome, data, [], sink, incomplete=False)

    def _is_mcp_call(self, item: Any) -> bool:
        return (
            isinstance(item, dict)
            and item.get("type") == "function_call"
            and item.get("name") in self._names
        )

    async def _list(self) -> None:
        """List the tools of every ``mcp`` tool's server (400 for a bad ``mcp`` tool)."""
        deps = self._deps
        servers = deps.servers()
        specs = rm.mcp_specs(
            self._body["tools"],
            servers={name: cfg.url for name, cfg in servers.items()},
            may_use=self._principal.mcp.may_use_server,
            allow_external=deps.config.allow_external,
        )
        others = [
            t for t in self._body["tools"] if not (isinstance(t, dict) and t.get("type") == rm.MCP)
        ]
        taken = {str(t.get("name")) for t in others if isinstance(t, dict) and t.get("name")}
        for spec in specs:
            try:
                async with asyncio.timeout_at(self._ctx.deadline):
                    listed = await deps.runner.list_tools(self._principal, spec.label)
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
                name = _function_name(tool.name, spec.label, taken)
                self._names[name] = (spec.label, tool.name)
                self._offered.append(rm.function_tool(name, tool))
        self._others = others

    def _tool_choice(self) -> Any:
        choice = self._body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == rm.MCP:
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
            "input": _input_list(self._body["input"]) + self._extra,
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
                result = await self._deps.runner.call_tool(self._principal, label, tool, args)
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
        conversation = (
            turn.history
            + rf.input_messages(_input_list(self._body["input"]) + self._extra, tools=tools)
            + rf.output_messages([it for it in last if it.get("type") != "mcp_call"], tools)
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
