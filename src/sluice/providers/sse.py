"""OpenAI-format stream chunks: what an upstream's events say (usage, finish, errors).

The SSE wire format itself (framing, splitting) is :mod:`sluice.sse`."""

from __future__ import annotations

from typing import Any

import orjson

from sluice.errors import ErrorKind, GatewayError, UpstreamError, upstream_http_error
from sluice.sse import frame
from sluice.types import Usage, usage_from_openai


class ChunkInspector:
    """Checks each OpenAI chunk payload, keeps usage and counts generated characters.

    Raises ``GatewayError`` on a malformed chunk or an error event sent mid-stream.

    Ordinary content chunks are relayed after a structural check (a JSON object: ``{`` ...
    ``}``) without being parsed: parsing every chunk would double the gateway's cost per
    stream. Chunks that may carry an error or the usage are parsed. The generated text is
    counted only when asked (``completion_chars``), which the pipeline does when the
    provider sent no usage; the chunks are kept until the stream ends for that.
    """

    __slots__ = ("_chars", "_finish_seen", "_kept", "_last", "include_usage", "usage")

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.usage: Usage | None = None
        self._chars = 0
        self._kept: list[bytes] = []
        self._last = b""
        self._finish_seen = False

    @property
    def finished(self) -> bool:
        """The provider sent a ``finish_reason`` and then its usage: the answer is complete
        even if the body ends without ``[DONE]``. (Read once, at the end of a stream.)"""
        if self.usage is None:
            return False
        return self._finish_seen or _has_finish(self._last)

    @property
    def completion_chars(self) -> int:
        """Characters of generated text relayed so far (content and tool-call arguments)."""
        if self._kept:
            kept, self._kept = self._kept, []
            for payload in kept:
                self._count_chunk(orjson.loads(payload))
        return self._chars

    def relay(self, payload: bytes) -> bytes | None:
        """The framed event to pass to the client, or ``None`` to drop it."""
        if payload[:1] != b"{" or payload[-1:] != b"}":
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider sent a malformed stream chunk"
            )
        if b'"error"' in payload or b'"usage":{' in payload or b'"usage": {' in payload:
            return self._inspect(payload)
        self._kept.append(payload)
        self._last = payload
        return b"data: " + payload + b"\n\n"

    def _inspect(self, payload: bytes) -> bytes | None:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE, "the provider sent a malformed stream chunk"
            ) from None
        if not isinstance(chunk, dict):
            raise GatewayError(
                ErrorKind.PROVIDER_BAD_RESPONSE,
                "the provider sent a stream chunk that is not a JSON object",
            )
        error = chunk.get("error")
        if error is not None:
            raise _stream_error(error)
        self._count_chunk(chunk)
        self._finish_seen = self._finish_seen or _chunk_finished(chunk)
        usage = chunk.get("usage")
        if usage is not None:
            self.usage = usage_from_openai(usage) or self.usage
            if not chunk.get("choices") and not self.include_usage:
                return None
        return frame(payload)

    def _count_chunk(self, chunk: Any) -> None:
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                self._count(delta)
            elif isinstance(choice, dict) and isinstance(choice.get("text"), str):
                self._chars += len(choice["text"])

    def _count(self, delta: dict[str, Any]) -> None:
        content = delta.get("content")
        if isinstance(content, str):
            self._chars += len(content)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    self._chars += len(fn.get("arguments") or "") + len(fn.get("name") or "")


def _chunk_finished(chunk: Any) -> bool:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return any(isinstance(c, dict) and c.get("finish_reason") for c in choices or ())


def _has_finish(payload: bytes) -> bool:
    if b'"finish_reason"' not in payload:
        return False
    try:
        return _chunk_finished(orjson.loads(payload))
    except orjson.JSONDecodeError:
        return False


def _stream_error(error: Any) -> GatewayError:
    if isinstance(error, dict):
        message = str(error.get("message") or "the provider reported an error mid-stream")
        code = error.get("code")
        if isinstance(code, int) and code >= 400:
            return upstream_http_error(code, message)
        return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, message)
    return UpstreamError(ErrorKind.PROVIDER_STREAM_INTERRUPTED, str(error))
