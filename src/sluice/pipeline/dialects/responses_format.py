"""Responses API ↔ OpenAI chat: request items to chat messages, completions to output items."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.errors import BadRequest
from sluice.ids import random_hex
from sluice.pipeline.dialects.responses_tools import LOCAL_SHELL, ChatTools
from sluice.types import Usage


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_hex(12)}"


def _field(name: str, expected: str) -> BadRequest:
    return BadRequest(f"'{name}' must be {expected}", param=name)


def _file_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    """An ``input_file`` as a chat ``file`` part. The documents stage has made it text
    already unless the deployment takes its type (and inlined a gateway ``file_id``)."""
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        raise _field(f"{where}.file_data", "a base64 data URL (file URLs are not fetched)")
    spec = {"file_data": data}
    if isinstance(part.get("filename"), str):
        spec["filename"] = part["filename"]
    return {"type": "file", "file": spec}


def _parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _field(f"{where}.content", "a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _field(
                    f"{where}.content[{j}].image_url", "a URL (file ids are not supported)"
                )
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": url, "detail": part.get("detail", "auto")},
                }
            )
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal", "")})
        elif kind == "input_file":
            parts.append(_file_part(part, f"{where}.content[{j}]"))
        else:
            raise _field(
                f"{where}.content[{j}].type", "input_text, input_image, input_file or output_text"
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


_SILENT = frozenset({"reasoning", "compaction", "item_reference"})
"""Items dropped without a warning: the model's own earlier reasoning (chat has no field
for it; encrypted content is only readable by OpenAI), an OpenAI compaction blob, and
references to items stored upstream."""


def _append_call(out: list[dict[str, Any]], call: dict[str, Any]) -> None:
    last = out[-1] if out else None
    if last and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):  # content parts (input_text, ...)
        return "".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
    return orjson.dumps(output).decode()


def _chat_name(item: dict[str, Any], tools: ChatTools | None) -> str:
    name = str(item.get("name", ""))
    space = item.get("namespace")
    if tools is not None and isinstance(space, str):
        for chat_name, pair in tools.namespaces.items():
            if pair == (space, name):
                return chat_name
    return name


def _item_messages(
    item: dict[str, Any], out: list[dict[str, Any]], tools: ChatTools | None
) -> bool:
    """Append the chat form of a non-message item; ``False`` if chat has none."""
    kind = item.get("type")
    if kind in ("function_call", "custom_tool_call", "local_shell_call"):
        args = item.get("arguments", "")
        name = _chat_name(item, tools)
        if kind == "custom_tool_call":
            args = orjson.dumps({"input": str(item.get("input", ""))}).decode()
        elif kind == "local_shell_call":
            action = item.get("action")
            fields = action if isinstance(action, dict) else {}
            args = orjson.dumps({k: v for k, v in fields.items() if k != "type"}).decode()
            name = LOCAL_SHELL
        call_id = item.get("call_id") or item.get("id") or ""
        fn = {"name": name, "arguments": args}
        _append_call(out, {"id": call_id, "type": "function", "function": fn})
    elif kind in ("function_call_output", "custom_tool_call_output", "local_shell_call_output"):
        out.append(
            {
                "role": "tool",
                "tool_call_id": item.get("call_id") or item.get("id") or "",
                "content": _output_text(item.get("output")),
            }
        )
    else:
        return kind in _SILENT
    return True


def input_messages(
    value: Any, *, tools: ChatTools | None = None, dropped: list[str] | None = None
) -> list[dict[str, Any]]:
    """The request's ``input`` as chat messages. Item types chat cannot carry are left out
    and named in ``dropped`` (reasoning items silently: see ``_SILENT``)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise _field("input", "a string or an array of input items")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _field(where, "an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise _field(f"{where}.role", "user, assistant, system or developer")
            out.append(
                {
                    "role": "system" if role == "developer" else role,
                    "content": _parts(item.get("content"), where),
                }
            )
        elif not _item_messages(item, out, tools) and dropped is not None:
            dropped.append(str(kind))
    return out


def chat_response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {"name": fmt.get("name", "response"), "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": schema}
    raise _field("text.format.type", "text, json_object or json_schema")


_EFFORTS = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def reasoning_effort(reasoning: Any) -> str | None:
    """Chat's ``reasoning_effort`` of ``reasoning.effort`` (``none``: nothing; ``summary``
    has no chat equivalent)."""
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
    return _EFFORTS.get(effort) if isinstance(effort, str) else None


def usage_obj(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def message_item(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def custom_input(arguments: str) -> str:
    """A custom tool's free-form input from the chat call's ``{"input": ...}`` arguments."""
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return arguments
    value = args.get("input") if isinstance(args, dict) else None
    return value if isinstance(value, str) else arguments


def tool_item(
    item_id: str, call_id: str, name: str, arguments: str, tools: ChatTools, *, status: str
) -> dict[str, Any]:
    """The output item of a chat tool call: ``function_call`` (with ``namespace`` for a
    flattened namespace tool), ``custom_tool_call`` or ``local_shell_call``."""
    if name == LOCAL_SHELL and tools.local_shell:
        return local_shell_item(item_id, call_id, arguments, status=status)
    if name in tools.custom:
        return {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
            "status": status,
        }
    item = call_item(item_id, call_id, name, arguments, status=status)
    if name in tools.namespaces:
        item["namespace"], item["name"] = tools.namespaces[name]
    return item


def local_shell_item(item_id: str, call_id: str, arguments: str, *, status: str) -> dict[str, Any]:
    try:
        args = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        args = {}
    args = args if isinstance(args, dict) else {}
    command = args.get("command")
    action: dict[str, Any] = {
        "type": "exec",
        "command": command if isinstance(command, list) else [],
        "env": args.get("env") if isinstance(args.get("env"), dict) else {},
        "timeout_ms": args.get("timeout_ms"),
        "working_directory": args.get("working_directory"),
        "user": None,
    }
    return {
        "type": "local_shell_call",
        "id": item_id,
        "call_id": call_id,
        "action": action,
        "status": status,
    }


def output_from_chat(
    data: dict[str, Any], tools: ChatTools
) -> tuple[list[dict[str, Any]], str | None]:
    """Output items and the finish reason of a chat completion."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    items: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        items.append(message_item(new_id("msg"), text))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        items.append(
            tool_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                fn.get("name", ""),
                fn.get("arguments", ""),
                tools,
                status="completed",
            )
        )
    return items, choice.get("finish_reason")


def output_messages(items: list[dict[str, Any]], tools: ChatTools) -> list[dict[str, Any]]:
    """Output items as chat messages, to continue the conversation."""
    text = "".join(
        part.get("text", "")
        for item in items
        if item["type"] == "message"
        for part in item["content"]
    )
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    calls: list[dict[str, Any]] = []
    for item in items:
        if item["type"] != "message":
            _item_messages(item, [{"role": "assistant", "tool_calls": calls}], tools)
    if calls:
        message["tool_calls"] = calls
    return [message]
