"""The mock's OpenAI Responses API format: ``POST /v1/responses`` (JSON or SSE events).

Enough of the format for the gateway's pass-through: the output message or function call,
usage, and the streaming event sequence (created, output item and content part added, text
or argument deltas, done events, completed)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from sluice.providers.mock import script as s
from sluice.providers.mock import wire_common as w
from sluice.providers.mock.reply import Reply, json_reply


def route(path: str) -> tuple[str, str] | None:
    return ("create", "") if path == "/v1/responses" else None


def auth(op: str, headers: Mapping[str, str]) -> int | None:
    return None if headers.get("authorization", "").startswith("Bearer ") else 401


def error(status: int, message: str, *, retry_after_s: float | None) -> Reply:
    headers = (("retry-after", f"{retry_after_s:g}"),) if retry_after_s is not None else ()
    body = {"error": {"message": message, "type": "mock_error", "param": None, "code": str(status)}}
    return json_reply(status, body, headers)


def check(op: str, body: dict[str, Any]) -> str:
    w.require(isinstance(body.get("model"), str), "model is required")
    w.require("input" in body, "input is required")
    return str(body["model"])


_ITEM_ROLES = {
    "function_call_output": "tool",
    "custom_tool_call_output": "tool",
    "function_call": "assistant",
    "custom_tool_call": "assistant",
    "reasoning": "assistant",
}
"""Roles of the input items that are not messages, as the planner reads them."""


def view(body: dict[str, Any]) -> dict[str, Any]:
    raw = body["input"]
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    messages = [
        {
            "role": _ITEM_ROLES.get(str(i.get("type")), i.get("role", "user")),
            "content": i.get("content") or i.get("output") or "",
        }
        for i in items
        if isinstance(i, dict)
    ]
    out: dict[str, Any] = {"messages": messages, "max_tokens": body.get("max_output_tokens")}
    tools = [t for t in body.get("tools") or () if t.get("type") == "function"]
    if tools:
        out["tools"] = [w.tool_view(t["name"], t.get("parameters")) for t in tools]
        out["tool_choice"] = body.get("tool_choice")
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"schema": fmt.get("schema")},
        }
    elif fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    return out


def _items(answer: s.Answer, rid: str) -> list[dict[str, Any]]:
    if answer.tool_calls:
        call = answer.tool_calls[0]
        return [
            {
                "type": "function_call",
                "id": f"fc_{rid}",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
        ]
    return [
        {
            "type": "message",
            "id": f"msg_{rid}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": answer.text or "", "annotations": []}],
        }
    ]


def _response(
    body: dict[str, Any],
    rid: str,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": f"resp_{rid}",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body["model"],
        "output": output,
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "error": None,
        "incomplete_details": None,
        "previous_response_id": body.get("previous_response_id"),
    }


def _usage(answer: s.Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }


async def answer(script: s.MockScript, req: w.Request) -> Reply:
    ans = w.plan(script, view(req.body))
    items = _items(ans, req.rid)
    usage = _usage(ans) if script.usage else None
    done_status = "incomplete" if ans.finish_reason == "length" else "completed"
    final = _response(req.body, req.rid, status=done_status, output=items, usage=usage)
    if not req.body.get("stream"):
        await w.first_delay(script)
        return json_reply(200, final)
    seq = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": next(seq), **data}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    item = items[0]
    shell = _response(req.body, req.rid, status="in_progress", output=[], usage=None)
    head = [event("response.created", response=shell)]
    if item["type"] == "message":
        text = item["content"][0]["text"]
        head.append(
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "status": "in_progress", "content": []},
            )
        )
        head.append(
            event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            )
        )
        body = [
            event(
                "response.output_text.delta",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                delta=p,
                logprobs=[],
            )
            for p in w.pieces(text, script)
        ]
        tail = [
            event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=0,
                content_index=0,
                part=item["content"][0],
            ),
        ]
    else:
        head.append(
            event(
                "response.output_item.added",
                output_index=0,
                item={**item, "arguments": "", "status": "in_progress"},
            )
        )
        body = [
            event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=0,
                delta=p,
            )
            for p in w.arg_pieces(item["arguments"])
        ]
        tail = [
            event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=0,
                arguments=item["arguments"],
            )
        ]
    tail.append(event("response.output_item.done", output_index=0, item=item))
    tail.append(event("response.completed", response=final))
    malformed = b"event: response.output_text.delta\ndata: {not json\n\n"
    return Reply(200, stream=w.paced(script, head, body, tail, malformed=malformed))
