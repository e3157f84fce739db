"""Gemini ``streamGenerateContent?alt=sse`` → OpenAI chunks.

Each event is a whole ``GenerateContentResponse`` holding the next parts. There is no end
event: the stream is complete when every candidate sent its ``finishReason`` and the body
ended. ``usageMetadata`` grows as it goes; the last one counts.
"""

from __future__ import annotations

from typing import Any

from sluice.providers.gemini.errors import stream_error
from sluice.providers.gemini.transform import candidate_parts, finish_reason, usage_from
from sluice.providers.native.events import Event, EventSplitter
from sluice.providers.native.io import event_object, interrupted, translate_each
from sluice.providers.native.openai_out import ChunkWriter
from sluice.types import Usage


class GeminiTranslator:
    done = False
    """Read to the end of the body: Gemini sends no terminal event."""

    def __init__(self, *, include_usage: bool) -> None:
        self._include_usage = include_usage
        self._splitter = EventSplitter()
        self._writer = ChunkWriter()
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tools: dict[int, int] = {}
        self._blocked = False
        self.usage: Usage | None = None

    @property
    def completion_chars(self) -> int:
        return self._writer.completion_chars

    def feed(self, data: bytes) -> bytes:
        return translate_each(self._splitter.feed(data), self._event)

    def _event(self, event: Event) -> bytes:
        return self._translate(event_object(event.data)) if event.data else b""

    def _translate(self, obj: dict[str, Any]) -> bytes:
        if "error" in obj:
            raise stream_error(obj["error"])
        w = self._writer
        w.ident = str(obj.get("responseId") or w.ident)
        w.model = str(obj.get("modelVersion") or w.model)
        self.usage = usage_from(obj.get("usageMetadata")) or self.usage
        out = []
        candidates = [c for c in obj.get("candidates") or () if isinstance(c, dict)]
        for i, cand in enumerate(candidates):
            index = int(cand.get("index", i))
            if index not in self._started:
                self._started.add(index)
                out.append(w.role(index))
            text, calls = candidate_parts(cand)
            out.append(w.text(text, index))
            for call in calls:
                n = self._tools[index] = self._tools.get(index, -1) + 1
                out.append(w.tool_start(n, call.id, call.name, call.arguments, index))
            reason = cand.get("finishReason")
            if reason:
                self._finished.add(index)
                has_calls = index in self._tools
                out.append(w.finish(finish_reason(reason, has_calls=has_calls), index))
        feedback = obj.get("promptFeedback")
        if not candidates and isinstance(feedback, dict) and feedback.get("blockReason"):
            self._blocked = True
            out.append(w.role() + w.finish("content_filter"))
        return b"".join(out)

    def close(self) -> bytes:
        finished = self._started and self._started <= self._finished
        if not (finished or self._blocked) or self._splitter.pending:
            raise interrupted()
        if self._include_usage and self.usage is not None:
            return self._writer.usage(self.usage)
        return b""
