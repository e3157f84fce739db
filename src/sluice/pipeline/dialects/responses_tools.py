"""Responses tools on OpenAI chat, for models served through chat.

==============================  =============================================================
Responses tool                  On chat
==============================  =============================================================
``function``                    a function tool, unchanged
``custom`` (free-form input)    a function tool taking one string argument ``input``; its
                                calls come back as ``custom_tool_call`` items, and
                                ``custom_tool_call``/``_output`` items go up as a tool call
                                and its result
``namespace``                   its function tools, flattened (a name taken by an earlier
                                tool becomes ``<namespace>__<name>``); their calls come back
                                as ``function_call`` items carrying ``namespace``
``local_shell`` (run by the      a function tool ``local_shell`` taking the command's argv
client)                         (``command``), ``working_directory``, ``timeout_ms``, ``env``;
                                its calls come back as ``local_shell_call`` items with an
                                ``exec`` action, and ``local_shell_call``/``_output`` items go
                                up as a tool call and its result
``web_search``,                 dropped: run by OpenAI's servers, no chat model can run them.
``file_search``,                The answer names them in ``x-sluice-warning``
``computer_use_preview``,
``image_generation``,
``code_interpreter``, others
==============================  =============================================================

``mcp`` tools never reach this table when the gateway runs MCP tools: the tool loop
(``sluice.pipeline.mcp_loop``) offers their tools as ``function`` tools; without a tool
runner they are dropped like the built-in tools above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.errors import BadRequest

LOCAL_SHELL = "local_shell"
MCP = "mcp"
"""The ``type`` of an ``mcp`` tool: run by the gateway's tool loop
(:mod:`sluice.pipeline.mcp_loop`), not carried to chat."""
LOCAL_SHELL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": LOCAL_SHELL,
        "description": "Run a command on the user's machine and get its output.",
        "parameters": {
            "type": "object",
            "properties": {
                "command": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The program and its arguments (argv).",
                },
                "working_directory": {"type": "string"},
                "timeout_ms": {"type": "integer"},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["command"],
        },
    },
}
CUSTOM_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
    "required": ["input"],
}


@dataclass(slots=True)
class ChatTools:
    """The chat tools of a Responses request, and how to name their calls back."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    custom: set[str] = field(default_factory=set)
    """Chat function names that stand for ``custom`` tools."""
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Chat function name → (namespace, tool name) for flattened namespace tools."""
    local_shell: bool = False
    """The ``local_shell`` tool is offered (as the function :data:`LOCAL_SHELL`)."""
    dropped: list[str] = field(default_factory=list)
    """What chat cannot carry, e.g. ``tool web_search`` (for the warning header)."""


def _function(tool: dict[str, Any], name: str, *, where: str) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise BadRequest(f"'{where}.name' must be a non-empty string", param=f"{where}.name")
    fn: dict[str, Any] = {"name": name, "parameters": tool.get("parameters") or {}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    if tool.get("strict") is not None:
        fn["strict"] = tool["strict"]
    return {"type": "function", "function": fn}


def _custom(tool: dict[str, Any], *, where: str) -> dict[str, Any]:
    out = _function(
        {**tool, "parameters": CUSTOM_PARAMETERS, "strict": None}, tool.get("name", ""), where=where
    )
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar":
        note = f"Input grammar ({fmt.get('syntax', 'lark')}):\n{fmt.get('definition', '')}"
        described = out["function"].get("description")
        out["function"]["description"] = f"{described}\n\n{note}" if described else note
    return out


def chat_tools(tools: Any) -> ChatTools:
    """Map ``tools``; raise ``BadRequest`` only for a malformed tool, never for its type."""
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array", param="tools")
    out = ChatTools()
    taken: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise BadRequest(f"'{where}' must be an object", param=where)
        kind = tool.get("type")
        if kind == "function":
            out.tools.append(_function(tool, str(tool.get("name")), where=where))
        elif kind == "custom":
            out.tools.append(_custom(tool, where=where))
            out.custom.add(str(tool["name"]))
        elif kind == LOCAL_SHELL:
            out.tools.append(LOCAL_SHELL_TOOL)
            out.local_shell = True
        elif kind == "namespace":
            _namespace(tool, out, taken, where=where)
            continue
        else:
            out.dropped.append(f"tool {kind}")
            continue
        taken.add(out.tools[-1]["function"]["name"])
    return out


def _namespace(tool: dict[str, Any], out: ChatTools, taken: set[str], *, where: str) -> None:
    space = str(tool.get("name") or "")
    members = tool.get("tools")
    if not isinstance(members, list):
        raise BadRequest(f"'{where}.tools' must be an array", param=f"{where}.tools")
    for j, member in enumerate(members):
        inner = f"{where}.tools[{j}]"
        if not isinstance(member, dict) or member.get("type", "function") != "function":
            out.dropped.append(
                f"tool {space}.{member.get('type') if isinstance(member, dict) else '?'}"
            )
            continue
        name = str(member.get("name"))
        chat_name = f"{space}__{name}" if name in taken else name
        out.tools.append(_function(member, chat_name, where=inner))
        out.namespaces[chat_name] = (space, name)
        taken.add(chat_name)


def chat_tool_choice(choice: Any, tools: ChatTools) -> Any:
    """``tool_choice`` on chat; a choice of a dropped built-in tool becomes ``auto``."""
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    if isinstance(choice, dict) and choice.get("type") == LOCAL_SHELL and tools.local_shell:
        return {"type": "function", "function": {"name": LOCAL_SHELL}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return "required" if choice.get("mode") == "required" else "auto"
    if isinstance(choice, dict):
        tools.dropped.append(f"tool_choice {choice.get('type')}")
        return "auto"
    raise BadRequest(
        "'tool_choice' must be auto, none, required or a tool choice", param="tool_choice"
    )


def has_mcp(tools: Any) -> bool:
    """The request offers at least one ``mcp`` tool (the one check on the Responses path;
    free of the MCP SDK, which only the tool loop loads)."""
    if not isinstance(tools, list):
        return False
    return any(isinstance(tool, dict) and tool.get("type") == MCP for tool in tools)
