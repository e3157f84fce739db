"""``POST /v1/responses/compact``: shorten a conversation (Codex CLI calls it when its
context fills up).

The body is ``{model, input, instructions}``; the answer ``{id, object:
"response.compaction", created_at, output, usage}`` where ``output`` replaces the client's
history. OpenAI returns an encrypted compaction item only its own models can read, so the
gateway does what works on every model: it asks the model, as one ordinary Responses
request (routed, limited and billed like any other, one usage row), for a summary of the
conversation written out as a transcript (one user message: no tool definitions needed,
which Anthropic and Bedrock require for a history holding tool calls), and answers with
the conversation's user messages (the latest, up to :data:`KEPT_USER_CHARS`) followed by
the summary as a user message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from sluice.auth.principal import Principal
from sluice.errors import BadRequest, ErrorKind, GatewayError
from sluice.pipeline.dialects import responses_format as rf
from sluice.pipeline.dialects.base import Translation
from sluice.pipeline.dialects.responses import ResponsesDialect
from sluice.pipeline.parse import parse_json
from sluice.providers.base import UpstreamResponse, UpstreamStream
from sluice.types import Endpoint, ProviderRequest, Usage

KEPT_USER_CHARS = 80_000
"""User messages kept verbatim, newest first (about 20k tokens)."""
SUMMARY_REQUEST = (
    "Summarise the conversation above (between the conversation tags) for another model "
    "that will continue the work without seeing it: the user's goal, decisions made, what "
    "was done (files, commands, results), what is left, and anything needed to continue. "
    "Be complete and concise; answer with the summary only."
)
SUMMARY_PREFIX = "Summary of the conversation so far (earlier turns were compacted):\n\n"


def _user_texts(value: Any) -> list[dict[str, Any]]:
    """The user message items of ``input``, newest last, within :data:`KEPT_USER_CHARS`."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": value}]
    kept: list[dict[str, Any]] = []
    room = KEPT_USER_CHARS
    for item in reversed(value):
        if item.get("type", "message") != "message" or item.get("role") != "user":
            continue
        size = len(orjson.dumps(item.get("content")))
        if size > room:
            break
        room -= size
        kept.append(item)
    kept.reverse()
    return kept


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        str(p.get("text", "")) if p.get("type") == "text" else "[image]" for p in content or ()
    )


def transcript(value: Any) -> str:
    """The conversation in ``input`` as plain text, one entry per message, call or result."""
    lines: list[str] = []
    for message in rf.input_messages(value, dropped=[]):
        role = message["role"]
        if role == "tool":
            lines.append(f"[tool result {message['tool_call_id']}]\n{message['content']}")
            continue
        text = _content_text(message.get("content"))
        if text:
            lines.append(f"[{role}]\n{text}")
        for call in message.get("tool_calls") or ():
            fn = call["function"]
            lines.append(f"[assistant called {fn['name']} ({call['id']})]\n{fn['arguments']}")
    return "\n\n".join(lines)


def _summary_text(answer: dict[str, Any]) -> str:
    return "".join(
        str(part.get("text", ""))
        for item in answer.get("output") or ()
        if isinstance(item, dict) and item.get("type") == "message"
        for part in item.get("content") or ()
        if isinstance(part, dict) and part.get("type") == "output_text"
    )


class CompactTranslation:
    """The summary request's translation (or pass-through), answered as a compaction."""

    def __init__(self, inner: Translation, source: dict[str, Any]) -> None:
        self._inner = inner
        self._source = source
        self.upstream = inner.upstream
        self.warnings = inner.warnings

    async def response(self, resp: UpstreamResponse, usage: Usage) -> bytes:
        answer = orjson.loads(await self._inner.response(resp, usage))
        summary = _summary_text(answer)
        if not summary:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the model answered the summary with no text"
            )
        kept = _user_texts(self._source["input"])
        note = {"type": "input_text", "text": SUMMARY_PREFIX + summary}
        output = [
            *({"type": "message", "role": "user", "content": item.get("content")} for item in kept),
            {"type": "message", "role": "user", "content": [note]},
        ]
        return orjson.dumps(
            {
                "id": answer.get("id") or rf.new_id("resp"),
                "object": "response.compaction",
                "created_at": answer.get("created_at"),
                "output": output,
                "usage": answer.get("usage"),
            }
        )

    async def stream(self, upstream: UpstreamStream) -> AsyncIterator[bytes]:
        raise GatewayError(ErrorKind.GATEWAY_INTERNAL, "compaction is never streamed")
        yield b""  # pragma: no cover - makes this an async generator


class CompactDialect:
    """A Responses request for a summary, answered as a compaction."""

    endpoint = Endpoint.RESPONSES
    carries_metadata = False
    stream_ends: tuple[bytes, ...] = ()

    def __init__(self, inner: ResponsesDialect) -> None:
        self._inner = inner

    def parse(self, raw: bytes) -> ProviderRequest:
        body = parse_json(raw)
        value = body.get("input")
        if not isinstance(value, str | list) or not value:
            raise BadRequest("'input' must be a non-empty string or array of items", param="input")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise BadRequest("'instructions' must be a string", param="instructions")
        ask = f"<conversation>\n{transcript(value)}\n</conversation>\n\n{SUMMARY_REQUEST}"
        summary_body = {"model": body.get("model"), "input": ask, "store": False}
        if instructions:
            summary_body["instructions"] = instructions
        req = self._inner.parse(orjson.dumps(summary_body))
        req.context = body
        return req

    async def prepare(self, req: ProviderRequest, principal: Principal) -> ProviderRequest:
        source = req.context
        req = await self._inner.prepare(req, principal)
        req.context.source = source
        return req

    def plan(self, req: ProviderRequest, capabilities: frozenset[Endpoint]) -> CompactTranslation:
        inner = self._inner.plan(req, capabilities)
        return CompactTranslation(inner, req.context.source)

    def stream_tail(self, req: ProviderRequest, upstream: UpstreamStream) -> bytes:
        return b""

    def error(self, exc: GatewayError) -> bytes:
        return self._inner.error(exc)

    def stream_error(self, exc: GatewayError) -> bytes:
        return self._inner.stream_error(exc)
