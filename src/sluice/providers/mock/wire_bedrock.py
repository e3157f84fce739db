"""The mock's Amazon Bedrock format: ``/model/{id}/converse``, ``/converse-stream`` (binary
``application/vnd.amazon.eventstream`` frames) and ``/invoke`` for Titan and Cohere
embeddings. Requests must carry a SigV4 ``Authorization`` header (or a Bedrock API key)."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from sluice.providers.mock import script as s
from sluice.providers.mock import wire_common as w
from sluice.providers.mock.reply import Reply, json_reply

_PATH = re.compile(r"^/model/([^/]+)/(converse|converse-stream|invoke)$")
_ERROR_TYPES = {
    400: "ValidationException",
    401: "UnrecognizedClientException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
EVENT_STREAM = "application/vnd.amazon.eventstream"
TOKEN_HEADER = "X-Amzn-Bedrock-Input-Token-Count"


def route(path: str) -> tuple[str, str] | None:
    match = _PATH.match(path)
    return (match.group(2), unquote(match.group(1))) if match else None


def auth(op: str, headers: Mapping[str, str]) -> int | None:
    value = headers.get("authorization", "")
    if value.startswith("Bearer "):
        return None
    signed = (
        value.startswith("AWS4-HMAC-SHA256 Credential=")
        and "/bedrock/aws4_request" in value
        and "Signature=" in value
        and "x-amz-date" in headers
    )
    return None if signed else 403


def error(status: int, message: str, *, retry_after_s: float | None) -> Reply:
    headers: tuple[tuple[str, str], ...] = (
        ("x-amzn-errortype", _ERROR_TYPES.get(status, "Error")),
    )
    if retry_after_s is not None:
        headers += (("retry-after", f"{retry_after_s:g}"),)
    return json_reply(status, {"message": message}, headers)


def check(op: str, body: dict[str, Any]) -> str:
    if op == "invoke":
        return ""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise w.WireError("messages must not be empty")
    w.require(messages[0].get("role") == "user", "A conversation must start with a user message")
    uses_tools = False
    previous: set[str] = set()
    for i, message in enumerate(messages):
        w.require(message.get("role") in ("user", "assistant"), f"messages.{i}.role is invalid")
        content = message.get("content")
        w.require(isinstance(content, list) and bool(content), f"messages.{i}.content is empty")
        ids = set()
        for block in content:
            if "toolUse" in block:
                uses_tools = True
                ids.add(block["toolUse"].get("toolUseId"))
            if "toolResult" in block:
                uses_tools = True
                w.require(
                    block["toolResult"].get("toolUseId") in previous,
                    f"messages.{i}: toolResult does not match a toolUse of the previous turn",
                )
        previous = ids
    if uses_tools:
        w.require("toolConfig" in body, "toolConfig is required when messages use tools")
    return ""


def view(body: dict[str, Any]) -> dict[str, Any]:
    system = body.get("system")
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": m["role"], "content": m["content"]} for m in body["messages"]]
    out: dict[str, Any] = {
        "messages": messages,
        "max_tokens": (body.get("inferenceConfig") or {}).get("maxTokens"),
    }
    config = body.get("toolConfig") or {}
    tools = config.get("tools")
    choice = config.get("toolChoice")
    named = (choice.get("tool") or {}).get("name") if isinstance(choice, dict) else None
    if isinstance(choice, dict) and choice.keys() & {"any", "tool"}:
        out["tool_choice"] = "required"
    if tools:
        specs = [t["toolSpec"] for t in tools if "toolSpec" in t]
        # The mock calls the first tool: put the one a ``tool`` choice names first.
        specs.sort(key=lambda t: t.get("name") != named)
        out["tools"] = [
            w.tool_view(t.get("name"), (t.get("inputSchema") or {}).get("json")) for t in specs
        ]
    return out


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, CRC, string headers, payload, CRC."""
    raw_headers = b""
    for name, value in headers.items():
        raw = value.encode()
        raw_headers += bytes([len(name)]) + name.encode() + b"\x07"
        raw_headers += struct.pack(">H", len(raw)) + raw
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def frame(event: str, payload: bytes) -> bytes:
    """An ``event`` message of type ``event`` with a JSON payload."""
    headers = {":event-type": event, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, payload)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return frame(kind, orjson.dumps({**data, "p": "abcdefgh"}))


def _usage(answer: s.Answer) -> dict[str, int]:
    return {
        "inputTokens": answer.prompt_tokens,
        "outputTokens": answer.completion_tokens,
        "totalTokens": answer.prompt_tokens + answer.completion_tokens,
    }


async def answer(script: s.MockScript, req: w.Request) -> Reply:
    if req.op == "invoke":
        await w.first_delay(script)
        return _invoke(script, req)
    answer = w.plan(script, view(req.body))
    stop = _STOP.get(answer.finish_reason, "end_turn")
    call = answer.tool_calls[0] if answer.tool_calls else None
    if req.op == "converse":
        await w.first_delay(script)
        if call is not None:
            use = {"toolUseId": "tooluse_mock_0", "name": call["function"]["name"]}
            content: list[dict[str, Any]] = [
                {"toolUse": {**use, "input": orjson.loads(call["function"]["arguments"])}}
            ]
        else:
            content = [{"text": answer.text or ""}]
        out: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "metrics": {"latencyMs": 1},
        }
        if script.usage:
            out["usage"] = _usage(answer)
        return json_reply(200, out)
    head = [_event("messageStart", {"role": "assistant"})]
    if call is not None:
        start = {"toolUse": {"toolUseId": "tooluse_mock_0", "name": call["function"]["name"]}}
        head.append(_event("contentBlockStart", {"contentBlockIndex": 0, "start": start}))
        deltas: list[dict[str, Any]] = [
            {"toolUse": {"input": p}} for p in w.arg_pieces(call["function"]["arguments"])
        ]
    else:
        deltas = [{"text": p} for p in w.pieces(answer.text or "", script)]
    body = [_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": d}) for d in deltas]
    tail = [
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": stop}),
    ]
    if script.usage:
        tail.append(_event("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": 1}}))
    malformed = frame("contentBlockDelta", b"{not json")
    return Reply(
        200,
        stream=w.paced(script, head, body, tail, malformed=malformed),
        content_type=EVENT_STREAM,
    )


def _invoke(script: s.MockScript, req: w.Request) -> Reply:
    body = req.body
    if "amazon.titan-embed" in req.model:
        text = body.get("inputText")
        if not isinstance(text, str):
            return error(400, "inputText is required", retry_after_s=None)
        vectors, tokens = w.vectors(script, [text], body.get("dimensions"))
        out = {"embedding": vectors[0], "inputTextTokenCount": tokens}
        return json_reply(200, out, ((TOKEN_HEADER.lower(), str(tokens)),))
    if "cohere.embed" in req.model:
        texts = body.get("texts")
        if not isinstance(texts, list) or not isinstance(body.get("input_type"), str):
            return error(400, "texts and input_type are required", retry_after_s=None)
        vectors, tokens = w.vectors(script, [str(t) for t in texts], body.get("output_dimension"))
        out = {
            "id": f"mock-{req.rid}",
            "embeddings": {"float": vectors},
            "texts": texts,
            "response_type": "embeddings_by_type",
        }
        return json_reply(200, out, ((TOKEN_HEADER.lower(), str(tokens)),))
    return error(400, f"the mock cannot invoke {req.model!r}", retry_after_s=None)
