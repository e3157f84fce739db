"""Mock behaviour scripts and the OpenAI-shaped answers they produce.

A script is the upstream model name with optional query parameters, e.g.
``chat?ttft_ms=3000&chunk_delay_ms=250``; ``x-mock-<param>`` headers override them on the
HTTP mock upstream. Parameters:

==================  ==========================================================
``latency_ms``      delay before a non-streaming answer (and the first chunk)
``ttft_ms``         delay before the first stream chunk (default: latency_ms)
``chunks``          content chunks per stream (default 20)
``chunk_delay_ms``  delay between stream chunks
``prompt_tokens``   fixed prompt token count (default: estimated from the input)
``completion_tokens``  words generated (default 64; ``max_tokens`` caps it)
``status``          always answer this HTTP error status
``retry_after_s``   ``Retry-After`` sent with error answers
``error_code``      the error body's ``code`` (e.g. ``context_length_exceeded``)
``reset``           1: drop the connection before answering (HTTP mock upstream)
``hang``            1: accept the request and never answer
``flaky``           fail the first N calls of this script (with ``status`` or 503)
``cut``             drop the stream after N content chunks (no ``[DONE]``)
``stall``           stop sending after N content chunks, holding the connection
``malformed``       send a non-JSON event as content chunk N
``usage``           0: never report usage (the gateway must estimate)
``no_done``         1: end the stream without its terminal event (HTTP mock upstream)
``one_write``       1: send the whole stream in one write (HTTP mock upstream)
``pad_bytes``       N: pad the answer (or a stream's first chunk) with N bytes (HTTP mock)
``chunked``         1: send a non-streamed answer chunked, without Content-Length (HTTP mock)
``dim``             embedding dimension (default 8)
``bow``             1: bag-of-words embeddings (texts sharing words get near vectors)
==================  ==========================================================

Every numeric parameter has a range (``caps.SCRIPT_RANGES``); so do the request fields that
size an answer (``n``, ``best_of``, embedding inputs): see ``docs/mock-provider.md``.

A request whose last turn holds a tool result is answered with text quoting it (finish
``stop``); a tool is called when tools are offered and the last turn is the user's, or when
``tool_choice`` requires one (see ``turn``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl

from sluice.providers.mock import caps, turn
from sluice.tokens import estimate_prompt

_WORDS = [
    "Sluice",
    "relays",
    "this",
    "mock",
    "answer",
    "so",
    "that",
    "demos",
    "tests",
    "and",
    "benchmarks",
    "run",
    "without",
    "a",
    "network",
    "connection",
    "while",
    "every",
    "byte",
    "of",
    "accounting",
    "stays",
    "exact",
    "and",
    "every",
    "stream",
    "ends",
    "honestly",
]


MAX_PAD_BYTES = 128 * 1024 * 1024
"""Largest ``pad_bytes``: enough to exceed any sane upstream cap, bounded for the mock."""


class ScriptError(ValueError):
    """A script parameter is unknown or has a bad value."""


@dataclass(frozen=True, slots=True)
class MockScript:
    name: str = "chat"
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    chunks: int = 20
    chunk_delay_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int = 64
    status: int | None = None
    retry_after_s: float | None = None
    error_code: str | None = None
    reset: bool = False
    hang: bool = False
    flaky: int = 0
    cut: int | None = None
    stall: int | None = None
    malformed: int | None = None
    usage: bool = True
    no_done: bool = False
    one_write: bool = False
    pad_bytes: int = 0
    chunked: bool = False
    dim: int = 8
    bow: bool = False

    @property
    def first_delay_s(self) -> float:
        return (self.ttft_ms if self.ttft_ms is not None else self.latency_ms) / 1000

    @classmethod
    def parse(cls, model: str, overrides: Mapping[str, str] | None = None) -> MockScript:
        name, _, query = model.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        if overrides:
            params.update(overrides)
        script = cls(name=name or "chat")
        if not params:
            return script
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in params.items():
            kind = types.get(key)
            if kind is None or key == "name":
                raise ScriptError(f"unknown mock parameter {key!r}")
            try:
                if "str" in str(kind):
                    values[key] = raw
                elif "bool" in str(kind):
                    values[key] = raw not in ("0", "false", "no", "")
                elif "int" in str(kind):
                    values[key] = int(raw)
                else:
                    values[key] = float(raw)
            except ValueError:
                raise ScriptError(f"mock parameter {key!r} has a bad value {raw[:50]!r}") from None
            problem = caps.script_range_error(key, values[key])
            if problem is not None:
                raise ScriptError(problem)
        if values.get("status") is not None and not 400 <= values["status"] <= 599:
            raise ScriptError("mock parameter 'status' must be an HTTP error status (400-599)")
        if not 0 <= values.get("pad_bytes", 0) <= MAX_PAD_BYTES:
            raise ScriptError(f"mock parameter 'pad_bytes' must be 0-{MAX_PAD_BYTES}")
        return replace(script, **values)


class FlakyCounter:
    """Counts calls per script so ``flaky=N`` fails exactly the first N."""

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}

    def fails(self, key: str, script: MockScript) -> int | None:
        """The error status this call must answer with, or ``None`` to answer normally."""
        if script.status is not None and script.flaky == 0:
            return script.status
        if script.flaky > 0:
            n = self._calls.get(key, 0)
            if n == 0 and len(self._calls) >= caps.MAX_FLAKY_SCRIPTS:
                self._calls.clear()
            self._calls[key] = n + 1
            if n < script.flaky:
                return script.status or 503
        return None


def error_body(status: int, code: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": f"mock upstream scripted error {status}",
            "type": "mock_error",
            "param": None,
            "code": code or str(status),
        }
    }


@dataclass(frozen=True, slots=True)
class Answer:
    """What the mock will say for one request."""

    text: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def _example(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "mock"
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _example(v) for k, v in props.items()}
    if kind == "array":
        return [_example(schema.get("items"))]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if schema.get("enum"):
        return schema["enum"][0]
    return "mock"


def compact_json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _limited(text: str, limit: Any, prompt: int) -> Answer:
    """Text cut to ``max_tokens`` words (finish ``length``)."""
    words = text.split(" ")
    if isinstance(limit, int) and 0 < limit < len(words):
        return Answer(" ".join(words[:limit]), None, "length", prompt, limit)
    return Answer(text, None, "stop", prompt, len(words))


def plan_answer(script: MockScript, body: Mapping[str, Any]) -> Answer:
    """Decide the answer: text (or a tool call / JSON) and token counts."""
    prompt = script.prompt_tokens
    if prompt is None:
        prompt = max(1, estimate_prompt(dict(body)))
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    tools = body.get("tools")
    choice = body.get("tool_choice")
    result = turn.tool_result(body.get("messages"))
    if tools and choice != "none" and (result is None or turn.forces_tool(choice)):
        tool = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
        args = compact_json(_example(tool.get("parameters")))
        call = {
            "id": "call_mock_0",
            "type": "function",
            "function": {"name": tool.get("name", "tool"), "arguments": args},
        }
        return Answer(None, [call], "tool_calls", prompt, max(1, len(args) // 4))
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        schema = (
            (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        )
        text = compact_json(_example(schema) if schema else {"answer": "mock"})
        return Answer(text, None, "stop", prompt, max(1, len(text) // 4))
    if result is not None:
        return _limited(turn.summary(result), limit, prompt)
    words = script.completion_tokens
    finish = "stop"
    if isinstance(limit, int) and 0 < limit < words:
        words, finish = limit, "length"
    text = " ".join(_WORDS[i % len(_WORDS)] for i in range(words))
    return Answer(text, None, finish, prompt, words)


def usage_obj(answer: Answer, choices: int = 1) -> dict[str, Any]:
    """Usage as a provider bills it: the prompt once, every choice's output."""
    completion = answer.completion_tokens * choices
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": answer.prompt_tokens + completion,
    }


def chat_completion(
    script: MockScript, body: Mapping[str, Any], *, rid: str, created: int
) -> dict[str, Any]:
    answer = plan_answer(script, body)
    n = caps.choices(body, words=answer.completion_tokens)
    message: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    out: dict[str, Any] = {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": body.get("model", script.name),
        "choices": [
            {
                "index": i,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
            for i in range(n)
        ],
    }
    if script.usage:
        out["usage"] = usage_obj(answer, n)
    return out


def text_completion(
    script: MockScript, body: Mapping[str, Any], *, rid: str, created: int
) -> dict[str, Any]:
    answer = plan_answer(script, {k: v for k, v in body.items() if k != "tools"})
    billed = caps.choices(body, words=answer.completion_tokens)  # best_of are generated
    n = body.get("n") or 1
    out: dict[str, Any] = {
        "id": f"cmpl-{rid}",
        "object": "text_completion",
        "created": created,
        "model": body.get("model", script.name),
        "choices": [
            {
                "index": i,
                "text": answer.text,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
            for i in range(n)
        ],
    }
    if script.usage:
        out["usage"] = usage_obj(answer, billed)
    return out


def _split(text: str, parts: int) -> list[str]:
    words = text.split(" ")
    parts = max(1, min(parts, len(words)))
    size, extra = divmod(len(words), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(" ".join(words[start:end]))
        start = end
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


def stream_chunks(
    script: MockScript, body: Mapping[str, Any], *, rid: str, created: int, chat: bool
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The content chunks of a stream (first carries the role) and its usage chunk."""
    answer = plan_answer(script, body if chat else {k: v for k, v in body.items() if k != "tools"})
    billed = caps.choices(body, words=answer.completion_tokens)  # one choice is streamed
    model = body.get("model", script.name)
    obj = "chat.completion.chunk" if chat else "text_completion"
    ident = f"chatcmpl-{rid}" if chat else f"cmpl-{rid}"

    def chunk(choice: dict[str, Any]) -> dict[str, Any]:
        return {"id": ident, "object": obj, "created": created, "model": model, "choices": [choice]}

    out: list[dict[str, Any]] = []
    if answer.tool_calls and chat:
        call = answer.tool_calls[0]
        args = call["function"]["arguments"]
        out.append(
            chunk(
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ],
                    },
                    "finish_reason": None,
                }
            )
        )
        for piece in _split(args, script.chunks) if args else []:
            out.append(
                chunk(
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [{"index": 0, "function": {"arguments": piece.strip()}}]
                        },
                        "finish_reason": None,
                    }
                )
            )
    else:
        for i, piece in enumerate(_split(answer.text or "", script.chunks)):
            if chat:
                delta: dict[str, Any] = {"content": piece}
                if i == 0:
                    delta["role"] = "assistant"
                out.append(chunk({"index": 0, "delta": delta, "finish_reason": None}))
            else:
                out.append(chunk({"index": 0, "text": piece, "finish_reason": None}))
    final = {"index": 0, "finish_reason": answer.finish_reason}
    final["delta" if chat else "text"] = {} if chat else ""
    out.append(chunk(final))
    usage = None
    if script.usage:
        usage = {
            "id": ident,
            "object": obj,
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage_obj(answer, billed),
        }
    return out, usage
