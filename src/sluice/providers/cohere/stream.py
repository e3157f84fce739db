"""Cohere v2 chat stream events → OpenAI chunks.

Events: ``message-start``, ``content-start``/``-delta``/``-end``, ``tool-plan-delta``,
``tool-call-start``/``-delta``/``-end``, ``citation-*`` and ``message-end`` (finish reason
and usage), which completes the stream.
"""

from __future__ import annotations

from typing import Any

from sluice.providers.cohere.transform import finish_reason, usage_from
from sluice.providers.native.events import Event, EventSplitter
from sluice.providers.native.io import event_object, interrupted, translate_each
from sluice.providers.native.openai_out import ChunkWriter
from sluice.types import Usage


def _message(obj: dict[str, Any]) -> dict[str, Any]:
    delta = obj.get("delta")
    message = delta.get("message") if isinstance(delta, dict) else None
    return message if isinstance(message, dict) else {}


class CohereTranslator:
    def __init__(self, *, include_usage: bool, model: str) -> None:
        self._include_usage = include_usage
        self._splitter = EventSplitter()
        self._writer = ChunkWriter(model=model)
        self._done = False
        self.usage: Usage | None = None

    @property
    def done(self) -> bool:
        return self._done

    @property
    def completion_chars(self) -> int:
        return self._writer.completion_chars

    def feed(self, data: bytes) -> bytes:
        return translate_each(self._splitter.feed(data), self._event)

    def _event(self, event: Event) -> bytes:
        if not event.data:
            return b""
        obj = event_object(event.data)
        return self._translate(str(obj.get("type", event.name)), obj)

    def _translate(self, kind: str, obj: dict[str, Any]) -> bytes:
        w = self._writer
        message = _message(obj)
        if kind == "message-start":
            w.ident = str(obj.get("id") or w.ident)
            return w.role()
        if kind == "content-delta":
            content = message.get("content") or {}
            return w.text(str(content.get("text") or ""))
        if kind in ("tool-call-start", "tool-call-delta"):
            call = message.get("tool_calls") or {}
            fn = call.get("function") or {}
            index = int(obj.get("index", 0))
            if kind == "tool-call-start":
                args = str(fn.get("arguments") or "")
                return w.tool_start(index, str(call.get("id")), str(fn.get("name")), args)
            return w.tool_args(index, str(fn.get("arguments") or ""))
        if kind == "message-end":
            delta = obj.get("delta") or {}
            self.usage = usage_from(delta.get("usage")) or self.usage
            self._done = True
            return w.finish(finish_reason(delta.get("finish_reason")))
        return b""

    def close(self) -> bytes:
        if not self._done:
            raise interrupted()
        if self._include_usage and self.usage is not None:
            return self._writer.usage(self.usage)
        return b""
