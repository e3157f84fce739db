"""OpenAI chat chunks → the Anthropic Messages streaming event sequence."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.tokens import estimate_text
from sluice.types import Usage, usage_from_openai

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class MessagesStreamWriter:
    """Turns chunks into ``message_start``, ``content_block_*``, ``message_delta`` and
    ``message_stop`` events. One text block, then one block per tool call."""

    def __init__(self, *, model: str, message_id: str, prompt_estimate: int) -> None:
        self._model = model
        self._id = message_id
        self._prompt_estimate = prompt_estimate
        self._block = -1
        self._block_kind: str | None = None
        self._tool_blocks: dict[int, int] = {}
        self._finish: str | None = None
        self._usage: Usage | None = None

    def start(self) -> bytes:
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._prompt_estimate, "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _event(
            "ping", {"type": "ping"}
        )

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._block_kind = kind
        return out + _event(
            "content_block_start",
            {"type": "content_block_start", "index": self._block, "content_block": block},
        )

    def _close(self) -> bytes:
        if self._block_kind is None:
            return b""
        self._block_kind = None
        return _event("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b""
        if isinstance(chunk.get("usage"), dict):
            self._usage = usage_from_openai(chunk["usage"]) or self._usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self._block_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": self._block,
                        "delta": {"type": "text_delta", "text": text},
                    },
                )
            for call in delta.get("tool_calls") or ():
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        fn = call.get("function") or {}
        if index not in self._tool_blocks:
            out += self._open(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": call.get("id") or f"toolu_{index}",
                    "name": fn.get("name", ""),
                    "input": {},
                },
            )
            self._tool_blocks[index] = self._block
        args = fn.get("arguments")
        if args:
            out += _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": self._tool_blocks[index],
                    "delta": {"type": "input_json_delta", "partial_json": args},
                },
            )
        return out

    def finish(self, usage: Usage | None, completion_chars: int) -> bytes:
        usage = usage or self._usage
        output = usage.completion_tokens if usage else estimate_text(completion_chars)
        delta_usage: dict[str, int] = {"output_tokens": output}
        if usage is not None:
            delta_usage["input_tokens"] = usage.prompt_tokens - usage.cached_tokens
            delta_usage["cache_read_input_tokens"] = usage.cached_tokens
        stop = STOP_REASONS.get(self._finish or "stop", "end_turn")
        return (
            self._close()
            + _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": delta_usage,
                },
            )
            + _event("message_stop", {"type": "message_stop"})
        )
