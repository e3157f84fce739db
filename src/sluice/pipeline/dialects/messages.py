"""The Anthropic Messages dialect (``POST /v1/messages``).

Served natively by providers with the ``MESSAGES`` capability (the body goes through
untouched but for the model name); for every other provider the request is translated onto
OpenAI chat and the answer, streamed or not, back into Messages format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.ids import random_hex
from sluice.pipeline.dialects import messages_thinking as mt
from sluice.pipeline.dialects.messages_stream import STOP_REASONS, MessagesStreamWriter
from sluice.pipeline.parse import check_model_length, parse_json
from sluice.providers.base import UpstreamResponse, UpstreamStream
from sluice.sse import SSESplitter
from sluice.tokens import estimate_prompt
from sluice.types import Endpoint, ProviderRequest, Usage

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(exc: GatewayError) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(
        exc.status, "api_error" if exc.status >= 500 else "invalid_request_error"
    )
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def _field_error(field: str, expected: str) -> BadRequest:
    return BadRequest(f"{field}: must be {expected}", param=field)


def check_governed(body: dict[str, Any], *, count_only: bool = False) -> None:
    """Validate the fields the gateway itself reads (model, token bound, stream flag, the
    conversation's shape). All a native pass-through checks: roles, content blocks, tool
    types, ``thinking``, beta fields and unknown fields go to the provider untouched."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _field_error("model", "a non-empty string")
    check_model_length(model)
    if not count_only:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _field_error("max_tokens", "a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _field_error("messages", "a non-empty array")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise _field_error("stream", "a boolean")


def check_translatable(body: dict[str, Any]) -> None:
    """Validate what the translation onto OpenAI chat reads (after :func:`check_governed`)."""
    for i, message in enumerate(body["messages"]):
        if not isinstance(message, dict):
            raise _field_error(f"messages.{i}", "an object")
        if message.get("role") not in ("user", "assistant", "system"):
            raise _field_error(f"messages.{i}.role", "'user', 'assistant' or 'system'")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise _field_error(f"messages.{i}.content", "a string or an array of content blocks")
        if isinstance(content, list):
            for j, block in enumerate(content):
                if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                    raise _field_error(f"messages.{i}.content.{j}", "a content block object")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _field_error("system", "a string or an array of text blocks")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise _field_error("tools", "an array")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise _field_error(f"tools.{i}.name", "a string")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "url":
        url = source.get("url", "")
    else:
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: dict[str, Any]) -> dict[str, Any]:
    """A document block as a chat part: a base64 one as a ``file`` part (the documents stage
    made it text already unless the deployment takes its type), other sources as text."""
    source = block.get("source") or {}
    data = source.get("data", "")
    title = block.get("title")
    if source.get("type") == "base64":
        media = source.get("media_type") or "application/octet-stream"
        spec = {"file_data": f"data:{media};base64,{data}"}
        if isinstance(title, str) and title:
            spec["filename"] = title
        return {"type": "file", "file": spec}
    return {"type": "text", "text": data if isinstance(data, str) else ""}


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """A user turn: tool results become tool messages (first), the rest one user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            result = block.get("content")
            text = _text_of(result) if not isinstance(result, str) else result
            if block.get("is_error"):
                text = f"Error: {text}"
            out.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text}
            )
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "document":
            parts.append(_document_part(block))
    if parts:
        simple = all(p["type"] == "text" for p in parts)
        out.append(
            {"role": "user", "content": "".join(p["text"] for p in parts) if simple else parts}
        )
    return out


def _assistant_message(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
    calls = [
        {
            "id": b.get("id", ""),
            "type": "function",
            "function": {"name": b.get("name", ""), "arguments": json.dumps(b.get("input") or {})},
        }
        for b in content
        if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages request as an OpenAI chat request. A system message in the middle of the
    conversation (Claude Code sends them) stays a chat system message in its place; the
    provider adapter places it as its API requires. Thinking blocks are dropped: chat has
    no field for them (see :func:`mt.reasoning_effort` for the thinking setting)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"]))
        elif message["role"] == "system":
            text = _text_of(message["content"])
            if text:
                messages.append({"role": "system", "content": text})
        else:
            messages.append(_assistant_message(message["content"]))
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    effort = mt.reasoning_effort(body)
    if effort is not None:
        chat["reasoning_effort"] = effort
    fmt = mt.response_format(body)
    if fmt is not None:
        chat["response_format"] = fmt
    if "max_tokens" in body:
        chat["max_tokens"] = body["max_tokens"]
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("stop_sequences", "stop"),
    ):
        if body.get(src) is not None:
            chat[dst] = body[src]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        chat["user"] = user
    tools = [t for t in body.get("tools") or () if not mt.server_tool(t)]
    if tools:
        chat["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
        if (body.get("tool_choice") or {}).get("disable_parallel_tool_use") is True:
            chat["parallel_tool_calls"] = False
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def message_id() -> str:
    return "msg_" + random_hex(12)


def usage_obj(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def from_chat(data: dict[str, Any], *, model: str, usage: Usage) -> dict[str, Any]:
    """An OpenAI chat completion as a Messages answer."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = {"_raw": fn.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": fn.get("name", ""),
                "input": args,
            }
        )
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_obj(usage),
    }


class MessagesTranslation:
    def __init__(self, req: ProviderRequest) -> None:
        self._req = req
        chat = to_chat(req.body)
        self.warnings = tuple(
            f"tool {t.get('type')}" for t in req.body.get("tools") or () if mt.server_tool(t)
        )
        self.upstream = ProviderRequest(
            Endpoint.CHAT, chat, orjson.dumps(chat), req.model, req.stream, req.stream
        )

    async def response(self, resp: UpstreamResponse, usage: Usage) -> bytes:
        try:
            data = orjson.loads(resp.body)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider's answer is not JSON"
            ) from None
        return orjson.dumps(from_chat(data, model=self._req.model, usage=usage))

    async def stream(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        writer = MessagesStreamWriter(
            model=self._req.model,
            message_id=message_id(),
            prompt_estimate=estimate_prompt(self.upstream.body),
        )
        splitter = SSESplitter()
        head = writer.start()  # sent with the first upstream bytes, so early failures stay 5xx
        async for piece in upstream:
            out = b"".join(writer.chunk(orjson.loads(p)) for p in splitter.feed(piece))
            if head:
                out, head = head + out, b""
            if out:
                yield out
        yield head + writer.finish(upstream.usage, upstream.completion_chars)


class MessagesDialect:
    endpoint = Endpoint.MESSAGES
    carries_metadata = False
    stream_ends: tuple[bytes, ...] = (b"event: message_stop",)

    def parse(self, raw: bytes) -> ProviderRequest:
        body = parse_json(raw)
        check_governed(body)
        return ProviderRequest(
            Endpoint.MESSAGES, body, raw, body["model"], bool(body.get("stream")), False
        )

    def plan(
        self, req: ProviderRequest, capabilities: frozenset[Endpoint]
    ) -> MessagesTranslation | None:
        if Endpoint.MESSAGES in capabilities:
            return None
        if Endpoint.CHAT not in capabilities:
            raise GatewayError(
                ErrorKind.CALLER_UNSUPPORTED,
                f"the model {req.model!r} does not support messages",
                param="model",
            )
        check_translatable(req.body)
        return MessagesTranslation(req)

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        return b""

    def error(self, exc: GatewayError) -> bytes:
        return orjson.dumps(error_body(exc))

    def stream_error(self, exc: GatewayError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(error_body(exc)) + b"\n\n"


def count_tokens(raw: bytes) -> int:
    """Estimated input tokens of a Messages request (the gateway's own count)."""
    body = parse_json(raw)
    check_governed(body, count_only=True)
    try:
        check_translatable(body)
    except BadRequest:
        # A shape only a provider reads (a system turn mid-conversation, new block types):
        # the text of every turn, counted as it is.
        system = body.get("system")
        chat = {"messages": ([{"content": system}] if system else []) + body["messages"]}
    else:
        chat = to_chat(body)
    tools = body.get("tools")
    extra = len(orjson.dumps(tools)) // 4 if tools else 0
    return estimate_prompt(chat) + extra
