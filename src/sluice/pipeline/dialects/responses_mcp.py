"""Responses ``mcp`` tools: reading them from a request, and the output items of the tool
loop the gateway runs for them (``mcp_list_tools``, ``mcp_call``), in OpenAI's shapes.

A tool ``{"type": "mcp", "server_label": ..., "allowed_tools"?: ..., "require_approval"?:
..., "server_url"?: ..., "headers"?: ..., "server_description"?: ...}`` names one of the
gateway's MCP servers by ``server_label``. See docs/mcp.md, "MCP tools in /v1/responses".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from mcp import types

from sluice.errors import BadRequest
from sluice.mcp.external import ExternalServer, check_external_url, check_headers
from sluice.pipeline.dialects.responses_format import new_id
from sluice.pipeline.dialects.responses_tools import MCP

CALL = "mcp_call"
APPROVAL_REQUEST = "mcp_approval_request"
APPROVAL_RESPONSE = "mcp_approval_response"
DENIED = "error: the user denied this tool call"
"""What the model reads for a call whose approval was refused."""
EXTERNAL_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""The ``server_label`` of an external server (it names the server in usage rows)."""


@dataclass(frozen=True, slots=True)
class McpSpec:
    """One ``mcp`` tool of a request."""

    index: int
    """Its position in ``tools`` (for error messages: ``tools[i]``)."""
    label: str
    """The gateway MCP server it names."""
    allowed: frozenset[str] | None
    """``allowed_tools``: only these of the server's tools are offered (``None``: all)."""
    approval: Approval = field(default_factory=lambda: Approval(False))
    """Which of its tools need the caller's approval before they run."""
    external: ExternalServer | None = None
    """Set when the tool names a URL that is not a gateway server (``mcp.allow_external``)."""


def _allowed(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        if set(value) - {"tool_names", "read_only"}:
            raise BadRequest(
                f"'{where}' takes tool_names (and read_only)", param=f"{where}.tool_names"
            )
        value = value.get("tool_names", [])
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise BadRequest(
            f"'{where}' must be an array of tool names or {{\"tool_names\": [...]}}", param=where
        )
    return frozenset(value)


@dataclass(frozen=True, slots=True)
class ToolMatch:
    """One half of a ``require_approval`` filter: ``tool_names`` and/or ``read_only`` (the
    tool's ``readOnlyHint``); it matches a tool when every condition it sets holds, and
    nothing when it sets none."""

    names: frozenset[str] | None = None
    read_only: bool | None = None

    def matches(self, tool: types.Tool) -> bool:
        if self.names is None and self.read_only is None:
            return False
        if self.names is not None and tool.name not in self.names:
            return False
        hint = bool(tool.annotations and tool.annotations.readOnlyHint)
        return self.read_only is None or hint == self.read_only


@dataclass(frozen=True, slots=True)
class Approval:
    """``require_approval`` of one ``mcp`` tool: ``"never"`` (the default here), ``"always"``,
    or ``{"always": filter, "never": filter}`` (a tool neither matches needs approval, as
    on OpenAI; ``always`` wins over ``never``)."""

    default: bool
    always: ToolMatch = ToolMatch()
    never: ToolMatch = ToolMatch()

    def needed(self, tool: types.Tool) -> bool:
        if self.always.matches(tool):
            return True
        if self.never.matches(tool):
            return False
        return self.default


def _match(value: Any, where: str) -> ToolMatch:
    if value is None:
        return ToolMatch()
    if not isinstance(value, dict) or set(value) - {"tool_names", "read_only"}:
        raise BadRequest(f"'{where}' takes tool_names and read_only", param=where)
    read_only = value.get("read_only")
    if read_only is not None and not isinstance(read_only, bool):
        raise BadRequest(f"'{where}.read_only' must be a boolean", param=f"{where}.read_only")
    names = value.get("tool_names")
    return ToolMatch(_allowed(names, f"{where}.tool_names"), read_only)


def _approval(value: Any, where: str) -> Approval:
    if value is None or value == "never":
        return Approval(False)
    if value == "always":
        return Approval(True)
    if not isinstance(value, dict) or not value or set(value) - {"always", "never"}:
        raise BadRequest(
            f'\'{where}\' must be "always", "never" or {{"always": {{...}}, "never": {{...}}}}',
            param=where,
        )
    return Approval(
        True,
        _match(value.get("always"), f"{where}.always"),
        _match(value.get("never"), f"{where}.never"),
    )


def _foreign_url(url: str, server_url: str | None, label: str) -> bool:
    """A ``server_url`` that names something else than the configured server: neither its
    upstream URL nor the gateway's own ``/mcp/{label}`` endpoint."""
    wanted = url.rstrip("/")
    return wanted != (server_url or "").rstrip("/") and not wanted.endswith(f"/mcp/{label}")


def mcp_specs(
    tools: list[Any], *, servers: Mapping[str, str | None], may_use: Any, allow_external: bool
) -> list[McpSpec]:
    """The ``mcp`` tools of ``tools``, checked. ``servers``: the configured servers' names
    and upstream URLs; ``may_use(label) -> bool``: the caller's server access. An unknown
    server and one the caller may not use are refused alike (the answer does not tell
    whether a server exists). With ``allow_external``, a ``server_url`` under a label that
    is no configured server is an external server when the caller's access allows that
    label (``sluice.mcp.external``)."""
    specs: list[McpSpec] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != MCP:
            continue
        where = f"tools[{i}]"
        label = tool.get("server_label")
        if not isinstance(label, str) or not label:
            raise BadRequest(
                f"'{where}.server_label' must be a non-empty string", param=f"{where}.server_label"
            )
        url = tool.get("server_url")
        if url is not None and not isinstance(url, str):
            raise BadRequest(f"'{where}.server_url' must be a string", param=f"{where}.server_url")
        if tool.get("connector_id") is not None:
            raise BadRequest(
                f"'{where}.connector_id': connectors are not offered; name a gateway MCP server "
                "in server_label",
                param=f"{where}.connector_id",
            )
        external: ExternalServer | None = None
        if label in servers and may_use(label):
            if url and _foreign_url(url, servers[label], label):
                raise BadRequest(
                    f"'{where}.server_url' does not name the gateway's server {label!r}; "
                    "omit it or use the server's gateway URL",
                    param=f"{where}.server_url",
                )
            if tool.get("headers"):
                raise BadRequest(
                    f"'{where}.headers': the gateway holds the credentials of its MCP servers; "
                    "send no headers",
                    param=f"{where}.headers",
                )
        elif url and allow_external and label not in servers and may_use(label):
            if not EXTERNAL_LABEL.match(label):
                raise BadRequest(
                    f"'{where}.server_label' of an external server must be 1 to 64 letters, "
                    "digits, '_', '-' or '.'",
                    param=f"{where}.server_label",
                )
            check_external_url(url, f"{where}.server_url")
            external = ExternalServer(
                label, url, check_headers(tool.get("headers"), f"{where}.headers")
            )
        elif url:
            raise BadRequest(
                (
                    f"'{where}.server_url': this key may not use an MCP server labelled {label!r}"
                    if allow_external
                    else f"'{where}.server_url' is not an MCP server of this gateway; this "
                    "gateway runs only its configured servers' tools"
                ),
                param=f"{where}.server_url",
            )
        else:
            raise BadRequest(
                f"'{where}.server_label': no MCP server {label!r} available to this key",
                param=f"{where}.server_label",
            )
        if label in seen:
            raise BadRequest(
                f"'{where}.server_label': {label!r} is offered twice",
                param=f"{where}.server_label",
            )
        seen.add(label)
        specs.append(
            McpSpec(
                i,
                label,
                _allowed(tool.get("allowed_tools"), f"{where}.allowed_tools"),
                _approval(tool.get("require_approval"), f"{where}.require_approval"),
                external,
            )
        )
    return specs


def list_item(label: str, tools: Sequence[types.Tool]) -> dict[str, Any]:
    """The ``mcp_list_tools`` output item of one server's tools."""
    return {
        "type": "mcp_list_tools",
        "id": new_id("mcpl"),
        "server_label": label,
        "tools": [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.inputSchema,
                "annotations": (
                    None
                    if tool.annotations is None
                    else tool.annotations.model_dump(mode="json", exclude_none=True)
                ),
            }
            for tool in tools
        ],
        "error": None,
    }


def function_tool(name: str, tool: types.Tool) -> dict[str, Any]:
    """The Responses ``function`` tool the model is offered for an MCP tool."""
    out: dict[str, Any] = {"type": "function", "name": name, "parameters": tool.inputSchema}
    if tool.description:
        out["description"] = tool.description
    return out


def call_item(label: str, name: str, arguments: str) -> dict[str, Any]:
    """An ``mcp_call`` item before it ran."""
    return {
        "type": CALL,
        "id": new_id("mcp"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": None,
        "status": "in_progress",
    }


def approval_request(label: str, name: str, arguments: str) -> dict[str, Any]:
    """An ``mcp_approval_request`` item: the call waits for the client's approval."""
    return {
        "type": APPROVAL_REQUEST,
        "id": new_id("mcpr"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
    }


def denied(call_id: str, function: str, arguments: str) -> list[dict[str, Any]]:
    """The input items telling the model that the client denied a call."""
    return [
        {"type": "function_call", "call_id": call_id, "name": function, "arguments": arguments},
        {"type": "function_call_output", "call_id": call_id, "output": DENIED},
    ]


def result_text(result: types.CallToolResult) -> str:
    """A tool result as the model reads it: its text parts, other parts as JSON, or the
    structured content when there is nothing else."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        else:
            parts.append(block.model_dump_json(exclude_none=True))
    if not parts and result.structuredContent is not None:
        parts.append(orjson.dumps(result.structuredContent).decode())
    return "\n".join(parts)


def execution_error(result: types.CallToolResult) -> dict[str, Any]:
    """The ``error`` of a call whose tool answered ``isError``."""
    return {
        "type": "mcp_tool_execution_error",
        "content": [block.model_dump(mode="json", exclude_none=True) for block in result.content],
    }


def protocol_error(code: int, message: str) -> dict[str, Any]:
    """The ``error`` of a call the server refused (a JSON-RPC error)."""
    return {"type": "mcp_protocol_error", "code": code, "message": message}


def http_error(status: int, message: str) -> dict[str, Any]:
    """The ``error`` of a call the gateway refused or could not complete (access, rate
    limit, deadline, an upstream that went away)."""
    return {"type": "http_error", "code": status, "message": message}


def error_text(error: dict[str, Any]) -> str:
    """What the model reads for a failed call."""
    if error["type"] == "mcp_tool_execution_error":
        texts = [str(b.get("text", "")) for b in error["content"] if isinstance(b, dict)]
        return "error: " + (" ".join(t for t in texts if t) or "the tool failed")
    return f"error: {error['message']}"
