"""OpenAI chat/embeddings ↔ Cohere v2 ``/v2/chat`` and ``/v2/embed``. Pure.

Cohere v2 messages are close to OpenAI's (roles, ``tool_calls``, ``tool_call_id``); the
differences are parameter names, the tool choice vocabulary, content as typed blocks in the
answer, and the usage object.
"""

from __future__ import annotations

from typing import Any

from sluice.errors import ErrorKind, UpstreamError
from sluice.providers.native import openai_in as oi
from sluice.providers.native.openai_out import ChoiceOut, ToolCallOut, count
from sluice.types import Usage

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


def finish_reason(reason: Any) -> str:
    """OpenAI's finish reason; Cohere's ``ERROR``/``TIMEOUT`` mean the generation failed."""
    if reason == "ERROR":
        raise UpstreamError(ErrorKind.PROVIDER_ERROR, "the provider failed while generating")
    if reason == "TIMEOUT":
        raise UpstreamError(ErrorKind.PROVIDER_TIMEOUT, "the provider timed out while generating")
    return FINISH_REASONS.get(str(reason), "stop")


def chat_request(body: dict[str, Any], *, model: str, stream: bool) -> dict[str, Any]:
    oi.single_choice(body)
    out: dict[str, Any] = {"model": model, "messages": _messages(body.get("messages") or [])}
    if stream:
        out["stream"] = True
    limit = oi.max_tokens(body)
    if limit is not None:
        out["max_tokens"] = limit
    stops = oi.stop_sequences(body)
    if stops:
        out["stop_sequences"] = stops
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "p"),
        ("top_k", "k"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
    ):
        value = body.get(src)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[dst] = value
    wants_json, schema = oi.json_schema_format(body)
    if wants_json:
        out["response_format"] = {
            "type": "json_object",
            **({"json_schema": schema} if schema else {}),
        }
    tools = oi.function_tools(body)
    choice = oi.tool_choice(body)
    if choice is not None and choice.mode == "named":
        # Cohere cannot name the tool to call: offer only that one, and require a call.
        tools = [t for t in tools if t.name == choice.name]
    if tools:
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters,
                },
            }
            for t in tools
        ]
        if choice is not None and choice.mode in ("required", "named"):
            out["tool_choice"] = "REQUIRED"
        elif choice is not None and choice.mode == "none":
            out["tool_choice"] = "NONE"
    return out


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": oi.text_of(content, param=f"{param}.content")})
        elif role == "user":
            out.append(
                {"role": "user", "content": _user_content(content, param=f"{param}.content")}
            )
        elif role == "assistant":
            entry: dict[str, Any] = {"role": "assistant"}
            text = oi.text_of(content, param=f"{param}.content")
            if text:
                entry["content"] = text
            calls = message.get("tool_calls")
            if calls:
                oi.tool_calls(message, param=param)  # validates ids, names and JSON arguments
                entry["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {
                            "name": c["function"]["name"],
                            "arguments": c["function"].get("arguments") or "{}",
                        },
                    }
                    for c in calls
                ]
            out.append(entry)
        elif role == "tool":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": oi.tool_call_id(message, param=param),
                    "content": oi.text_of(content, param=f"{param}.content"),
                }
            )
        else:
            raise oi.unsupported(f"message role {role!r} is not supported", param=f"{param}.role")
    return out


def _user_content(content: Any, *, param: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(oi.content_parts(content, param=param)):
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            url = oi.image_url(part, param=f"{param}[{j}]")
            blocks.append({"type": "image_url", "image_url": {"url": url}})
        else:
            raise oi.unsupported(
                f"content part type {kind!r} is not supported", param=f"{param}[{j}]"
            )
    return blocks


def usage_from(raw: Any) -> Usage | None:
    """Billed units when present (what is charged), else the raw token counts."""
    if not isinstance(raw, dict):
        return None
    counts = raw.get("billed_units")
    if not isinstance(counts, dict) or "input_tokens" not in counts:
        counts = raw.get("tokens")
    if not isinstance(counts, dict) or not isinstance(counts.get("input_tokens"), int | float):
        return None
    return Usage(
        prompt_tokens=int(counts["input_tokens"]),
        completion_tokens=int(counts.get("output_tokens") or 0),
        cached_tokens=count(raw, "cached_tokens"),
    )


def tool_call(raw: Any) -> ToolCallOut | None:
    if not isinstance(raw, dict):
        return None
    fn = raw.get("function") or {}
    return ToolCallOut(str(raw.get("id")), str(fn.get("name")), str(fn.get("arguments") or "{}"))


def chat_response(data: dict[str, Any]) -> tuple[ChoiceOut, Usage | None]:
    message = data.get("message") or {}
    texts = [
        str(block.get("text") or "")
        for block in message.get("content") or ()
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    calls = [c for c in map(tool_call, message.get("tool_calls") or ()) if c is not None]
    finish = finish_reason(data.get("finish_reason"))
    choice = ChoiceOut("".join(texts) if texts or not calls else None, calls, finish)
    return choice, usage_from(data.get("usage"))


def embed_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    input_type = body.get("input_type")
    out: dict[str, Any] = {
        "model": model,
        "texts": oi.embedding_inputs(body),
        "input_type": input_type if isinstance(input_type, str) else "search_document",
        "embedding_types": ["float"],
    }
    if isinstance(body.get("dimensions"), int):
        out["output_dimension"] = body["dimensions"]
    return out


def embed_response(data: dict[str, Any]) -> tuple[list[list[float]], Usage | None]:
    embeddings = data.get("embeddings")
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise UpstreamError(ErrorKind.PROVIDER_BAD_RESPONSE, "the provider sent no embeddings")
    billed = (data.get("meta") or {}).get("billed_units")
    usage = None
    if isinstance(billed, dict) and isinstance(billed.get("input_tokens"), int | float):
        usage = Usage(prompt_tokens=int(billed["input_tokens"]))
    return [[float(v) for v in e] for e in embeddings], usage
