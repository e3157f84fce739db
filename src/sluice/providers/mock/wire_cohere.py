"""The mock's Cohere v2 format: ``/v2/chat`` (JSON or named SSE events) and ``/v2/embed``.

Usage reports ``billed_units`` and, larger by a prompt-template overhead, raw ``tokens``;
the gateway bills the former."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluice.providers.mock import script as s
from sluice.providers.mock import wire_common as w
from sluice.providers.mock.reply import Reply, json_reply

TEMPLATE_TOKENS = 7
_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}


def route(path: str) -> tuple[str, str] | None:
    return {"/v2/chat": ("chat", ""), "/v2/embed": ("embed", "")}.get(path)


def auth(op: str, headers: Mapping[str, str]) -> int | None:
    return None if headers.get("authorization", "").startswith("Bearer ") else 401


def error(status: int, message: str, *, retry_after_s: float | None) -> Reply:
    headers = (("retry-after", f"{retry_after_s:g}"),) if retry_after_s is not None else ()
    return json_reply(status, {"id": "mock-error", "message": message}, headers)


def check(op: str, body: dict[str, Any]) -> str:
    w.require(isinstance(body.get("model"), str), "model is required")
    if op == "embed":
        w.require(isinstance(body.get("texts"), list), "texts is required")
        w.require(isinstance(body.get("input_type"), str), "input_type is required for v3 models")
        return str(body["model"])
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise w.WireError("messages must not be empty")
    called: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        w.require(role in ("system", "user", "assistant", "tool"), f"messages[{i}].role is invalid")
        for call in message.get("tool_calls") or ():
            orjson.loads(call["function"]["arguments"])
            called.add(call["id"])
        if role == "tool":
            w.require(message.get("tool_call_id") in called, f"messages[{i}]: unknown tool_call_id")
    return str(body["model"])


def view(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messages": [{"role": m["role"], "content": m.get("content")} for m in body["messages"]],
        "max_tokens": body.get("max_tokens"),
    }
    if body.get("tools"):
        out["tools"] = body["tools"]
    if body.get("tool_choice") == "NONE":
        out["tool_choice"] = "none"
    elif body.get("tool_choice") == "REQUIRED":
        out["tool_choice"] = "required"
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        schema = fmt.get("json_schema")
        out["response_format"] = (
            {"type": "json_schema", "json_schema": {"schema": schema}}
            if schema
            else {"type": "json_object"}
        )
    return out


def _usage(answer: s.Answer) -> dict[str, Any]:
    billed = {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens}
    tokens = {**billed, "input_tokens": answer.prompt_tokens + TEMPLATE_TOKENS}
    return {"billed_units": billed, "tokens": tokens}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _message(**fields: Any) -> dict[str, Any]:
    return {"delta": {"message": fields}}


async def answer(script: s.MockScript, req: w.Request) -> Reply:
    if req.op == "embed":
        await w.first_delay(script)
        vectors, tokens = w.vectors(
            script, [str(t) for t in req.body["texts"]], req.body.get("output_dimension")
        )
        out = {
            "id": f"mock-{req.rid}",
            "embeddings": {"float": vectors},
            "texts": req.body["texts"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "response_type": "embeddings_by_type",
        }
        return json_reply(200, out)
    answer = w.plan(script, view(req.body))
    finish = _FINISH.get(answer.finish_reason, "COMPLETE")
    call = answer.tool_calls[0] if answer.tool_calls else None
    ident = f"mock-{req.rid}"
    if not req.body.get("stream"):
        await w.first_delay(script)
        message: dict[str, Any] = {"role": "assistant"}
        if call is not None:
            message["tool_plan"] = "I will call the tool."
            message["tool_calls"] = [call]
        else:
            message["content"] = [{"type": "text", "text": answer.text or ""}]
        out = {"id": ident, "finish_reason": finish, "message": message}
        if script.usage:
            out["usage"] = _usage(answer)
        return json_reply(200, out)
    head = [_event("message-start", {"id": ident, **_message(role="assistant")})]
    if call is not None:
        start = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
        head.append(_event("tool-plan-delta", _message(tool_plan="I will call the tool.")))
        head.append(_event("tool-call-start", {"index": 0, **_message(tool_calls=start)}))
        body = [
            _event(
                "tool-call-delta",
                {"index": 0, **_message(tool_calls={"function": {"arguments": p}})},
            )
            for p in w.arg_pieces(call["function"]["arguments"])
        ]
        tail = [_event("tool-call-end", {"index": 0})]
    else:
        head.append(
            _event("content-start", {"index": 0, **_message(content={"type": "text", "text": ""})})
        )
        body = [
            _event("content-delta", {"index": 0, **_message(content={"text": p})})
            for p in w.pieces(answer.text or "", script)
        ]
        tail = [_event("content-end", {"index": 0})]
    end: dict[str, Any] = {"finish_reason": finish}
    if script.usage:
        end["usage"] = _usage(answer)
    tail.append(_event("message-end", {"delta": end}))
    malformed = b"event: content-delta\ndata: {not json\n\n"
    return Reply(200, stream=w.paced(script, head, body, tail, malformed=malformed))
