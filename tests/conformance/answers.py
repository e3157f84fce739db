"""Reading a replayed request's answer, in the dialect of the path it was sent to: is it a
whole, well-formed answer, which model does it name, and what text did it carry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    complete: bool
    """JSON: the answer object; a stream: its terminal event arrived."""
    models: set[str] = field(default_factory=set)
    """Every ``model`` the answer names (a stream names it in several events)."""
    text: str = ""


def sse_events(raw: str) -> list[tuple[str, str]]:
    """``(event name, data)`` pairs of an SSE body, in order."""
    out = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append((name, "\n".join(data)))
    return out


def wants_json(path: str, body: dict[str, Any]) -> bool:
    """The request asks for a JSON-schema answer (structured output) in its dialect."""
    if path.startswith("/v1/messages"):
        fmt = (body.get("output_config") or {}).get("format") or {}
    elif path.startswith("/v1/responses"):
        fmt = (body.get("text") or {}).get("format") or {}
    else:
        fmt = body.get("response_format") or {}
    return fmt.get("type") in ("json_schema", "json_object")


def read(path: str, raw: str, *, streamed: bool) -> Answer:
    if path.startswith("/v1/messages"):
        return _messages_stream(raw) if streamed else _messages(json.loads(raw))
    if path.startswith("/v1/responses"):
        return _responses_stream(raw) if streamed else _responses(json.loads(raw))
    return _chat_stream(raw) if streamed else _chat(json.loads(raw))


def _messages(obj: dict[str, Any]) -> Answer:
    text = "".join(b.get("text", "") for b in obj.get("content") or () if b.get("type") == "text")
    ok = obj.get("type") == "message" and isinstance(obj.get("content"), list)
    return Answer(ok, {obj.get("model", "")}, text)


def _messages_stream(raw: str) -> Answer:
    answer = Answer(False)
    for name, data in sse_events(raw):
        obj = json.loads(data)
        kind = obj.get("type", name)
        if kind == "message_start":
            answer.models.add(obj["message"].get("model", ""))
        elif kind == "content_block_delta" and obj["delta"].get("type") == "text_delta":
            answer.text += obj["delta"]["text"]
        elif kind == "message_stop":
            answer.complete = True
    return answer


def _output_text(response: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "")
        for item in response.get("output") or ()
        if item.get("type") == "message"
        for part in item.get("content") or ()
        if part.get("type") == "output_text"
    )


def _responses(obj: dict[str, Any]) -> Answer:
    ok = obj.get("object") == "response" and obj.get("status") == "completed"
    return Answer(ok, {obj.get("model", "")}, _output_text(obj))


def _responses_stream(raw: str) -> Answer:
    answer = Answer(False)
    for _name, data in sse_events(raw):
        obj = json.loads(data)
        if "response" in obj and isinstance(obj["response"], dict):
            answer.models.add(obj["response"].get("model", ""))
        if obj.get("type") == "response.completed":
            answer.complete = True
            answer.text = _output_text(obj["response"])
    return answer


def _chat(obj: dict[str, Any]) -> Answer:
    choices = obj.get("choices") or []
    ok = obj.get("object") == "chat.completion" and bool(choices)
    text = (choices[0].get("message") or {}).get("content") or "" if choices else ""
    return Answer(ok, {obj.get("model", "")}, text)


def _chat_stream(raw: str) -> Answer:
    answer = Answer(False)
    for _name, data in sse_events(raw):
        if data == "[DONE]":
            answer.complete = True
            continue
        obj = json.loads(data)
        answer.models.add(obj.get("model", ""))
        for choice in obj.get("choices") or ():
            answer.text += (choice.get("delta") or {}).get("content") or ""
    return answer
