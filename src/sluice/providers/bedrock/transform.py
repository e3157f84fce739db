"""OpenAI chat ↔ Amazon Bedrock Converse: pure request and response translation.

Converse is one format for every chat model on Bedrock (Anthropic, Amazon Nova, Meta, Mistral,
Cohere, ...). Images and documents travel inline (base64); Bedrock cannot fetch URLs.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from sluice.errors import BadRequest
from sluice.providers.native import openai_in as oi
from sluice.providers.native.openai_out import ChoiceOut, ToolCallOut, split_cache_usage
from sluice.types import Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOC_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/html": "html",
    "text/markdown": "md",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}


DOCUMENT_TYPES = frozenset(_DOC_FORMATS)
"""Media types a Converse ``document`` block takes."""

JSON_TOOL = "sluice_json_answer"
"""The reserved tool that carries a structured answer: Sluice forces it when a request asks for
JSON and sends no tools of its own, and turns its input back into the answer's text."""


def json_instruction(schema: dict[str, Any] | None) -> str:
    """``response_format`` as an instruction, for requests that send tools of their own (the
    answer tool cannot be forced next to them)."""
    if schema is None:
        return "Answer with one JSON object only: no prose, no code fences."
    return (
        "Answer with one JSON object only (no prose, no code fences) that is valid against "
        "this JSON schema: " + orjson.dumps(schema).decode()
    )


FORCED_TOOL_FAMILIES = ("anthropic.", "amazon.nova", "mistral.mistral-large")
"""Bedrock model ids whose Converse accepts a forced tool (``toolChoice.tool``), per AWS's
Converse documentation; a model id of another family (``meta.``, ``cohere.``, ...) gets the
JSON instruction instead, which every model takes. An id without a family (no ``.``, e.g.
a custom deployment name) is taken to accept it."""


def forced_tool_supported(model: str) -> bool:
    return "." not in model or any(family in model for family in FORCED_TOOL_FAMILIES)


def converse_request(body: dict[str, Any], *, model: str = "") -> dict[str, Any]:
    """A Converse body for an OpenAI chat body (the model goes in the URL; ``model``, the
    Bedrock model id, decides how structured output is asked for)."""
    oi.single_choice(body)
    wants_json, schema = oi.json_schema_format(body)
    system, messages, uses_tools = _messages(body.get("messages") or [])
    tool_config = _tool_config(body, history_uses_tools=uses_tools)
    if wants_json and tool_config is None and forced_tool_supported(model):
        tool_config = _json_tool_config(schema)
    elif wants_json:
        system.append({"text": json_instruction(schema)})
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    inference: dict[str, Any] = {}
    limit = oi.max_tokens(body)
    if limit is not None:
        inference["maxTokens"] = limit
    for src, dst in (("temperature", "temperature"), ("top_p", "topP")):
        if isinstance(body.get(src), int | float):
            inference[dst] = body[src]
    stops = oi.stop_sequences(body)
    if stops:
        inference["stopSequences"] = stops
    if inference:
        out["inferenceConfig"] = inference
    if tool_config is not None:
        out["toolConfig"] = tool_config
    return out


def _json_tool_config(schema: dict[str, Any] | None) -> dict[str, Any]:
    # A forced tool's input is held to its schema, so the answer is JSON, not prose.
    spec = {
        "name": JSON_TOOL,
        "description": "Answer with this JSON",
        "inputSchema": {"json": schema if schema is not None else {"type": "object"}},
    }
    return {"tools": [{"toolSpec": spec}], "toolChoice": {"tool": {"name": JSON_TOOL}}}


def forces_json_tool(converse: dict[str, Any]) -> bool:
    """Whether a Converse body (from :func:`converse_request`) forces the answer tool."""
    choice = (converse.get("toolConfig") or {}).get("toolChoice")
    return choice == {"tool": {"name": JSON_TOOL}}


def _tool_config(body: dict[str, Any], *, history_uses_tools: bool) -> dict[str, Any] | None:
    tools = oi.function_tools(body)
    choice = oi.tool_choice(body)
    if not tools or (choice is not None and choice.mode == "none" and not history_uses_tools):
        # Converse has no "none" choice: leave the tools out unless the history needs them.
        return None
    out: dict[str, Any] = {
        "tools": [
            {
                "toolSpec": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "inputSchema": {"json": t.parameters},
                }
            }
            for t in tools
        ]
    }
    if choice is not None and choice.mode == "required":
        out["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode == "named":
        out["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None and choice.mode == "auto":
        out["toolChoice"] = {"auto": {}}
    return out


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    uses_tools = False
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role")
        if role in ("system", "developer"):
            text = oi.text_of(message.get("content"), param=f"{param}.content")
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), param=f"{param}.content")
        elif role == "assistant":
            text = oi.text_of(message.get("content"), param=f"{param}.content")
            blocks = [{"text": text}] if text else []
            for ident, name, args in oi.tool_calls(message, param=param):
                uses_tools = True
                blocks.append({"toolUse": {"toolUseId": ident, "name": name, "input": args}})
        elif role == "tool":
            role = "user"
            uses_tools = True
            ident = oi.tool_call_id(message, param=param)
            text = oi.text_of(message.get("content"), param=f"{param}.content")
            blocks = [{"toolResult": {"toolUseId": ident, "content": [{"text": text}]}}]
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
    return system, out, uses_tools


def _user_blocks(content: Any, *, param: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(oi.content_parts(content, param=param)):
        where = f"{param}[{j}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            data = oi.parse_data_url(oi.image_url(part, param=where), param=where)
            fmt = _IMAGE_FORMATS.get(data.media_type) if data is not None else None
            if data is None or fmt is None:
                raise oi.unsupported(
                    "Bedrock takes images inline only: a base64 data URL of a PNG, JPEG, GIF "
                    "or WebP image",
                    param=f"{where}.image_url.url",
                )
            blocks.append({"image": {"format": fmt, "source": {"bytes": data.data}}})
        elif kind == "file":
            file, filename = oi.file_data(part, param=where)
            fmt = _DOC_FORMATS.get(file.media_type)
            if fmt is None:
                raise oi.unsupported(
                    f"document type {file.media_type!r} is not supported", param=where
                )
            name = re.sub(
                r"[^A-Za-z0-9 ()\[\]-]", "-", (filename or f"document-{j}").rsplit(".", 1)[0]
            )
            blocks.append(
                {"document": {"format": fmt, "name": name, "source": {"bytes": file.data}}}
            )
        else:
            raise oi.unsupported(f"content part type {kind!r} is not supported", param=where)
    return blocks


def usage_from(raw: Any) -> Usage | None:
    """Converse counts cache reads and writes apart from ``inputTokens``."""
    return split_cache_usage(
        raw,
        input_key="inputTokens",
        output_key="outputTokens",
        read_key="cacheReadInputTokens",
        write_key="cacheWriteInputTokens",
    )


def converse_response(
    data: dict[str, Any], *, json_tool: bool = False
) -> tuple[ChoiceOut, Usage | None]:
    """The answer of a Converse response; with ``json_tool`` (the request forced the answer
    tool) that tool's input is the answer's text and the finish reason ``stop``."""
    message = (data.get("output") or {}).get("message") or {}
    texts = []
    calls = []
    answer: str | None = None
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        use = block.get("toolUse")
        if isinstance(use, dict):
            args = orjson.dumps(use.get("input") or {}).decode()
            if json_tool and use.get("name") == JSON_TOOL:
                answer = args
                continue
            calls.append(ToolCallOut(str(use.get("toolUseId")), str(use.get("name")), args))
    finish = FINISH_REASONS.get(str(data.get("stopReason")), "stop")
    if answer is not None:
        # Any text next to the forced tool is preamble: the JSON alone is the answer.
        finish = "stop" if finish == "tool_calls" else finish
        return ChoiceOut(answer, [], finish), usage_from(data.get("usage"))
    choice = ChoiceOut("".join(texts) if texts or not calls else None, calls, finish)
    return choice, usage_from(data.get("usage"))
