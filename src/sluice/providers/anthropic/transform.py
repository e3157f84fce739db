"""OpenAI chat ↔ Anthropic Messages: pure request and response translation.

Also used for Anthropic models on Vertex AI (``rawPredict``), which take the same body
without ``model``.
"""

from __future__ import annotations

from typing import Any

import orjson

from sluice.errors import BadRequest
from sluice.providers.native import openai_in as oi
from sluice.providers.native.openai_out import ChoiceOut, ToolCallOut, split_cache_usage
from sluice.types import Usage

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; used when the OpenAI request gives none."""

JSON_INSTRUCTION = "Answer with one JSON object only: no prose, no code fences."
"""Appended to the system prompt for ``response_format: json_object`` (no schema to give)."""
THINKING_BUDGET_TOKENS = {"low": 1024, "medium": 4096, "high": 16384}
"""``reasoning_effort`` as a thinking budget (``minimal``/``none``: no thinking)."""
MIN_THINKING_BUDGET_TOKENS = 1024

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def chat_request(body: dict[str, Any], *, model: str | None, stream: bool) -> dict[str, Any]:
    """An Anthropic Messages body for an OpenAI chat body (``model`` omitted when ``None``)."""
    oi.single_choice(body)
    wants_json, schema = oi.json_schema_format(body)
    system, messages = _messages(body.get("messages") or [])
    if wants_json and schema is None:
        system.append({"type": "text", "text": JSON_INSTRUCTION})
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    out["max_tokens"] = oi.max_tokens(body) or DEFAULT_MAX_TOKENS
    if system:
        out["system"] = system
    out["messages"] = messages
    stops = oi.stop_sequences(body)
    if stops:
        out["stop_sequences"] = stops
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(float(temperature), 1.0)  # Anthropic's range is 0..1
    if isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    if isinstance(body.get("top_k"), int):
        out["top_k"] = body["top_k"]
    tools = oi.function_tools(body)
    if tools:
        out["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": t.parameters,
            }
            for t in tools
        ]
    choice = _tool_choice(body)
    if choice is not None and (tools or choice["type"] == "none"):
        out["tool_choice"] = choice
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if schema is not None:
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    _thinking(out, body.get("reasoning_effort"), messages, sized=oi.max_tokens(body) is not None)
    if stream:
        out["stream"] = True
    return out


def _thinking(
    out: dict[str, Any], effort: Any, messages: list[dict[str, Any]], *, sized: bool
) -> None:
    """``reasoning_effort`` as extended thinking, where Anthropic accepts it: the budget
    fits in half the caller's ``max_tokens`` (with none given, the default grows by the
    budget, so the answer keeps its room), no tool is forced, and no earlier assistant turn
    called a tool (Anthropic wants such turns to start with their thinking block, which chat
    history does not carry). Thinking takes the default sampling: temperature and top-k/p
    go."""
    budget = THINKING_BUDGET_TOKENS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        return
    if sized:
        budget = min(budget, out["max_tokens"] // 2)
    forced = out.get("tool_choice", {}).get("type") in ("any", "tool")
    called = any(
        b.get("type") == "tool_use"
        for m in messages
        if m["role"] == "assistant"
        for b in m["content"]
    )
    if budget < MIN_THINKING_BUDGET_TOKENS or forced or called:
        return
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if not sized:
        out["max_tokens"] += budget
    for name in ("temperature", "top_k", "top_p"):
        out.pop(name, None)


def _tool_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = oi.tool_choice(body)
    parallel = body.get("parallel_tool_calls")
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice.mode == "required":
        out = {"type": "any"}
    elif choice.mode == "named":
        out = {"type": "tool", "name": choice.name}
    else:
        out = {"type": choice.mode}
    if out is not None and parallel is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            for part in oi.content_parts(content, param=f"{param}.content"):
                system.append(_text_block(part, param=f"{param}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(content, param=f"{param}.content")
        elif role == "assistant":
            blocks = _assistant_blocks(message, param=param)
        elif role == "tool":
            role = "user"
            blocks = [_tool_result(message, param=param)]
        else:
            raise oi.unsupported(f"message role {role!r} is not supported", param=f"{param}.role")
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    if not out:
        raise BadRequest("'messages' needs at least one user message", param="messages")
    return system, out


def _text_block(part: dict[str, Any], *, param: str) -> dict[str, Any]:
    if part.get("type") != "text":
        raise oi.unsupported("only text is supported in system messages", param=param)
    block: dict[str, Any] = {"type": "text", "text": str(part.get("text") or "")}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    blocks = []
    for j, part in enumerate(oi.content_parts(content, param=param)):
        where = f"{param}[{j}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(_text_block(part, param=where))
        elif kind == "image_url":
            url = oi.image_url(part, param=where)
            data = oi.parse_data_url(url, param=f"{where}.image_url.url")
            source = (
                {"type": "base64", "media_type": data.media_type, "data": data.data}
                if data is not None
                else {"type": "url", "url": url}
            )
            blocks.append({"type": "image", "source": source})
        elif kind == "file":
            file, name = oi.file_data(part, param=where)
            source = {"type": "base64", "media_type": file.media_type, "data": file.data}
            if file.media_type == "text/plain":  # a text document travels as text
                text = file.raw().decode("utf-8", errors="replace")
                source = {"type": "text", "media_type": "text/plain", "data": text}
            block = {"type": "document", "source": source}
            if name:
                block["title"] = name
            blocks.append(block)
        else:
            raise oi.unsupported(f"content part type {kind!r} is not supported", param=where)
    return blocks


def _assistant_blocks(message: dict[str, Any], *, param: str) -> list[dict[str, Any]]:
    text = oi.text_of(message.get("content"), param=f"{param}.content")
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for ident, name, args in oi.tool_calls(message, param=param):
        blocks.append({"type": "tool_use", "id": ident, "name": name, "input": args})
    return blocks


def _tool_result(message: dict[str, Any], *, param: str) -> dict[str, Any]:
    ident = oi.tool_call_id(message, param=param)
    text = oi.text_of(message.get("content"), param=f"{param}.content")
    return {"type": "tool_result", "tool_use_id": ident, "content": text}


def usage_from(raw: Any) -> Usage | None:
    """Anthropic counts uncached input separately from cache reads and writes."""
    return split_cache_usage(
        raw,
        input_key="input_tokens",
        output_key="output_tokens",
        read_key="cache_read_input_tokens",
        write_key="cache_creation_input_tokens",
    )


def chat_response(data: dict[str, Any]) -> tuple[ChoiceOut, Usage | None]:
    """The OpenAI choice and usage of an Anthropic ``message``. Thinking blocks are not
    relayed (OpenAI chat has no field for them)."""
    texts = []
    calls = []
    for block in data.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            args = orjson.dumps(block.get("input") or {}).decode()
            calls.append(ToolCallOut(str(block.get("id")), str(block.get("name")), args))
    finish = FINISH_REASONS.get(str(data.get("stop_reason")), "stop")
    choice = ChoiceOut("".join(texts) if texts or not calls else None, calls, finish)
    return choice, usage_from(data.get("usage"))


def messages_chars(data: dict[str, Any]) -> int:
    """Generated characters of a native Messages answer, for the estimate without usage."""
    total = 0
    for block in data.get("content") or ():
        if isinstance(block, dict):
            total += len(str(block.get("text") or ""))
            if block.get("type") == "tool_use":
                total += len(orjson.dumps(block.get("input") or {}))
    return total
