"""Writing OpenAI-shaped answers from a translated provider answer. Pure."""

from __future__ import annotations

import base64
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.types import Usage


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    id: str
    name: str
    arguments: str
    """The arguments as a JSON string, as OpenAI clients expect."""


@dataclass(slots=True)
class ChoiceOut:
    text: str | None = None
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    finish_reason: str = "stop"
    index: int = 0

    @property
    def chars(self) -> int:
        return len(self.text or "") + sum(len(c.arguments) for c in self.tool_calls)


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def chat_completion(
    *, ident: str, model: str, choices: list[ChoiceOut], usage: Usage | None
) -> bytes:
    """A ``chat.completion`` body."""
    out: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [_choice(c) for c in choices],
    }
    if usage is not None:
        out["usage"] = usage_json(usage)
    return orjson.dumps(out)


def _choice(choice: ChoiceOut) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice.text}
    if choice.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in choice.tool_calls
        ]
    return {
        "index": choice.index,
        "message": message,
        "logprobs": None,
        "finish_reason": choice.finish_reason,
    }


class ChunkWriter:
    """Frames ``chat.completion.chunk`` events and counts the characters they carry.

    ``ident`` and ``model`` may be set once the provider named them (its first event).
    """

    __slots__ = ("completion_chars", "created", "ident", "model")

    def __init__(self, *, ident: str = "chatcmpl", model: str = "") -> None:
        self.ident = ident
        self.model = model
        self.created = int(time.time())
        self.completion_chars = 0

    def _frame(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _delta(self, delta: dict[str, Any], index: int, finish: str | None = None) -> bytes:
        return self._frame([{"index": index, "delta": delta, "finish_reason": finish}])

    def role(self, index: int = 0) -> bytes:
        return self._delta({"role": "assistant", "content": ""}, index)

    def text(self, text: str, index: int = 0) -> bytes:
        if not text:
            return b""
        self.completion_chars += len(text)
        return self._delta({"content": text}, index)

    def tool_start(
        self, tool_index: int, call_id: str, name: str, arguments: str = "", index: int = 0
    ) -> bytes:
        self.completion_chars += len(name) + len(arguments)
        call = {
            "index": tool_index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        return self._delta({"tool_calls": [call]}, index)

    def tool_args(self, tool_index: int, arguments: str, index: int = 0) -> bytes:
        if not arguments:
            return b""
        self.completion_chars += len(arguments)
        call = {"index": tool_index, "function": {"arguments": arguments}}
        return self._delta({"tool_calls": [call]}, index)

    def finish(self, reason: str, index: int = 0) -> bytes:
        return self._delta({}, index, reason)

    def usage(self, usage: Usage) -> bytes:
        return self._frame([], usage=usage_json(usage))


def embedding_list(
    vectors: list[list[float]], *, model: str, usage: Usage | None, encoding_format: Any
) -> bytes:
    """An OpenAI embeddings ``list`` body (``encoding_format: base64`` packs float32 LE)."""
    data = []
    for i, vector in enumerate(vectors):
        encoded: Any = vector
        if encoding_format == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    out: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if usage is not None:
        out["usage"] = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return orjson.dumps(out)


def count(obj: Any, key: str) -> int:
    """A non-negative token count from a provider's usage object (0 when absent)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def split_cache_usage(
    raw: Any, *, input_key: str, output_key: str, read_key: str, write_key: str
) -> Usage | None:
    """Usage from a provider that counts uncached input apart from cache reads and writes
    (Anthropic, Bedrock Converse); ``Usage`` counts all input in ``prompt_tokens``."""
    if not isinstance(raw, dict) or not isinstance(raw.get(input_key), int):
        return None
    read = count(raw, read_key)
    write = count(raw, write_key)
    return Usage(
        prompt_tokens=count(raw, input_key) + read + write,
        completion_tokens=count(raw, output_key),
        cached_tokens=read,
        cache_write_tokens=write,
    )
