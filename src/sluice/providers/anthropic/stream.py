"""Anthropic Messages streams: translated to OpenAI chunks, or relayed unchanged.

Both read the same events (``message_start``, ``content_block_start``/``_delta``/``_stop``,
``message_delta``, ``message_stop``, ``ping``, ``error``); a stream is complete once
``message_stop`` arrived, or when it ended right after the ``message_delta`` that carries the
stop reason and usage (the relay then adds the ``message_stop``). Usage comes from
``message_start`` and the cumulative counts of ``message_delta``.
"""

from __future__ import annotations

from typing import Any

from sluice.providers.anthropic.errors import stream_error
from sluice.providers.anthropic.transform import FINISH_REASONS, usage_from
from sluice.providers.native.events import Event, EventSplitter
from sluice.providers.native.io import event_object, interrupted, translate_each
from sluice.providers.native.openai_out import ChunkWriter
from sluice.types import Usage

_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class _Events:
    """What both readers share: splitting, usage, completion, error events."""

    def __init__(self) -> None:
        self._splitter = EventSplitter()
        self._usage: dict[str, int] = {}
        self.usage: Usage | None = None
        self.completion_chars = 0
        self._done = False
        self._stopped = False

    @property
    def done(self) -> bool:
        return self._done

    def _update_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._usage.update({k: v for k, v in raw.items() if isinstance(v, int)})
            self.usage = usage_from(self._usage) if "input_tokens" in self._usage else None

    def _read(self, event: Event) -> dict[str, Any] | None:
        """The event's payload (``None`` for keep-alives); tracks usage and the end."""
        if not event.data:
            return None
        obj = event_object(event.data)
        kind = obj.get("type", event.name)
        if kind == "error":
            raise stream_error(obj.get("error"))
        if kind == "message_start":
            message = obj.get("message")
            self._update_usage(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._update_usage(obj.get("usage"))
            delta = obj.get("delta")
            self._stopped = self._stopped or bool(
                isinstance(delta, dict) and delta.get("stop_reason")
            )
        elif kind == "message_stop":
            self._done = True
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            self.completion_chars += len(delta.get("text") or delta.get("partial_json") or "")
        return obj

    def _check_end(self) -> None:
        """A stream is complete at ``message_stop``, or when it ended after the
        ``message_delta`` that carries the stop reason and the final usage."""
        if not (self._done or (self._stopped and self.usage is not None)):
            raise interrupted()


class ChatTranslator(_Events):
    """Anthropic events → OpenAI ``chat.completion.chunk`` events."""

    def __init__(self, *, include_usage: bool) -> None:
        super().__init__()
        self._include_usage = include_usage
        self._writer = ChunkWriter()
        self._tools: dict[int, int] = {}

    def feed(self, data: bytes) -> bytes:
        return translate_each(self._splitter.feed(data), self._event)

    def _event(self, event: Event) -> bytes:
        obj = self._read(event)
        return b"" if obj is None else self._translate(obj)

    def _translate(self, obj: dict[str, Any]) -> bytes:
        w = self._writer
        kind = obj.get("type")
        if kind == "message_start":
            message = obj.get("message") or {}
            w.ident = str(message.get("id") or w.ident)
            w.model = str(message.get("model") or w.model)
            return w.role()
        if kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") == "tool_use":
                n = self._tools[int(obj.get("index", 0))] = len(self._tools)
                return w.tool_start(n, str(block.get("id")), str(block.get("name")))
            if block.get("type") == "text":
                return w.text(str(block.get("text") or ""))
            return b""
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                return w.text(str(delta.get("text") or ""))
            if delta.get("type") == "input_json_delta":
                tool = self._tools.get(int(obj.get("index", 0)))
                if tool is not None:
                    return w.tool_args(tool, str(delta.get("partial_json") or ""))
            return b""
        if kind == "message_delta":
            reason = (obj.get("delta") or {}).get("stop_reason")
            if reason:
                return w.finish(FINISH_REASONS.get(str(reason), "stop"))
        return b""

    def close(self) -> bytes:
        self._check_end()
        if self._include_usage and self.usage is not None:
            return self._writer.usage(self.usage)
        return b""


class MessagesRelay(_Events):
    """Anthropic events relayed unchanged (``event:`` lines included) for the native
    ``/v1/messages`` pass-through, reading usage on the way."""

    def feed(self, data: bytes) -> bytes:
        return translate_each(self._splitter.feed(data), self._event)

    def _event(self, event: Event) -> bytes:
        self._read(event)
        return event.raw

    def close(self) -> bytes:
        self._check_end()
        # Stopped with its usage but no ``message_stop``: complete, so end it as Anthropic would.
        return b"" if self._done else _MESSAGE_STOP
