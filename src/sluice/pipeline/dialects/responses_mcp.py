"""Responses ``mcp`` tools: reading them from a request, and the output items of the tool
loop the gateway runs for them (``mcp_list_tools``, ``mcp_call``), in OpenAI's shapes.

A tool ``{"type": "mcp", "server_label": ..., "allowed_tools"?: ..., "require_approval"?:
..., "server_url"?: ..., "headers"?: ..., "server_description"?: ...}`` names one of the
gateway's MCP servers by ``server_label``. See docs/mcp.md, "MCP tools in /v1/responses".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from mcp import types

from sluice.errors import BadRequest
from sluice.pipeline.dialects.responses_format import new_id

MCP = "mcp"


@dataclass(frozen=True, slots=True)
class McpSpec:
    """One ``mcp`` tool of a request."""

    index: int
    """Its position in ``tools`` (for error messages: ``tools[i]``)."""
    label: str
    """The gateway MCP server it names."""
    allowed: frozenset[str] | None
    """``allowed_tools``: only these of the server's tools are offered (``None``: all)."""


def has_mcp(tools: Any) -> bool:
    """The request offers at least one ``mcp`` tool (the one check on the Responses path)."""
    if not isinstance(tools, list):
        return False
    return any(isinstance(tool, dict) and tool.get("type") == MCP for tool in tools)


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


def _approval(value: Any, where: str) -> None:
    """Only ``never`` is served: the gateway's access lists decide which tools a key may
    run, and an approval round trip (``mcp_approval_request`` items) is not offered."""
    if value is None or value == "never":
        return
    raise BadRequest(
        f"'{where}' must be \"never\": the gateway runs the tools its access lists allow "
        "and does not offer approval requests",
        param=where,
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
    whether a server exists)."""
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
        if label not in servers or not may_use(label):
            if url:
                raise BadRequest(
                    f"'{where}.server_url' is not an MCP server of this gateway"
                    + (
                        "; this gateway runs only its configured servers' tools"
                        if not allow_external
                        else "; name a configured server in server_label"
                    ),
                    param=f"{where}.server_url",
                )
            raise BadRequest(
                f"'{where}.server_label': no MCP server {label!r} available to this key",
                param=f"{where}.server_label",
            )
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
        if label in seen:
            raise BadRequest(
                f"'{where}.server_label': {label!r} is offered twice",
                param=f"{where}.server_label",
            )
        seen.add(label)
        _approval(tool.get("require_approval"), f"{where}.require_approval")
        specs.append(
            McpSpec(i, label, _allowed(tool.get("allowed_tools"), f"{where}.allowed_tools"))
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
        "type": "mcp_call",
        "id": new_id("mcp"),
        "server_label": label,
        "name": name,
        "arguments": arguments,
        "output": None,
        "error": None,
        "status": "in_progress",
    }


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
