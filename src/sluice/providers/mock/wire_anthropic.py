"""The mock's Anthropic Messages format: ``/v1/messages`` and, on Vertex AI paths,
``publishers/anthropic/models/{m}:rawPredict|streamRawPredict``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from sluice.providers.mock import script as s
from sluice.providers.mock import wire_common as w
from sluice.providers.mock.reply import Reply, json_reply

_VERTEX = re.compile(
    r"^/v1/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:]+):(\w+)$"
)
VERTEX_VERSION = "vertex-2023-10-16"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def route(path: str) -> tuple[str, str] | None:
    if path == "/v1/messages":
        return "messages", ""
    match = _VERTEX.match(path)
    if match and match.group(2) in ("rawPredict", "streamRawPredict"):
        return "vertex", unquote(match.group(1))
    return None


def auth(op: str, headers: Mapping[str, str]) -> int | None:
    if op == "vertex":
        return None if headers.get("authorization", "").startswith("Bearer ya29.") else 401
    return None if headers.get("x-api-key") and headers.get("anthropic-version") else 401


def error(status: int, message: str, *, retry_after_s: float | None) -> Reply:
    kind = _ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    headers = (("retry-after", f"{retry_after_s:g}"),) if retry_after_s is not None else ()
    return json_reply(status, body, headers)


def check(op: str, body: dict[str, Any]) -> str:
    if op == "vertex":
        w.require(body.get("anthropic_version") == VERTEX_VERSION, "anthropic_version is required")
        w.require("model" not in body, "model belongs in the URL on Vertex AI")
    else:
        w.require(isinstance(body.get("model"), str), "model: Field required")
    limit = body.get("max_tokens")
    w.require(isinstance(limit, int) and limit > 0, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise w.WireError("messages: at least one message")
    previous_tools: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        # System turns inside the conversation are accepted, as the API does for Claude Code.
        w.require(
            role in ("user", "assistant", "system"),
            f"messages.{i}.role: must be user, assistant or system",
        )
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        w.require(isinstance(blocks, list) and bool(blocks), f"messages.{i}.content: empty")
        if role == "system":
            continue  # a system turn between a tool call and its result does not split them
        tools: set[str] = set()
        for block in blocks:
            w.require(isinstance(block, dict) and "type" in block, f"messages.{i}: bad block")
            if block["type"] == "tool_use":
                tools.add(str(block.get("id")))
            if block["type"] == "tool_result":
                w.require(
                    block.get("tool_use_id") in previous_tools,
                    f"messages.{i}: tool_result without a matching tool_use",
                )
        previous_tools = tools
    _check_thinking(body, limit)  # after the blocks were found to be objects
    return str(body.get("model") or "")


def _check_thinking(body: dict[str, Any], limit: Any) -> None:
    """The rules Anthropic enforces on extended thinking and structured output."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        w.require(
            isinstance(budget, int) and 1024 <= budget < limit,
            "thinking.budget_tokens: must be at least 1024 and less than max_tokens",
        )
        w.require(
            body.get("temperature") in (None, 1),
            "temperature may only be set to 1 when thinking is enabled",
        )
        w.require(
            (body.get("tool_choice") or {}).get("type") not in ("any", "tool"),
            "Thinking may not be enabled when tool_choice forces tool use.",
        )
        assistant = [
            m
            for m in body.get("messages") or ()
            if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        blocks = assistant[-1].get("content") if assistant else None
        if isinstance(blocks, list) and blocks:
            calls = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks)
            w.require(
                not calls or blocks[0].get("type") in ("thinking", "redacted_thinking"),
                "Expected `thinking` or `redacted_thinking`, but found `tool_use`. When "
                "thinking is enabled, a final assistant message must start with a thinking block",
            )
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None:
        w.require(
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and isinstance(fmt.get("schema"), dict),
            "output_config.format: must be {type: json_schema, schema}",
        )


def view(body: dict[str, Any]) -> dict[str, Any]:
    """The request as the OpenAI-shaped planner reads it."""
    system = body.get("system")
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    out: dict[str, Any] = {"messages": messages, "max_tokens": body["max_tokens"]}
    tools = body.get("tools")
    if tools:
        out["tools"] = [w.tool_view(t.get("name"), t.get("input_schema")) for t in tools]
    choice = (body.get("tool_choice") or {}).get("type")
    if choice == "none":
        out["tool_choice"] = "none"
    elif choice in ("any", "tool"):
        out["tool_choice"] = "required"
    fmt = (body.get("output_config") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":  # structured output, as the API answers it
        out["response_format"] = {"type": "json_schema", "json_schema": {"schema": fmt["schema"]}}
    return out


def _usage(answer: s.Answer, output: int) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


async def answer(script: s.MockScript, req: w.Request) -> Reply:
    answer = w.plan(script, view(req.body))
    model = req.model if req.op == "vertex" else str(req.body["model"])
    ident = f"msg_mock_{req.rid}"
    call = answer.tool_calls[0] if answer.tool_calls else None
    stop = _STOP.get(answer.finish_reason, "end_turn")
    if not req.body.get("stream"):
        await w.first_delay(script)
        if call is not None:
            args = orjson.loads(call["function"]["arguments"])
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_mock_0",
                    "name": call["function"]["name"],
                    "input": args,
                }
            ]
        else:
            content = [{"type": "text", "text": answer.text or ""}]
        message: dict[str, Any] = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
        }
        if script.usage:
            message["usage"] = _usage(answer, answer.completion_tokens)
        return json_reply(200, message)
    start: dict[str, Any] = {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
    }
    start.update(stop_reason=None, stop_sequence=None)
    if script.usage:
        start["usage"] = _usage(answer, 1)
    if call is not None:
        block = {
            "type": "tool_use",
            "id": "toolu_mock_0",
            "name": call["function"]["name"],
            "input": {},
        }
        deltas = [
            {"type": "input_json_delta", "partial_json": p}
            for p in w.arg_pieces(call["function"]["arguments"])
        ]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in w.pieces(answer.text or "", script)]
    head = [
        _event("message_start", {"message": start}),
        _event("content_block_start", {"index": 0, "content_block": block}),
        _event("ping", {}),
    ]
    body = [_event("content_block_delta", {"index": 0, "delta": d}) for d in deltas]
    usage = {"output_tokens": answer.completion_tokens} if script.usage else {}
    tail = [
        _event("content_block_stop", {"index": 0}),
        _event(
            "message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage}
        ),
        _event("message_stop", {}),
    ]
    if script.no_done:
        tail.pop()
    malformed = b"event: content_block_delta\ndata: {not json\n\n"
    return Reply(200, stream=w.paced(script, head, body, tail, malformed=malformed))
